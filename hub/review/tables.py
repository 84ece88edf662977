"""The review queue's tables: items, the submissions that fed them, the decision history, and
the visit records of households.

Nothing here holds an identifier value: the summary line is what the intake core wrote for a
supervisor to read (no identifiers, by the contract), reasons are a supervisor's words about
the form, and a visit's place is coordinates, not an address.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

VISIT_OUTCOMES = ("completed", "not_home", "refused", "moved", "other")


class ReviewItem(Base):
    """One household's submission round awaiting (or past) a supervisor's decision."""

    __tablename__ = "review_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    state: Mapped[str] = mapped_column(String(16), index=True)
    instance_id: Mapped[str] = mapped_column(String(200))  # the latest submission's
    household_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    form_id: Mapped[str] = mapped_column(String(200), index=True)
    form_version: Mapped[str] = mapped_column(String(100))
    submitted_by: Mapped[str] = mapped_column(String(200), index=True)  # the latest submitter
    admin_area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    summary: Mapped[str] = mapped_column(String(500), default="")
    conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)  # of the last decision
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column()
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_review_items_state_submitted", "state", "submitted_at"),)


class ReviewSubmission(Base):
    """A field submission (by its instanceID) and the item it fed: the idempotency key."""

    __tablename__ = "review_submissions"

    instance_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("review_items.id"), index=True)
    submitted_by: Mapped[str] = mapped_column(String(200), index=True)
    form_version: Mapped[str] = mapped_column(String(100))
    conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewDecision(Base):
    """One step of an item's history: who moved it from which state to which, and why."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("review_items.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(16))  # api | dashboard | submission
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    instance_id: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class HouseholdVisit(Base):
    """Who visited which household, when, where, and what came of it."""

    __tablename__ = "household_visits"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    household_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    admin_area_code: Mapped[str | None] = mapped_column(String(64))
    visited_by: Mapped[str] = mapped_column(String(200))
    visited_at: Mapped[datetime] = mapped_column()
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(1000))
    instance_id: Mapped[str | None] = mapped_column(String(200), index=True)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_household_visits_household", "household_id", "visited_at"),)
