"""``/api/v1/subscriptions``: programs choose which registry events they receive, and how.

A program's credentials see and change only that program's subscriptions (403 otherwise); an
admin may act for any program and must then say which (``program_code``). The webhook secret
is accepted once (or generated and shown once) and never returned afterwards.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api.context import hub_runtime
from hub.api.problems import BadRequest, UnprocessableRecord
from hub.api.requests import int_arg, json_object
from hub.auth.flask_auth import current_principal, require_program, requires
from hub.auth.roles import Role
from hub.subscriptions import secret_rotation, service
from hub.subscriptions.queues import declare_queues, delete_queues
from hub.subscriptions.tables import Subscription
from hub.workers.egress import EgressPolicy
from registry_core.errors import NotFound

log = logging.getLogger(__name__)

bp = Blueprint("subscriptions", __name__, url_prefix="/api/v1/subscriptions")

OWNERS = (Role.admin, Role.program)
READERS = (Role.admin, Role.program, Role.auditor)


def _owner_program(body: dict[str, Any]) -> str:
    principal = current_principal()
    asked = body.get("program_code")
    if Role.admin in principal.roles:
        if not isinstance(asked, str) or not asked.strip():
            raise UnprocessableRecord(
                "an admin creating a subscription must name the program_code it is for"
            )
        return asked.strip()
    require_program(asked if asked is not None else principal.program)
    assert principal.program is not None  # guaranteed by the program role's grant rules
    return principal.program


def _find(session: Session, key: str) -> Subscription:
    try:
        found = session.get(Subscription, uuid.UUID(key))
    except ValueError:
        found = session.scalar(select(Subscription).where(Subscription.code == key))
    # Another program's subscription answers as an unknown one: a 403 would tell a program
    # which codes exist elsewhere.
    if found is None or not current_principal().may_act_for_program(found.program_code):
        raise NotFound("subscription", key)
    return found


@bp.post("")
@requires(*OWNERS)
def create_subscription() -> tuple[Response, int, dict[str, str]]:
    body = json_object()
    runtime = hub_runtime()
    program = _owner_program(body)
    service.validate_create(
        body,
        amqp_available=runtime.settings.offers_amqp_channel,
        egress=EgressPolicy.from_settings(runtime.settings),
    )
    with runtime.sessions() as session, session.begin():
        subscription, secret = service.create(
            session,
            runtime.cipher,
            body,
            program_code=program,
            created_by=current_principal().subject,
        )
        result = service.to_json(subscription)
    declare_queues(runtime.settings, result["code"], result["channel"])
    if secret is not None:
        result["secret"] = secret  # shown once: keep it, the hub will not show it again
    return jsonify(result), 201, {"Location": f"{bp.url_prefix}/{result['code']}"}


@bp.get("")
@requires(*READERS)
def list_subscriptions() -> Response:
    principal = current_principal()
    program = None if principal.has_any((Role.admin, Role.auditor)) else principal.program
    with hub_runtime().sessions() as session:
        items = [service.to_json(s) for s in service.list_for(session, program)]
    return jsonify({"items": items, "count": len(items)})


@bp.get("/<key>")
@requires(*READERS)
def get_subscription(key: str) -> Response:
    with hub_runtime().sessions() as session:
        return jsonify(service.to_json(_find(session, key)))


@bp.patch("/<key>")
@requires(*OWNERS)
def change_subscription(key: str) -> Response:
    body = json_object()
    if set(body) != {"status"} or body["status"] not in ("active", "paused"):
        raise BadRequest('send {"status": "paused"} or {"status": "active"}')
    with hub_runtime().sessions() as session, session.begin():
        subscription = _find(session, key)
        service.set_status(session, subscription, body["status"])
        session.flush()
        result = service.to_json(subscription)
    return jsonify(result)


@bp.delete("/<key>")
@requires(*OWNERS)
def delete_subscription(key: str) -> tuple[str, int]:
    with hub_runtime().sessions() as session, session.begin():
        subscription = _find(session, key)
        code, channel = subscription.code, subscription.channel
        session.delete(subscription)
    delete_queues(hub_runtime().settings, code, channel)
    return "", 204


@bp.post("/<key>/secret")
@requires(*OWNERS)
def rotate_secret(key: str) -> Response:
    """A new signing secret (given, or generated and shown once); the current one keeps
    signing beside it for ``overlap_seconds`` (default 24 h) so the receiver can switch."""
    body = json_object()
    runtime = hub_runtime()
    with runtime.sessions() as session, session.begin():
        subscription = _find(session, key)
        secret_rotation.validate_rotation(body, subscription)
        generated, until = secret_rotation.rotate_secret(runtime.cipher, subscription, body)
        session.flush()
        result = service.to_json(subscription)
    log.info("subscription %s: webhook secret rotated (overlap until %s)", key, until)
    if generated is not None:
        result["secret"] = generated  # shown once: keep it, the hub will not show it again
    return jsonify(result)


@bp.get("/<key>/deliveries")
@requires(*READERS)
def list_deliveries(key: str) -> Response:
    after = int_arg("after", 0, 0, 2**62)
    limit = int_arg("limit", 100, 1, 500)
    with hub_runtime().sessions() as session:
        subscription = _find(session, key)
        rows = service.deliveries(session, subscription.code, after, limit)
        items = [service.attempt_json(row) for row in rows]
    next_after = items[-1]["id"] if items else after
    return jsonify({"items": items, "next_after": next_after, "query": dict(request.args)})
