"""Writing change events to the outbox, inside the caller's transaction.

An event is validated against its data schema before it is written: a service that produces a
malformed event fails its own transaction instead of publishing something subscribers reject.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from registry_core.models import OutboxEvent
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
    "consent.granted",
    "consent.revoked",
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


def to_cloudevent(event: OutboxEvent) -> dict[str, Any]:
    """The CloudEvents 1.0 structured form of an outbox row."""
    return {
        "specversion": "1.0",
        "id": event.event_id,
        "source": event.source,
        "type": event.type,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "subject": event.subject,
        "datacontenttype": "application/json",
        "data": event.data,
    }
