"""Liveness (``/health``: the process serves requests) and readiness (``/health/ready``: the
database and the broker answer).

Both are public, for load balancers and orchestrators, and say no more than they need:
``/health/ready`` answers ``{"status": "up"}`` (200) or ``{"status": "down"}`` (503) to anyone.
Queue names and depths, dead-letter counts and each connector's state and last error tell an
attacker what runs behind the hub and when it is weak, so only registry staff, admins and
auditors who send their credentials get them here (the same detail as
``/api/v1/monitoring/health``, which the dashboard reads). A partner outage never makes the hub
unready: it shows as ``degraded`` in the detail.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from hub.auth.flask_auth import optional_principal, public
from hub.auth.roles import Role

bp = Blueprint("health", __name__)

#: Who sees the readiness detail (the readers of the monitoring API).
DETAIL_READERS = (Role.registry_staff, Role.admin, Role.auditor)


@bp.get("/health")
@public
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
@public
def ready() -> Response:
    from hub.monitoring.health import readiness

    is_ready, detail = readiness(current_app)
    caller = optional_principal()
    if caller is None or not caller.has_any(DETAIL_READERS):
        detail = {"status": "up" if is_ready else "down"}
    response = jsonify(detail)
    response.status_code = 200 if is_ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
