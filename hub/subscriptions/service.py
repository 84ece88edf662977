"""Creating, reading and changing subscriptions; their delivery queues on the broker.

Input is validated with a JSON schema at the edge (every problem listed with its path), then
with the rules a schema cannot express: patterns must match an event the registry emits, the
AMQP channel needs RabbitMQ (the hub's own, or ``SRHUB_DELIVERY_AMQP_URL`` when the hub runs on
the embedded queue), webhook and DCI targets must be http(s) URLs the hub may call: a host that
is (or resolves to) a loopback, private, link-local or other non-public address is refused
unless an operator allowed it (``hub.workers.egress``; checked again at every delivery).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.broker.base import EXCHANGE_EVENTS, Broker, QueueSpec, delivery_queue_name
from hub.subscriptions.fanout import deliver_key
from hub.subscriptions.matching import SUBSCRIBABLE_EVENT_TYPES, pattern_is_useful
from hub.subscriptions.tables import (
    CHANNEL_AMQP,
    CHANNEL_WEBHOOK,
    CHANNELS,
    STATUS_ACTIVE,
    STATUS_PAUSED,
    DeliveryAttempt,
    Subscription,
)
from hub.workers.egress import EgressPolicy, EgressRefused
from registry_core.crypto import IdentifierCipher
from registry_core.errors import ConflictError, NotFound
from standards.validation import SchemaViolation, Violation

log = logging.getLogger(__name__)

SECRET_CONTEXT = "subscription-secret"  # noqa: S105 - a cipher context label, not a secret
CODE_PATTERN = "^[a-z0-9][a-z0-9_-]{2,63}$"
AREA_PATTERN = "^[A-Z0-9][A-Z0-9-]{0,63}$"

CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code", "event_types", "channel", "purpose"],
    "properties": {
        "code": {"type": "string", "pattern": CODE_PATTERN},
        "program_code": {"type": "string", "minLength": 1, "maxLength": 64},
        "event_types": {
            "type": "array",
            "minItems": 1,
            "maxItems": 32,
            "uniqueItems": True,
            "items": {
                "type": "string",
                "pattern": r"^([a-z_]+|\*|#)(\.([a-z_]+|\*|#))*$",
                "maxLength": 128,
            },
        },
        "filters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "admin_areas": {
                    "type": "array",
                    "maxItems": 200,
                    "items": {"type": "string", "pattern": AREA_PATTERN},
                },
                "enrolled_only": {"type": "boolean"},
            },
        },
        "channel": {"enum": list(CHANNELS)},
        "target": {"type": "string", "minLength": 1, "maxLength": 2048},
        "secret": {"type": "string", "minLength": 16, "maxLength": 256},
        "purpose": {"type": "string", "pattern": "^[a-z][a-z0-9_.-]{1,63}$"},
    },
}


_VALIDATOR = Draft202012Validator(CREATE_SCHEMA)


def delivery_queue(code: str) -> QueueSpec:
    """The durable queue of one subscription, fed by ``sr.events`` with ``deliver.<code>``."""
    return QueueSpec(
        name=delivery_queue_name(code), bindings=[(EXCHANGE_EVENTS, deliver_key(code))]
    )


def _check_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _target_problem(value: str, egress: EgressPolicy) -> Violation | None:
    """Why the hub may not deliver to ``value`` (an http(s) URL), or None."""
    try:
        egress.vet(value)
    except EgressRefused as refused:
        return Violation("$.target", "egress", refused.reason)
    return None


def validate_create(
    body: dict[str, Any], *, amqp_available: bool, egress: EgressPolicy | None = None
) -> None:
    """Raise ``SchemaViolation`` listing everything wrong with a new subscription.

    ``egress`` is the hub's outbound rule (``EgressPolicy.from_settings``); None: public
    hosts only."""
    problems = [
        Violation(error.json_path, str(error.validator), error.message[:300])
        for error in _VALIDATOR.iter_errors(body)
    ]
    if problems:
        raise SchemaViolation("subscription", sorted(problems, key=lambda v: v.path))
    for index, pattern in enumerate(body["event_types"]):
        if not pattern_is_useful(pattern):
            problems.append(
                Violation(
                    f"$.event_types[{index}]",
                    "unknown",
                    "matches no registry event; known types: "
                    + ", ".join(SUBSCRIBABLE_EVENT_TYPES),
                )
            )
    channel = body["channel"]
    if channel == CHANNEL_AMQP:
        if not amqp_available:
            problems.append(
                Violation(
                    "$.channel",
                    "unavailable",
                    "the amqp channel needs RabbitMQ: this hub runs on the embedded queue and "
                    "SRHUB_DELIVERY_AMQP_URL (the RabbitMQ where AMQP subscribers consume) is "
                    "not set; ask the operator to set it (or SRHUB_AMQP_URL), or use webhook",
                )
            )
        if "secret" in body:
            problems.append(Violation("$.secret", "unused", "only webhook subscriptions sign"))
    elif not _check_url(body.get("target")):
        problems.append(
            Violation("$.target", "url", f"a {channel} subscription needs an http(s) URL")
        )
    else:
        refused = _target_problem(body["target"], egress or EgressPolicy())
        if refused is not None:
            problems.append(refused)
    if channel != CHANNEL_WEBHOOK and "secret" in body and channel != CHANNEL_AMQP:
        problems.append(Violation("$.secret", "unused", "only webhook subscriptions sign"))
    if problems:
        raise SchemaViolation("subscription", problems)


def create(
    session: Session,
    cipher: IdentifierCipher,
    body: dict[str, Any],
    *,
    program_code: str,
    created_by: str,
) -> tuple[Subscription, str | None]:
    """Store a new subscription; returns it and the webhook secret when the hub made one
    (shown once, never again)."""
    if session.scalar(select(Subscription.id).where(Subscription.code == body["code"])):
        raise ConflictError(f"a subscription with code {body['code']!r} already exists")
    generated: str | None = None
    sealed: bytes | None = None
    if body["channel"] == CHANNEL_WEBHOOK:
        secret = body.get("secret")
        if secret is None:
            secret = generated = secrets.token_urlsafe(32)
        sealed = cipher.seal(SECRET_CONTEXT, secret.encode("utf-8"))
    channel = body["channel"]
    target = body.get("target") or delivery_queue_name(body["code"])
    if channel == CHANNEL_AMQP:
        target = delivery_queue_name(body["code"])
    subscription = Subscription(
        code=body["code"],
        program_code=program_code,
        event_types=list(body["event_types"]),
        filters=dict(body.get("filters") or {}),
        channel=channel,
        target=target,
        secret_sealed=sealed,
        purpose=body["purpose"],
        status=STATUS_ACTIVE,
        created_by=created_by[:200],
    )
    session.add(subscription)
    session.flush()
    return subscription, generated


def ensure(
    session: Session,
    cipher: IdentifierCipher,
    body: dict[str, Any],
    *,
    program_code: str,
    created_by: str,
) -> tuple[Subscription, bool]:
    """Create the subscription ``body`` describes, or bring the one with its code up to date
    (events, filters, target, secret, active again); returns it and whether it is new.

    For subscriptions the hub itself keeps in place across restarts (the sandbox's program
    MIS): its webhook secret may change at every start, and a stale copy would make every
    delivery fail its signature check. Its delivery log and queue are kept.
    """
    existing = session.scalar(select(Subscription).where(Subscription.code == body["code"]))
    if existing is None:
        subscription, _ = create(
            session, cipher, body, program_code=program_code, created_by=created_by
        )
        return subscription, True
    if existing.channel != body["channel"] or existing.program_code != program_code:
        raise ConflictError(
            f"subscription {body['code']!r} exists for another program or channel; delete it first"
        )
    existing.event_types = list(body["event_types"])
    existing.filters = dict(body.get("filters") or {})
    existing.purpose = body["purpose"]
    existing.status = STATUS_ACTIVE
    if body["channel"] != CHANNEL_AMQP:
        existing.target = body["target"]
    if "secret" in body:
        existing.secret_sealed = cipher.seal(SECRET_CONTEXT, body["secret"].encode("utf-8"))
    return existing, False


def secret_of(cipher: IdentifierCipher, subscription: Subscription) -> bytes | None:
    if subscription.secret_sealed is None:
        return None
    return cipher.unseal(SECRET_CONTEXT, subscription.secret_sealed)


def get(session: Session, code: str) -> Subscription:
    found = session.scalar(select(Subscription).where(Subscription.code == code))
    if found is None:
        raise NotFound("subscription", code)
    return found


def list_for(session: Session, program_code: str | None) -> list[Subscription]:
    query = select(Subscription).order_by(Subscription.created_at, Subscription.code)
    if program_code is not None:
        query = query.where(Subscription.program_code == program_code)
    return list(session.scalars(query))


def active(session: Session) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.status == STATUS_ACTIVE)
            .order_by(Subscription.code)
        )
    )


def set_status(session: Session, subscription: Subscription, status: str) -> None:
    if status not in (STATUS_ACTIVE, STATUS_PAUSED):
        raise SchemaViolation(
            "subscription", [Violation("$.status", "enum", "status must be active or paused")]
        )
    subscription.status = status


def deliveries(
    session: Session, code: str, after_id: int = 0, limit: int = 100
) -> list[DeliveryAttempt]:
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.subscription_code == code, DeliveryAttempt.id > after_id)
            .order_by(DeliveryAttempt.id)
            .limit(limit)
        )
    )


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def to_json(subscription: Subscription) -> dict[str, Any]:
    """The subscription as the API shows it; never the secret."""
    return {
        "id": str(subscription.id),
        "code": subscription.code,
        "program_code": subscription.program_code,
        "event_types": list(subscription.event_types),
        "filters": dict(subscription.filters or {}),
        "channel": subscription.channel,
        "target": subscription.target,
        "queue": delivery_queue_name(subscription.code),
        "purpose": subscription.purpose,
        "status": subscription.status,
        "signed": subscription.secret_sealed is not None,
        "previous_secret_until": _stamp(subscription.previous_secret_until),
        "created_at": subscription.created_at.isoformat().replace("+00:00", "Z"),
    }


def attempt_json(row: DeliveryAttempt) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "sequence": row.sequence,
        "event_type": row.event_type,
        "attempt": row.attempt,
        "status": row.status,
        "personal_data": row.personal,
        "http_status": row.http_status,
        "error": row.error,
        "at": row.started_at.isoformat().replace("+00:00", "Z"),
        "duration_ms": row.duration_ms,
    }


def declare_queue(broker: Broker, code: str) -> None:
    broker.declare_topology([delivery_queue(code)])


def delete_queue(broker: Broker, code: str) -> None:
    remove = getattr(broker, "delete_queue", None)
    if callable(remove):
        remove(delivery_queue_name(code))
