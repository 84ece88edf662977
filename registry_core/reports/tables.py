"""Program enrolments as the programs connector reports them, in a form reports can count.

The beneficiary number also lands on the person as a ``program_beneficiary_id`` identifier,
but identifiers are encrypted and hashed, so no query can group them by program. This table
keeps, per program and beneficiary number, who the beneficiary is and whether the enrolment
is active: "enrolled in program P" is then one join (beneficiary -> current household).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow

ENROLMENT_STATES = ("active", "exited")


class ProgramEnrolment(Base):
    """One beneficiary of one program (``program_code`` upper-case, as the MIS names it)."""

    __tablename__ = "program_enrolments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    program_code: Mapped[str] = mapped_column(String(64))
    beneficiary_number: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    enrolled_on: Mapped[date | None] = mapped_column(Date)
    exited_on: Mapped[date | None] = mapped_column(Date)
    source_system: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("program_code", "beneficiary_number", name="uq_program_enrolment"),
        CheckConstraint("status IN ('active', 'exited')", name="enrolment_status_known"),
        Index("ix_program_enrolments_program", "program_code", "status"),
    )
