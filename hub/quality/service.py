"""Keeping the issue table true to what the checks find, and what people do with issues.

- ``reconcile``: after a check of some subjects, one row per (kind, subject) found is opened
  or refreshed (``last_seen_at``), a resolved one found again is reopened, and a live one
  (open or acknowledged) of a checked subject the check no longer finds is resolved by the
  check. A dismissed issue stays dismissed: someone judged it not a problem.
- ``change_state``: acknowledge, resolve, dismiss (a reason required), by a person.
- ``list_issues``, ``summary``, ``issues_for_household``: what the API and the pages read.

Every function works in the caller's session and transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal_column, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.quality.rules import REASONS, Finding, Kind, dedupe_key
from hub.quality.tables import DataQualityIssue, IssueState
from registry_core.areas import within_areas
from registry_core.models import Membership

CHECK_ACTOR = "check"


@dataclass
class Reconciled:
    """What one reconciliation did."""

    opened: int = 0  # new issues and reopened ones
    resolved: int = 0  # live issues the check no longer found
    seen: int = 0  # findings (new or already known)


def reconcile(
    session: Session,
    checked: Iterable[tuple[str, uuid.UUID]],
    findings: Sequence[Finding],
    now: datetime,
) -> Reconciled:
    """Bring the issues of the ``checked`` subjects ((``person`` | ``household``, id)) in line
    with ``findings`` (every finding must be about a checked subject)."""
    kinds = {"person": Kind.PERSON, "household": Kind.HOUSEHOLD}
    keys = {dedupe_key(kind, sid) for stype, sid in checked for kind in kinds[stype]}
    if not keys:
        return Reconciled()
    existing = {
        row.dedupe_key: row
        for row in session.scalars(
            select(DataQualityIssue)
            .where(DataQualityIssue.dedupe_key.in_(sorted(keys)))
            .with_for_update()
        )
    }
    result = Reconciled()
    found: set[str] = set()
    for finding in findings:
        key = finding.dedupe_key
        found.add(key)
        result.seen += 1
        row = existing.get(key)
        if row is None:
            row = _insert(session, finding, now)
            if row is not None:
                result.opened += 1
                continue
            # Another checker inserted it meanwhile: refresh theirs.
            row = session.scalars(
                select(DataQualityIssue).where(DataQualityIssue.dedupe_key == key)
            ).one()
        _refresh(row, finding, now)
        if row.state == IssueState.RESOLVED:
            row.state = IssueState.OPEN
            row.opened_at = now
            row.resolved_at = None
            row.times_reopened += 1
            _changed(row, CHECK_ACTOR, "found again by a check", now)
            result.opened += 1
    for key in keys - found:
        row = existing.get(key)
        if row is not None and row.state in IssueState.LIVE:
            row.state = IssueState.RESOLVED
            row.resolved_at = now
            _changed(row, CHECK_ACTOR, "no longer found by a check", now)
            result.resolved += 1
    return result


def _insert(session: Session, finding: Finding, now: datetime) -> DataQualityIssue | None:
    """A new open issue, or None when a concurrent checker's insert won the unique key."""
    row = DataQualityIssue(
        dedupe_key=finding.dedupe_key,
        kind=finding.kind,
        subject_type=finding.subject_type,
        state=IssueState.OPEN,
        first_seen_at=now,
        opened_at=now,
        times_reopened=0,
    )
    _refresh(row, finding, now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def _refresh(row: DataQualityIssue, finding: Finding, now: datetime) -> None:
    row.severity = finding.severity
    row.household_id = finding.household_id
    row.person_id = finding.person_id
    row.admin_area_code = finding.area
    row.reasons = list(finding.reasons)
    row.details = dict(finding.details)
    row.last_seen_at = now


def _changed(row: DataQualityIssue, actor: str, reason: str | None, now: datetime) -> None:
    row.state_changed_at = now
    row.state_changed_by = actor[:200]
    row.state_reason = reason[:500] if reason else None


# --- people's actions -----------------------------------------------------------------------


# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": ((IssueState.OPEN,), IssueState.ACKNOWLEDGED),
    "resolve": (IssueState.LIVE, IssueState.RESOLVED),
    "dismiss": (IssueState.LIVE, IssueState.DISMISSED),
}
REASON_REQUIRED = frozenset({"dismiss"})


class IssueNotFound(LookupError):
    pass


class TransitionRefused(ValueError):
    """The issue's state does not allow the action; the message names what it allows."""


def allowed_actions(state: str) -> list[str]:
    return [action for action, (sources, _) in TRANSITIONS.items() if state in sources]


