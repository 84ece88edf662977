"""Writing scores: every household of a model at once, or one household.

A linear model is set-based: on PostgreSQL a new table swapped in (``rebuild``), else one
upsert (``sql.rescore_statement``); a formula model reads
its variables with the same SQL and runs its CEL formula per household, written back in
batches with the same upsert. One household (the worker's incremental path) is read through
the ORM (``facts``) and scored in Python (``evaluate``); its previous score is kept when the
score or the model version moved, as the upsert does.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Uuid, bindparam, delete, select, text
from sqlalchemy.orm import Session

from registry_core.db import UTCDateTime
from registry_core.models import Household
from registry_core.scoring.active import ActiveModel
from registry_core.scoring.definitions import ModelDefinition
from registry_core.scoring.evaluate import ScoreResult, score
from registry_core.scoring.facts import raw_values
from registry_core.scoring.rebuild import rebuild_scores
from registry_core.scoring.sql import (
    COLUMNS,
    prepare_for_bulk,
    rescore_statement,
    upsert_tail,
    variables_select,
)
from registry_core.scoring.tables import VALUES, HouseholdScore
from standards.timeutil import utcnow

PYTHON_WRITE_BATCH = 2000


def score_everyone(session: Session, active: ActiveModel, day: date) -> int:
    """Score every household (not dissolved) under ``active``; returns how many."""
    dialect = session.get_bind().dialect.name
    session.execute(
        delete(HouseholdScore).where(
            HouseholdScore.model_code == active.code,
            HouseholdScore.household_id.in_(
                select(Household.id).where(Household.status == "dissolved")
            ),
        )
    )
    prepare_for_bulk(session, dialect)
    if active.model.linear:
        return score_linear(
            session, active.model, active.code, active.version, dialect, day, utcnow()
        )
    return _score_in_python(session, active, day, dialect)


def score_linear(
    connection: Any,
    model: ModelDefinition,
    code: str,
    version: int,
    dialect: str,
    day: date,
    now: datetime,
) -> int:
    """Every household (not dissolved) of a linear model, set-based; returns how many.
    PostgreSQL builds a new table and swaps it in (``rebuild``), or upserts when a lock was
    not granted in time; SQLite upserts. ``connection``: a Session or Connection, in the
    transaction ``prepare_for_bulk`` set up."""
    if dialect == "postgresql":
        scored = rebuild_scores(connection, model, code, version, day, now)
        if scored is not None:
            return scored
    statement = rescore_statement(model, code, version, dialect, day, now).statement
    result = connection.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def _score_in_python(session: Session, active: ActiveModel, day: date, dialect: str) -> int:
    """A formula model: the variables set-based in SQL, the CEL formula per household."""
    names = active.model.names()
    now = utcnow()
    insert = text(
        f"INSERT INTO household_scores ({COLUMNS}) VALUES (:household_id, :model_code,"  # noqa: S608
        " :model_version, :score, :scorable, :input_values, :computed_at)" + upsert_tail(dialect)
    )
    insert = insert.bindparams(
        bindparam("household_id", type_=Uuid()),
        bindparam("input_values", type_=VALUES),
        bindparam("computed_at", type_=UTCDateTime()),
    )
    batch: list[dict[str, Any]] = []
    count = 0
    rows = session.execute(variables_select(active.model, dialect, day).statement)
    for row in rows.mappings().fetchall():
        raw = {name: _float(row[f"v_{name}"]) for name in names}
        result = score(active.model, raw)
        household_id = uuid.UUID(str(row["household_id"]))
        batch.append(_score_row(household_id, active, result, now))
        if len(batch) >= PYTHON_WRITE_BATCH:
            session.execute(insert, batch)
            count += len(batch)
            batch = []
    if batch:
        session.execute(insert, batch)
        count += len(batch)
    return count


def score_one(
    session: Session, household: Household, active: ActiveModel, day: date, now: datetime
) -> None:
    """Score one household under ``active`` through the ORM (the incremental path)."""
    row = session.get(HouseholdScore, (household.id, active.code))
    if household.status == "dissolved":
        if row is not None:
            session.delete(row)
        return
    result = score(active.model, raw_values(session, household.id, active.model, day))
    values = _score_row(household.id, active, result, now)
    if row is None:
        session.add(HouseholdScore(**values))
        return
    if row.score != result.score or row.model_version != active.version:
        row.previous_score, row.previous_model_version = row.score, row.model_version
        row.previous_input_values = list(row.input_values or [])
    for name, value in values.items():
        setattr(row, name, value)
    row.inputs = None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _score_row(
    household_id: uuid.UUID, active: ActiveModel, result: ScoreResult, now: Any
) -> dict[str, Any]:
    return {
        "household_id": household_id,
        "model_code": active.code,
        "model_version": active.version,
        "score": result.score,
        "scorable": result.scorable,
        "input_values": [result.inputs[name] for name in active.model.names()],
        "computed_at": now,
    }
