"""Monitoring over HTTP, for the dashboard and for Prometheus.

- ``GET /api/v1/monitoring/health``: the health model (``health_snapshot``).
- ``GET /api/v1/monitoring/alerts?state=firing|resolved&limit=``: alerts, firing first.
- ``GET /api/v1/monitoring/messages?connector=&status=&direction=&before=&limit=``: the message
  log, newest first, keyset-paginated (``next_before`` is the cursor of the next page).
- ``GET /metrics``: Prometheus text format.

Everything here is read-only and readable by registry staff, admins and auditors. ``/metrics``
is for admins and auditors only (a Prometheus scraper gets an auditor API key): it names every
partner and queue, which is more than an anonymous caller needs to know.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from hub.api.problems import BadRequest
from hub.api.requests import int_arg
from hub.auth.flask_auth import requires
from hub.auth.roles import Role

bp = Blueprint("monitoring", __name__)

READERS = (Role.registry_staff, Role.admin, Role.auditor)
STATES = ("firing", "resolved")
DIRECTIONS = ("in", "out")


def _sessions() -> Any:
    from hub.api.context import EXTENSION_KEY

    return current_app.extensions[EXTENSION_KEY].sessions


@bp.get("/api/v1/monitoring/health")
@requires(*READERS)
def monitoring_health() -> Response:
    from hub.monitoring.health import health_snapshot

    return jsonify(health_snapshot(current_app))


@bp.get("/api/v1/monitoring/alerts")
@requires(*READERS)
def monitoring_alerts() -> Response:
    from hub.monitoring.alerts import list_alerts

    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    limit = int_arg("limit", 100, 1, 500)
    with _sessions()() as session:
        items = list_alerts(session, state=state, limit=limit)
    return jsonify({"items": items})


@bp.get("/api/v1/monitoring/messages")
@requires(*READERS)
def monitoring_messages() -> Response:
    from hub.monitoring.message_log import list_messages

    direction = request.args.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        raise BadRequest("direction must be 'in' or 'out'")
    before = int_arg("before", 0, 1, 2**62) or None
    limit = int_arg("limit", 50, 1, 200)
    connector = (request.args.get("connector") or "").strip()[:128] or None
    status = (request.args.get("status") or "").strip()[:32] or None
    with _sessions()() as session:
        items, cursor = list_messages(
            session,
            connector=connector,
            status=status,
            direction=direction,
            before=before,
            limit=limit,
        )
    return jsonify({"items": items, "next_before": cursor})


@bp.get("/metrics")
@requires(Role.admin, Role.auditor)
def metrics() -> Response:
    from hub.monitoring.health import health_snapshot
    from hub.monitoring.prometheus import CONTENT_TYPE, render

    return Response(render(health_snapshot(current_app)), mimetype=None, content_type=CONTENT_TYPE)
