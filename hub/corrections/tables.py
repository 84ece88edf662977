"""The change-request tables: one row per proposed correction, and its steps.

Values here are what the registry itself holds in its field assertions (names, an address, a
fact's value): never an identifier (identifiers are not correctable through this path; they
are sealed and changed through the identity services). Nothing here is logged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class ChangeRequest(Base):
    """A proposed correction of one field or fact, and where it stands."""

    __tablename__ = "change_requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    state: Mapped[str] = mapped_column(String(16), index=True)
    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The household's area when proposed: who may see and decide it (area scoping).
    admin_area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    # "household.<field>", "person.<field>" or "attribute.<domain>.<name>"
    target: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)  # as the proposer saw it
    proposed_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    evidence_reference: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    on_behalf_of: Mapped[str] = mapped_column(String(16))  # beneficiary | registry
    channel: Mapped[str] = mapped_column(String(16))
    direct: Mapped[bool] = mapped_column(Boolean, default=False)
    proposed_by: Mapped[str] = mapped_column(String(200), index=True)
    proposer_role: Mapped[str] = mapped_column(String(32))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
    # The value the registry held just before the correction was applied (history).
    replaced_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_change_requests_state_proposed", "state", "proposed_at"),)


class ChangeRequestStep(Base):
    """One step of a request's history: who did what (proposed, approved, applied, rejected,
    withdrawn), from which state to which, and why."""

    __tablename__ = "change_request_steps"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("change_requests.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(16))  # api | dashboard
    reason: Mapped[str | None] = mapped_column(String(1000))
    at: Mapped[datetime] = mapped_column(default=utcnow)