def load_issue(session: Session, issue_id: uuid.UUID, *, lock: bool = False) -> DataQualityIssue:
    row = session.get(DataQualityIssue, issue_id, with_for_update=lock)
    if row is None:
        raise IssueNotFound(str(issue_id))
    return row


def change_state(
    issue: DataQualityIssue,
    action: str,
    actor: str,
    reason: str | None,
    now: datetime,
) -> DataQualityIssue:
    """Apply a person's ``action`` to ``issue`` (locked by the caller), or refuse it."""
    if action not in TRANSITIONS:
        raise TransitionRefused(f"unknown action {action!r}")
    sources, target = TRANSITIONS[action]
    if issue.state not in sources:
        allowed = ", ".join(allowed_actions(issue.state)) or "none"
        raise TransitionRefused(
            f"the issue is {issue.state}; {action} is not possible (possible: {allowed})"
        )
    reason = (reason or "").strip() or None
    if action in REASON_REQUIRED and not reason:
        raise TransitionRefused(f"{action} needs a reason: say why this is not a problem")
    issue.state = target
    if target in (IssueState.RESOLVED, IssueState.DISMISSED):
        issue.resolved_at = now
    _changed(issue, actor, reason, now)
    return issue


# --- reading --------------------------------------------------------------------------------


def issue_record(row: DataQualityIssue) -> dict[str, Any]:
    """An issue as the API and the pages show it (no personal data: ids, numbers, codes)."""

    def when(value: datetime | None) -> str | None:
        if value is None:
            return None
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")

    return {
        "id": str(row.id),
        "kind": row.kind,
        "severity": row.severity,
        "state": row.state,
        "subject_type": row.subject_type,
        "household_id": str(row.household_id) if row.household_id else None,
        "person_id": str(row.person_id) if row.person_id else None,
        "admin_area_code": row.admin_area_code,
        "reasons": [
            {"code": code, "severity": REASONS[code][0], "text": REASONS[code][1]}
            for code in row.reasons
            if code in REASONS
        ],
        "details": row.details or {},
        "first_seen_at": when(row.first_seen_at),
        "last_seen_at": when(row.last_seen_at),
        "opened_at": when(row.opened_at),
        "resolved_at": when(row.resolved_at),
        "state_changed_at": when(row.state_changed_at),
        "state_changed_by": row.state_changed_by,
        "state_reason": row.state_reason,
        "times_reopened": row.times_reopened,
        "actions": allowed_actions(row.state),
    }


@dataclass(frozen=True)
class IssueFilter:
    kind: str | None = None
    state: str | None = None
    severity: str | None = None
    area: str | None = None  # area code prefix
    household_id: uuid.UUID | None = None  # the household's issues and its current members'
    # The caller's own areas (None: everywhere; []: nowhere).
    area_prefixes: Sequence[str] | None = None


def _conditions(where: IssueFilter) -> list[ColumnElement[bool]] | None:
    """SQL conditions of a filter; None when it can match nothing."""
    conditions: list[ColumnElement[bool]] = []
    if where.kind:
        conditions.append(DataQualityIssue.kind == where.kind)
    if where.state:
        conditions.append(DataQualityIssue.state == where.state)
    if where.severity:
        conditions.append(DataQualityIssue.severity == where.severity)
    if where.area:
        conditions.append(within_areas(DataQualityIssue.admin_area_code, [where.area]))
    if where.household_id:
        conditions.append(_about_household(where.household_id))
    if where.area_prefixes is not None:
        if not where.area_prefixes:
            return None
        conditions.append(within_areas(DataQualityIssue.admin_area_code, list(where.area_prefixes)))
    return conditions


