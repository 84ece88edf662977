"""Scoring models, program eligibility rules and their results, as tables.

Models and rules are versioned configuration: a version is never edited, a new one is added
and activated, and every score or decision names the version it came from. Results keep the
current state per household (one row per household and model, per household and program), so
the set-based re-score is one statement (a table swapped in on PostgreSQL, an upsert
elsewhere) and a read (DCI search, the household API) is a primary
key look-up. The score row keeps the previous score and the values it came from beside the
current ones: "which variables moved the score" is answered from the row and the two
versions' weights.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow

VERSION_STATES = ("draft", "active", "retired")
VALUES = JSON().with_variant(ARRAY(DOUBLE_PRECISION()), "postgresql")


class ScoringModel(Base):
    """One version of a proxy-means-test model (``definition``: variables, weights or a CEL
    formula). At most one version of a code is active; activation retires the one before."""

    __tablename__ = "scoring_models"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("code", "version", name="uq_scoring_model_version"),
        CheckConstraint(
            "status IN ('draft', 'active', 'retired')", name="scoring_model_status_known"
        ),
    )


class EligibilityRule(Base):
    """One version of a program's eligibility rule (threshold, CEL condition, quota)."""

    __tablename__ = "eligibility_rules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    program_code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    model_code: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("program_code", "version", name="uq_eligibility_rule_version"),
        CheckConstraint(
            "status IN ('draft', 'active', 'retired')", name="eligibility_rule_status_known"
        ),
    )


class HouseholdScore(Base):
    """A household's current score under one model code (``model_version`` None: a score
    recorded from outside, ``Registry.record_eligibility_score``). ``score`` is None when the
    household is not scorable (a variable it lacks is marked so).

    A model's score keeps its variables' values as numbers in the version's declared order
    (``input_values``; None: missing); names and each variable's contribution (weight times
    value) are derived on read from the version's definition (``explain``). Why not named
    JSON and stored contributions: building both per household was half of a full
    re-score's cost and most of each row (docs/policy.md, "Fourth look"). A score recorded
    from outside has no version: its ``inputs`` are kept as given, as JSON."""

    __tablename__ = "household_scores"

    household_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("households.id"), primary_key=True
    )
    model_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_version: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    scorable: Mapped[bool] = mapped_column(Boolean, default=True)
    # DOUBLE PRECISION[] on PostgreSQL (a simulation reads ``input_values[i]``: no parsing),
    # a JSON array elsewhere.
    input_values: Mapped[list[float | None] | None] = mapped_column(VALUES)
    # Recorded from outside only (JSONB on PostgreSQL since migration 0019).
    inputs: Mapped[dict[str, Any] | None] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql")
    )
    previous_model_version: Mapped[int | None] = mapped_column(Integer)
    previous_score: Mapped[float | None] = mapped_column(Float)
    # The values the previous score was computed from (set when the score or the version
    # moved): with the previous version's weights, "which variables moved the score".
    previous_input_values: Mapped[list[float | None] | None] = mapped_column(VALUES)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # No index beyond the key: reads are by household (the key), reports scan one model's
    # rows whole, and a second index made the set-based re-score a quarter slower.


class HouseholdEligibility(Base):
    """A household's current eligibility for one program, the rule version and the score it
    was decided on, and why (``reasons``: the parts of the rule it passed or failed)."""

    __tablename__ = "household_eligibility"

    household_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("households.id"), primary_key=True
    )
    program_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    eligible: Mapped[bool] = mapped_column(Boolean)
    model_code: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_household_eligibility_program", "program_code", "eligible"),)
