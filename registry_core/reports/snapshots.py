"""Daily snapshots of the policy headline counts: how registration, eligibility and
enrolment move over time.

Why snapshots: the registry keeps only each household's *current* verdict
(``household_eligibility``), so "how many were eligible last month" cannot be rebuilt from
the data (enrolments have dates, eligibility history does not). The scheduled jobs
(``hub.assembly.policy_snapshot_job``: today's row, retaken when an hour old, so each day
keeps its figures as of its last hour), and on demand an operator (``srhub reports snapshot``,
the policy page's button for staff), store the whole-registry totals of the coverage report,
**as suppressed** (a hidden count stays hidden in the history) together with the ``min_cell``
in force. One row per day and program (``*`` holds the counts of no program).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Date, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry_core.db import Base
from registry_core.reports.counts import Facts
from registry_core.reports.coverage import ALL, coverage_report
from standards.timeutil import utcnow

COMMON = "*"  # program_code of the row with the counts of no program
COMMON_KEYS = ("registered", "scored", "enrolled_several")
PROGRAM_KEYS = (
    "eligible",
    "enrolled",
    "eligible_not_enrolled",
    "enrolled_not_eligible",
    "coverage_rate",
)


class PolicySnapshot(Base):
    """The whole registry's suppressed totals of one day (and program)."""

    __tablename__ = "policy_snapshots"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    program_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    min_cell: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)


def take_snapshot(
    session: Session,
    *,
    day: date,
    min_cell: int,
    facts: Facts | None = None,
    refresh_after: timedelta | None = None,
) -> int:
    """Store ``day``'s totals (every known program); the rows written. With
    ``refresh_after`` a day taken less than that long ago is left alone (0): the scheduled job
    runs every few minutes, and an hourly retake keeps the day's row close to its end."""
    taken = session.scalar(
        select(func.max(PolicySnapshot.taken_at)).where(PolicySnapshot.day == day)
    )
    if taken is not None and refresh_after is not None and utcnow() - taken < refresh_after:
        return 0
    report = coverage_report(
        session, level=1, segment="none", programs=None, min_cell=min_cell, as_of=day, facts=facts
    )
    empty: dict[str, Any] = {**dict.fromkeys(COMMON_KEYS, 0), "programs": {}}
    total = next((r for r in report.rows if r["area"] == ALL), empty)
    session.execute(delete(PolicySnapshot).where(PolicySnapshot.day == day))
    rows = [
        PolicySnapshot(
            day=day,
            program_code=COMMON,
            counts={k: total[k] for k in COMMON_KEYS},
            min_cell=min_cell,
        )
    ]
    for program, measures in total["programs"].items():
        rows.append(
            PolicySnapshot(
                day=day,
                program_code=program,
                counts={k: measures[k] for k in PROGRAM_KEYS},
                min_cell=min_cell,
            )
        )
    session.add_all(rows)
    session.flush()
    return len(rows)


def snapshot_series(session: Session, since: date) -> dict[str, dict[str, dict[str, Any]]]:
    """``{day (ISO): {program or "*": counts}}`` from ``since`` on, oldest day first."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    query = (
        select(PolicySnapshot)
        .where(PolicySnapshot.day >= since)
        .order_by(PolicySnapshot.day, PolicySnapshot.program_code)
    )
    for row in session.scalars(query):
        found.setdefault(row.day.isoformat(), {})[row.program_code] = dict(row.counts)
    return found