def list_issues(
    session: Session, where: IssueFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of issues, latest opened first, and the total matching."""
    conditions = _conditions(where)
    if conditions is None:
        return [], 0
    total = (
        session.scalar(select(func.count()).select_from(DataQualityIssue).where(*conditions)) or 0
    )
    rows = session.scalars(
        select(DataQualityIssue)
        .where(*conditions)
        .order_by(DataQualityIssue.opened_at.desc(), DataQualityIssue.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [issue_record(r) for r in rows], total


def area_group(area: str | None, level: int) -> str:
    """The first ``level`` parts of a hyphenated area code (``R01-D02-L003`` at 2:
    ``R01-D02``); ``(none)`` for an issue without an area."""
    if not area:
        return "(none)"
    return "-".join(area.split("-")[:level])


def summary(
    session: Session,
    where: IssueFilter,
    *,
    level: int = 1,
    days: int = 30,
    today: date,
) -> dict[str, Any]:
    """Counts of live issues (open and acknowledged) by kind and area (grouped at ``level``),
    by state, and the daily trend of the last ``days`` days: issues opened, resolved and
    dismissed each day (UTC)."""
    conditions = _conditions(replace(where, state=None))
    empty_days = [(today - timedelta(days=k)).isoformat() for k in range(days - 1, -1, -1)]
    trend: dict[str, list[Any]] = {
        "days": empty_days,
        "opened": [0] * days,
        "resolved": [0] * days,
        "dismissed": [0] * days,
    }
    if conditions is None:
        return {"by_kind_area": [], "by_state": {}, "areas": [], "kinds": [], "trend": trend}
    grid: Counter[tuple[str, str]] = Counter()
    for kind, area, count in session.execute(
        select(DataQualityIssue.kind, DataQualityIssue.admin_area_code, func.count())
        .where(*conditions, DataQualityIssue.state.in_(IssueState.LIVE))
        .group_by(DataQualityIssue.kind, DataQualityIssue.admin_area_code)
    ):
        grid[(kind, area_group(area, level))] += count
    by_state = {
        state: count
        for state, count in session.execute(
            select(DataQualityIssue.state, func.count())
            .where(*conditions)
            .group_by(DataQualityIssue.state)
        )
    }
    index = {day: k for k, day in enumerate(empty_days)}
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    day_of = _utc_day(session)
    opened_day, resolved_day = (
        day_of(DataQualityIssue.opened_at),
        day_of(DataQualityIssue.resolved_at),
    )
    for day, count in session.execute(
        select(opened_day, func.count())
        .where(*conditions, DataQualityIssue.opened_at >= since)
        .group_by(opened_day)
    ):
        if str(day)[:10] in index:
            trend["opened"][index[str(day)[:10]]] += count
    for day, state, count in session.execute(
        select(resolved_day, DataQualityIssue.state, func.count())
        .where(
            *conditions,
            DataQualityIssue.resolved_at >= since,
            DataQualityIssue.state.in_((IssueState.RESOLVED, IssueState.DISMISSED)),
        )
        .group_by(resolved_day, DataQualityIssue.state)
    ):
        if str(day)[:10] in index:
            trend[state][index[str(day)[:10]]] += count
    areas = sorted({area for _, area in grid})
    kinds = [k for k in Kind.ALL if any(kind == k for kind, _ in grid)]
    return {
        "by_kind_area": [
            {"kind": kind, "area": area, "count": count}
            for (kind, area), count in sorted(grid.items())
        ],
        "by_state": by_state,
        "areas": areas,
        "kinds": kinds,
        "trend": trend,
    }


def _utc_day(session: Session) -> Any:
    """The SQL expression of a stored time's UTC calendar day, per database: PostgreSQL's
    ``date()`` of a timestamptz follows the session's time zone, so it is converted first;
    SQLite keeps times as UTC text."""
    if session.get_bind().dialect.name == "postgresql":
        return lambda column: func.date(func.timezone(literal_column("'UTC'"), column))
    return lambda column: func.date(column)


def _about_household(household_id: uuid.UUID) -> ColumnElement[bool]:
    """Issues filed under the household, or about one of its current members (a person's
    issue is filed under one household but concerns each they are a current member of)."""
    members = select(Membership.person_id).where(
        Membership.household_id == household_id, Membership.end_date.is_(None)
    )
    return or_(
        DataQualityIssue.household_id == household_id, DataQualityIssue.person_id.in_(members)
    )


def issues_for_household(
    session: Session, household_id: uuid.UUID | str, *, include_closed: bool = False
) -> list[dict[str, Any]]:
    """The issues about a household and about its current members (a person's issue shows on
    each household they are a current member of), gravest and latest first. Live issues
    only, unless ``include_closed``. For the household's staff page."""
    hid = household_id if isinstance(household_id, uuid.UUID) else uuid.UUID(str(household_id))
    query = select(DataQualityIssue).where(_about_household(hid))
    if not include_closed:
        query = query.where(DataQualityIssue.state.in_(IssueState.LIVE))
    rows = session.scalars(query).all()
    rank = {"error": 0, "warning": 1, "info": 2}
    ordered = sorted(
        rows,
        key=lambda r: (rank.get(r.severity, 3), -_stamp(r.opened_at), str(r.id)),
    )
    return [issue_record(r) for r in ordered]


def _stamp(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def live_counts_by_kind(session: Session, where: IssueFilter) -> dict[str, int]:
    """Live issues per kind (the dashboard's tiles)."""
    conditions = _conditions(where)
    if conditions is None:
        return {}
    counts: dict[str, int] = defaultdict(int)
    for kind, count in session.execute(
        select(DataQualityIssue.kind, func.count())
        .where(*conditions, DataQualityIssue.state.in_(IssueState.LIVE))
        .group_by(DataQualityIssue.kind)
    ):
        counts[kind] = count
    return dict(counts)
