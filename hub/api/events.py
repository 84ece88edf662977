"""``GET /api/v1/events?after=<sequence>&limit=``: catching up on missed events (replay).

A program sees only the events its subscriptions match, in the form dispatch would have sent
(consent applied as of now, via ``hub.subscriptions.fanout``); admins and auditors see the
registry's own CloudEvents, which carry ids and facts but never identifier values. Paging is by
outbox sequence: ``next_after`` is the last sequence examined, so a program whose subscriptions
match nothing in a long stretch still moves forward.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import select

from hub.api.context import hub_runtime
from hub.api.requests import int_arg
from hub.auth.flask_auth import current_principal, requires
from hub.auth.roles import Role
from hub.subscriptions import service
from hub.subscriptions.fanout import Fanout
from registry_core.models import OutboxEvent
from registry_core.outbox import to_cloudevent

bp = Blueprint("events", __name__, url_prefix="/api/v1/events")

SCAN_FACTOR = 20  # outbox rows examined per requested event, bounding one request's work


@bp.get("")
@requires(Role.admin, Role.auditor, Role.program)
def list_events() -> Response:
    after = int_arg("after", 0, 0, 2**62)
    limit = int_arg("limit", 100, 1, 500)
    principal = current_principal()
    runtime = hub_runtime()
    events: list[dict[str, Any]] = []
    with runtime.sessions() as session:
        privileged = principal.has_any((Role.admin, Role.auditor))
        scan = limit if privileged else limit * SCAN_FACTOR
        rows = list(
            session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.sequence > after)
                .order_by(OutboxEvent.sequence)
                .limit(scan)
            )
        )
        last = after
        if privileged:
            for row in rows:
                event = to_cloudevent(row)
                event["srsequence"] = str(row.sequence)
                events.append(event)
                last = row.sequence
        else:
            subscriptions = service.list_for(session, principal.program)
            fanout = Fanout(runtime.cipher, runtime.keys.identifier_hmac_key)
            for row in rows:
                last = row.sequence
                planned = fanout.plan(
                    session, subscriptions, row.routing_key, to_cloudevent(row), row.sequence
                )
                if planned:
                    # Several subscriptions may match: the most informative copy wins.
                    best = max(planned, key=lambda p: p.personal)
                    events.append(best.cloudevent)
                if len(events) >= limit:
                    break
    return jsonify({"events": events, "count": len(events), "next_after": last})
