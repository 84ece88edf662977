"""Writing change events to the outbox, inside the caller's transaction.

An event is validated against its data schema before it is written: a service that produces a
malformed event fails its own transaction instead of publishing something subscribers reject.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from registry_core.models import OutboxEvent
from standards.cloudevents import build_event
from standards.timeutil import utcnow
from standards.validation import validate

EVENT_TYPE_PREFIX = "org.socialregistry."
EVENT_SOURCE = "/srhub/registry"

EVENT_TYPES: tuple[str, ...] = (
    "household.created",
    "household.updated",
    "household.member_added",
    "household.member_removed",
    "person.born",
    "person.died",
    "person.verified",
    "person.verification_failed",
    "household.eligibility_changed",
    "household.recertification_due",
    "household.recertification_overdue",
    "consent.granted",
    "consent.revoked",
    "person.merged",
    "person.unmerged",
)


def write_event(
    session: Session, routing_key: str, subject: str, data: dict[str, Any]
) -> OutboxEvent:
    """Validate ``data`` against ``events/<routing_key>.json`` and add it to the outbox."""
    if routing_key not in EVENT_TYPES:
        raise ValueError(f"unknown event type {routing_key!r}")
    validate(f"events/{routing_key}.json", data)
    event = OutboxEvent(
        event_id=str(uuid.uuid4()),
        type=EVENT_TYPE_PREFIX + routing_key,
        routing_key=routing_key,
        source=EVENT_SOURCE,
        subject=subject,
        time=utcnow(),
        data=data,
    )
    session.add(event)
    return event


class OutboxRow(Protocol):
    """What ``to_cloudevent`` reads: an ``OutboxEvent`` or a row selected with its columns."""

    @property
    def event_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def subject(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...


def to_cloudevent(event: OutboxRow) -> dict[str, Any]:
    """The CloudEvents 1.0 structured form of an outbox row (``standards.cloudevents``'
    builder: the relay publishes exactly what the events API and re-drives show)."""
    return build_event(
        type=event.type,
        source=event.source,
        subject=event.subject,
        id=event.event_id,
        time=event.time,
        data=event.data,
        add_prefix=False,  # as stored: the relay refuses a row whose type is malformed
    )
