"""Saved simulations and programs' benefit schedules, as tables.

A simulation is saved with its scenario and its answer (the aggregates, never a list of
households), so simulations can be compared side by side later without running them again;
the registry tables are never written by a simulation. Benefit schedules are versioned like
rules: a new version is added, never edited, and the newest one is the program's schedule.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow


class Simulation(Base):
    """One named what-if run: the scenario asked and the aggregates it gave."""

    __tablename__ = "simulations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000))
    scenario: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    as_of: Mapped[date] = mapped_column(Date)
    seconds: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BenefitSchedule(Base):
    """One version of a program's benefit schedule (amount per household or person, per
    period, number of periods); the newest version is the one budgets use."""

    __tablename__ = "benefit_schedules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    program_code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("program_code", "version", name="uq_benefit_schedule_version"),
    )
