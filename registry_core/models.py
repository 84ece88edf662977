"""The canonical household model as database tables.

Current values live in plain columns (households, persons) so they can be queried and indexed;
every assertion that produced them is kept in ``field_assertions`` with its source, so the
current value can be re-derived when source precedence changes. Personal identifiers are never
stored in clear: ``identifiers`` holds an AES-GCM ciphertext plus a keyed hash for exact look-up.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class HouseholdStatus:
    ACTIVE = "active"
    NEEDS_REVIEW = "needs_review"  # e.g. the head died: someone must name a new head
    DISSOLVED = "dissolved"
    ALL = (ACTIVE, NEEDS_REVIEW, DISSOLVED)


class VerificationStatus:
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    FAILED = "failed"
    ALL = (UNVERIFIED, VERIFIED, FAILED)


class Household(Base):
    __tablename__ = "households"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    registry_number: Mapped[str] = mapped_column(String(32), unique=True)
    admin_area_code: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=HouseholdStatus.ACTIVE, index=True)
    review_reason: Mapped[str | None] = mapped_column(Text)
    head_person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("persons.id"))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="household", order_by="Membership.start_date"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (CheckConstraint(f"status IN {HouseholdStatus.ALL!r}", name="status_known"),)


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200), index=True)
    other_names: Mapped[str | None] = mapped_column(String(200))
    sex: Mapped[str | None] = mapped_column(String(16))
    birth_date: Mapped[date | None] = mapped_column(Date, index=True)
    death_date: Mapped[date | None] = mapped_column(Date)
    is_deceased: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_status: Mapped[str] = mapped_column(
        String(16), default=VerificationStatus.UNVERIFIED
    )
    verification_source: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column()
    # Set when staff merged this record into another (the survivor): the row stays, so an
    # unmerge can bring it back (``registry_core.services.merges``); reads point to the survivor.
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("persons.id"), index=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="person")
    identifiers: Mapped[list[Identifier]] = relationship(back_populates="person")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(
            f"verification_status IN {VerificationStatus.ALL!r}", name="verification_known"
        ),
    )


class Membership(Base):
    """A person's membership of a household over time; ended rows are history, never deleted."""

    __tablename__ = "memberships"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    relationship_to_head: Mapped[str] = mapped_column(String(32))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(64))

    household: Mapped[Household] = relationship(back_populates="memberships")
    person: Mapped[Person] = relationship(back_populates="memberships")


class IdentifierSystem(Base):
    """The identifier systems the registry accepts; new ones are registered, not hard-coded."""

    __tablename__ = "identifier_systems"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    unique_per_person: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Identifier(Base):
    """A person's identifier: ciphertext for display to authorised users, keyed hash for look-up."""

    __tablename__ = "identifiers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    system: Mapped[str] = mapped_column(ForeignKey("identifier_systems.code"))
    value_hash: Mapped[str] = mapped_column(String(64))
    # Which identifier look-up key made ``value_hash`` (1 for every row before key rotation);
    # the re-key job moves rows to the active version (docs/identifiers.md).
    value_hash_version: Mapped[int] = mapped_column(
        SmallInteger, default=1, server_default="1", index=True
    )
    value_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    source_system: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="identifiers")

    __table_args__ = (UniqueConstraint("system", "value_hash", name="uq_identifiers_system_value"),)


class Consent(Base):
    """A subject's consent for one program and purpose; revocation keeps the row."""

    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"), index=True)
    household_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("households.id"), index=True)
    program_code: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    # What the consent rests on (a form's instance ID, a scanned paper's reference), who
    # recorded it, and who withdrew it and why: the history a person may ask to see.
    evidence_reference: Mapped[str | None] = mapped_column(String(256))
    recorded_by: Mapped[str | None] = mapped_column(String(200))
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revocation_reason: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint("person_id IS NOT NULL OR household_id IS NOT NULL", name="has_subject"),
    )


# ``socio_economic_attributes.value`` as a number and as text, per dialect (PostgreSQL stores
# them; SQLite computes them when read).
VALUE_NUMBER_SQL = {
    "postgresql": (
        "CASE json_typeof(value) WHEN 'number' THEN CAST((value #>> '{}') AS DOUBLE PRECISION)"
        " WHEN 'boolean' THEN CASE WHEN (value #>> '{}') = 'true' THEN 1.0 ELSE 0.0 END END"
    ),
    "sqlite": (
        "CASE json_type(value) WHEN 'integer' THEN CAST(json_extract(value, '$') AS REAL)"
        " WHEN 'real' THEN json_extract(value, '$') WHEN 'true' THEN 1.0"
        " WHEN 'false' THEN 0.0 END"
    ),
}
VALUE_TEXT_SQL = {
    "postgresql": "CASE WHEN json_typeof(value) = 'string' THEN (value #>> '{}') END",
    "sqlite": "CASE WHEN json_type(value) = 'text' THEN json_extract(value, '$') END",
}


