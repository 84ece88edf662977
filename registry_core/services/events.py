"""The data of every registry event, built in one place per event type.

Each event type of ``standards/schemas/events/`` has one payload class here. Its fields carry
the schema's property names with Python types (ids as ``UUID``, dates as ``date``, times as
aware ``datetime``, the asserting ``Source``); ``to_data`` turns them into the JSON the schema
describes, and ``emit`` writes it to the outbox (which validates it again, so a payload that
drifted from its schema fails its own transaction rather than reach a subscriber).
``tests/unit/test_event_payloads.py`` holds every class against its schema: same property
names, the same optional ones, valid output.

Fields named in ``OPTIONAL`` are left out of the data when empty (``None``, ``False``, ``""``):
the schema makes them optional rather than nullable (``provisional`` is present only when
true, ``person_id`` of ``household.updated`` only when a member's change caused it).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import ClassVar, TypeAlias

from sqlalchemy.orm import Session

from registry_core.outbox import write_event
from registry_core.services.base import Source
from standards.timeutil import rfc3339

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"


@dataclass(frozen=True, kw_only=True)
class MemberRef:
    """A member as ``household.created`` lists them."""

    person_id: uuid.UUID
    relationship: str


def _json(value: object) -> JsonValue:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Source):  # as every event's ``source`` names it
        return {"system": value.system, "record_id": value.record_id}
    if isinstance(value, MemberRef):
        return {"person_id": str(value.person_id), "relationship": value.relationship}
    if isinstance(value, set | frozenset):
        return [_json(item) for item in sorted(value)]
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} has no JSON form in an event")


@dataclass(frozen=True, kw_only=True)
class EventPayload:
    """Base of the payload classes: the event type, its subject, its JSON data."""

    TYPE: ClassVar[str]
    # (subject kind, field holding its id): the CloudEvents ``subject`` is "<kind>/<id>".
    SUBJECT: ClassVar[tuple[str, str]]
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    @property
    def subject(self) -> str:
        kind, key = self.SUBJECT
        return f"{kind}/{getattr(self, key)}"

    def to_data(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in self.OPTIONAL and not value:
                continue
            data[item.name] = _json(value)
        return data


def emit(session: Session, payload: EventPayload) -> str:
    """Write ``payload`` to the outbox in ``session``'s transaction; returns its event type."""
    write_event(session, payload.TYPE, payload.subject, payload.to_data())
    return payload.TYPE


# ---------------------------------------------------------------------------- households


@dataclass(frozen=True, kw_only=True)
class HouseholdCreated(EventPayload):
    TYPE: ClassVar[str] = "household.created"
    SUBJECT: ClassVar[tuple[str, str]] = ("household", "household_id")

    household_id: uuid.UUID
    registry_number: str
    member_count: int = field(init=False)
    members: tuple[MemberRef, ...]
    admin_area_code: str | None
    source: Source

    def __post_init__(self) -> None:
        object.__setattr__(self, "member_count", len(self.members))


@dataclass(frozen=True, kw_only=True)
class HouseholdUpdated(EventPayload):
    TYPE: ClassVar[str] = "household.updated"
    SUBJECT: ClassVar[tuple[str, str]] = ("household", "household_id")
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"person_id", "reason"})

    household_id: uuid.UUID
    version: int
    status: str
    changed_fields: tuple[str, ...]
    admin_area_code: str | None
    source: Source
    person_id: uuid.UUID | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class MemberAdded(EventPayload):
    TYPE: ClassVar[str] = "household.member_added"
    SUBJECT: ClassVar[tuple[str, str]] = ("household", "household_id")

    household_id: uuid.UUID
    person_id: uuid.UUID
    relationship: str
    start_date: date
    reason: str  # registration | birth | joined
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class MemberRemoved(EventPayload):
    TYPE: ClassVar[str] = "household.member_removed"
    SUBJECT: ClassVar[tuple[str, str]] = ("household", "household_id")

    household_id: uuid.UUID
    person_id: uuid.UUID
    end_date: date
    reason: str  # death | left | correction
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class EligibilityChanged(EventPayload):
    """A household's eligibility for one program flipped (or was decided eligible the first
    time); written only on change (``registry_core.scoring.eligibility``)."""

    TYPE: ClassVar[str] = "household.eligibility_changed"
    SUBJECT: ClassVar[tuple[str, str]] = ("household", "household_id")

    household_id: uuid.UUID
    program_code: str
    eligible: bool
    previous_eligible: bool | None  # None: never decided before
    rule_version: int
    model: str
    model_version: int | None  # None: a score recorded from outside the registry
    score: float | None  # None: not scorable
    previous_score: float | None
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class RecertificationDue(EventPayload):
    """A household entered its reminder window; once per cycle (the cycle is its ``due_on``)."""

    TYPE: ClassVar[str] = "household.recertification_due"
    SUBJECT: ClassVar[tuple[str, str]] = ("household", "household_id")

    household_id: uuid.UUID
    due_on: date
    last_certified_at: datetime
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class RecertificationOverdue(EventPayload):
    """A household passed its due date (plus grace) unrecertified and is flagged overdue."""

    TYPE: ClassVar[str] = "household.recertification_overdue"
    SUBJECT: ClassVar[tuple[str, str]] = ("household", "household_id")

    household_id: uuid.UUID
    due_on: date
    last_certified_at: datetime
    admin_area_code: str | None
    source: Source


# ---------------------------------------------------------------------------- people


@dataclass(frozen=True, kw_only=True)
class PersonBorn(EventPayload):
    TYPE: ClassVar[str] = "person.born"
    SUBJECT: ClassVar[tuple[str, str]] = ("person", "person_id")
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"place_admin_area_code", "provisional"})

    person_id: uuid.UUID
    household_id: uuid.UUID
    mother_person_id: uuid.UUID
    birth_date: date
    sex: str
    identifier_systems: Collection[str]
    admin_area_code: str | None
    place_admin_area_code: str | None = None
    provisional: bool = False
    source: Source


@dataclass(frozen=True, kw_only=True)
class PersonDied(EventPayload):
    TYPE: ClassVar[str] = "person.died"
    SUBJECT: ClassVar[tuple[str, str]] = ("person", "person_id")
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"place_admin_area_code", "provisional"})

    person_id: uuid.UUID
    household_id: uuid.UUID | None
    death_date: date
    was_head: bool
    identifier_systems: Collection[str]
    admin_area_code: str | None
    place_admin_area_code: str | None = None
    provisional: bool = False
    source: Source


@dataclass(frozen=True, kw_only=True)
class PersonVerified(EventPayload):
    TYPE: ClassVar[str] = "person.verified"
    SUBJECT: ClassVar[tuple[str, str]] = ("person", "person_id")

    person_id: uuid.UUID
    verified_at: datetime
    matched_fields: tuple[str, ...]
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class PersonVerificationFailed(EventPayload):
    TYPE: ClassVar[str] = "person.verification_failed"
    SUBJECT: ClassVar[tuple[str, str]] = ("person", "person_id")

    person_id: uuid.UUID
    checked_at: datetime
    reason: str
    mismatched_fields: tuple[str, ...]
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class PersonMerged(EventPayload):
    """Staff merged ``merged_person_id`` into ``person_id`` (``services.merges``)."""

    TYPE: ClassVar[str] = "person.merged"
    SUBJECT: ClassVar[tuple[str, str]] = ("person", "person_id")

    person_id: uuid.UUID
    merged_person_id: uuid.UUID
    merge_id: uuid.UUID
    household_ids: tuple[uuid.UUID, ...]
    merged_at: datetime
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class PersonUnmerged(EventPayload):
    """Staff undid a merge: ``restored_person_id`` is a record of its own again. Written for
    each of the two (``person_id``), so consent at dispatch finds either one's programs."""

    TYPE: ClassVar[str] = "person.unmerged"
    SUBJECT: ClassVar[tuple[str, str]] = ("person", "person_id")

    person_id: uuid.UUID
    restored_person_id: uuid.UUID
    survivor_person_id: uuid.UUID
    merge_id: uuid.UUID
    household_ids: tuple[uuid.UUID, ...]
    unmerged_at: datetime
    admin_area_code: str | None
    source: Source


# ---------------------------------------------------------------------------- consent


@dataclass(frozen=True, kw_only=True)
class ConsentGranted(EventPayload):
    TYPE: ClassVar[str] = "consent.granted"
    SUBJECT: ClassVar[tuple[str, str]] = ("consent", "consent_id")

    consent_id: uuid.UUID
    person_id: uuid.UUID | None
    household_id: uuid.UUID | None
    program_code: str
    purpose: str
    channel: str
    granted_at: datetime
    admin_area_code: str | None
    source: Source


@dataclass(frozen=True, kw_only=True)
class ConsentRevoked(EventPayload):
    TYPE: ClassVar[str] = "consent.revoked"
    SUBJECT: ClassVar[tuple[str, str]] = ("consent", "consent_id")

    consent_id: uuid.UUID
    person_id: uuid.UUID | None
    household_id: uuid.UUID | None
    program_code: str
    purpose: str
    revoked_at: datetime
    admin_area_code: str | None
    source: Source


# Every payload class by event type (the outbox's ``EVENT_TYPES``, one class each).
PAYLOADS: dict[str, type[EventPayload]] = {
    cls.TYPE: cls
    for cls in (
        HouseholdCreated,
        HouseholdUpdated,
        MemberAdded,
        MemberRemoved,
        EligibilityChanged,
        RecertificationDue,
        RecertificationOverdue,
        PersonBorn,
        PersonDied,
        PersonVerified,
        PersonVerificationFailed,
        ConsentGranted,
        ConsentRevoked,
        PersonMerged,
        PersonUnmerged,
    )
}