class SocioEconomicAttribute(Base):
    """One socio-economic fact used by scoring (income by source and period, dwelling, assets).

    A new survey question is a new ``domain``/``name`` pair, not a schema migration.
    """

    __tablename__ = "socio_economic_attributes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"))
    domain: Mapped[str] = mapped_column(String(32))  # income | dwelling | asset | other
    name: Mapped[str] = mapped_column(String(64))  # e.g. "employment", "roof_material"
    period: Mapped[str] = mapped_column(String(16), default="")  # e.g. "2025", "" for timeless
    value: Mapped[Any] = mapped_column(JSON)
    # The value as a number (a JSON number; true/false as 1/0) or as text (a JSON string),
    # computed by the database (migration 0027): scoring reads every fact of the registry
    # at once, and taking each JSON value apart again measured half of reading the facts.
    value_number: Mapped[float | None] = mapped_column(
        Float, Computed(VALUE_NUMBER_SQL["postgresql"], persisted=True)
    )
    value_text: Mapped[str | None] = mapped_column(
        Text, Computed(VALUE_TEXT_SQL["postgresql"], persisted=True)
    )
    unit: Mapped[str | None] = mapped_column(String(16))
    source_system: Mapped[str] = mapped_column(String(64))
    source_record_id: Mapped[str | None] = mapped_column(String(128))
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "household_id",
            "person_id",
            "domain",
            "name",
            "period",
            "source_system",
            name="uq_socio_economic_fact",
        ),
    )


class FieldAssertion(Base):
    """What one source said about one field of a person or household, and when."""

    __tablename__ = "field_assertions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(String(16))  # person | household
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON)
    source_system: Mapped[str] = mapped_column(String(64))
    source_record_id: Mapped[str | None] = mapped_column(String(128))
    asserted_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_field_assertions_entity", "entity_type", "entity_id", "field"),)


class EligibilityScore(Base):
    """A household's score under one scoring model; the newest row per model is current."""

    __tablename__ = "eligibility_scores"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PersonMatchKey(Base):
    """Blocking keys of a person for the probabilistic matcher (phonetic name + birth year,
    birth date, name pair). Identifier-derived keys are never stored: identifiers are matched
    through their keyed hash instead."""

    __tablename__ = "person_match_keys"

    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class MatchReview(Base):
    """An incoming record the registry would not apply on its own: an ambiguous match, or a
    birth whose mother is not registered. A person decides; nothing is merged automatically.

    The record is kept sealed (AES-GCM): it may hold identifiers and names.
    """

    __tablename__ = "match_reviews"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # birth, death, income, ...
    reason: Mapped[str] = mapped_column(Text)
    candidates: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[person_id, score]]
    record_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    source_system: Mapped[str] = mapped_column(String(64))
    source_record_id: Mapped[str | None] = mapped_column(String(128))
    message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(Text)


class MergeState:
    MERGED = "merged"
    UNMERGED = "unmerged"
    ALL = (MERGED, UNMERGED)


class PersonMerge(Base):
    """Staff's decision that two person records are one person, and exactly what it moved.

    ``journal`` lists every row the merge moved from the merged person to the survivor
    (memberships, identifiers, field assertions, consents, person facts) and every value it
    changed (a membership it ended, a household head it renamed), with the values before, so
    an unmerge restores both records and their histories. Never deleted: an undone merge
    stays as history with ``state`` unmerged.
    """

    __tablename__ = "person_merges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    review_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    state: Mapped[str] = mapped_column(String(16), default=MergeState.MERGED)
    reason: Mapped[str] = mapped_column(Text)
    forced_reason: Mapped[str | None] = mapped_column(Text)  # why an unsafe merge was forced
    merged_by: Mapped[str] = mapped_column(String(200))
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    journal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    unmerged_by: Mapped[str | None] = mapped_column(String(200))
    unmerged_at: Mapped[datetime | None] = mapped_column()
    unmerge_reason: Mapped[str | None] = mapped_column(Text)
    unmerge_notes: Mapped[list[Any] | None] = mapped_column(JSON)

    __table_args__ = (CheckConstraint(f"state IN {MergeState.ALL!r}", name="merge_state_known"),)


class HouseholdRecertification(Base):
    """When a household was last certified, when it is due again, and its state.

    A table of its own rather than columns on ``households``: households are versioned
    (optimistic locking), and the periodic round that flags households due or overdue must
    neither bump their version (every reader holding it would get a conflict) nor collide
    with a concurrent edit. One row per household; never deleted with an overdue flag.
    ``reminded_for`` and ``overdue_for`` hold the due date of the cycle whose event went out
    (cleared when a certification starts a new cycle), so each event is written once per cycle.
    """

    __tablename__ = "household_recertifications"

    household_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("households.id"), primary_key=True
    )
    last_certified_at: Mapped[datetime] = mapped_column()
    certified_by: Mapped[str] = mapped_column(String(64))  # source system of the certification
    due_on: Mapped[date] = mapped_column(Date, index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reminded_for: Mapped[date | None] = mapped_column(Date)
    overdue_for: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint(
            "state IN ('current', 'due', 'overdue')", name="recertification_state_known"
        ),
    )


class OutboxEvent(Base):
    """A change event written in the same transaction as the change (transactional outbox).

    ``sequence`` is monotonic; the relay publishes in sequence order per subject and sets
    ``published_at``. The row holds CloudEvents fields; the JSON envelope is built on publish.
    """

    __tablename__ = "outbox"

    sequence: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(128))
    routing_key: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(128), index=True)
    time: Mapped[datetime] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (
        # The relay's hot path: unpublished events by subject and sequence (same-subject
        # hold-back, claim in order); published rows, the vast majority, stay out of it.
        Index(
            "ix_outbox_unpublished_subject",
            "subject",
            "sequence",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )
