"""Recertification: certify a household, run the periodic round, list who is due or overdue.

A household is certified at registration (``Households.register_household`` calls
``certify``), when a field submission about it is applied, and when staff confirm it
(``Recertifications.recertify``); each resets its due date by the workspace's
``RecertificationPolicy``. The round (``run_round``) moves households into ``due`` (writing
``household.recertification_due``) and ``overdue`` (flagging them and writing
``household.recertification_overdue``), each event once per cycle; it never deletes or
deactivates a household, and never touches the household row (no version bump).

Households registered before this table existed get their row from the round, certified as
of their registration.

With per-program intervals (``RecertificationPolicy.program_intervals``) the due date depends
on the programs the household is enrolled in (``enrolled_programs``); a consent granted or
withdrawn changes them, so ``Consents`` calls ``refresh_due_date`` in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from registry_core.areas import within_areas
from registry_core.models import (
    Consent,
    Household,
    HouseholdRecertification,
    HouseholdStatus,
    Membership,
)
from registry_core.recertification import RecertificationPolicy, RecertificationState
from registry_core.records import recertification_record
from registry_core.services.base import REGISTRY_SOURCE, Source, Workspace, household_by_id
from registry_core.services.events import RecertificationDue, RecertificationOverdue, emit
from standards.timeutil import utcnow

# How serious a state is: a refreshed due date may lighten a flag, never raise it (raising is
# the round's, which writes the events).
_SEVERITY = {
    RecertificationState.CURRENT: 0,
    RecertificationState.DUE: 1,
    RecertificationState.OVERDUE: 2,
}


def enrolled_programs(session: Session, household_id: uuid.UUID) -> set[str]:
    """Programs the household is enrolled in: those holding an active consent given for the
    household or by one of its current members (the rule ``enrolled_only`` subscriptions use)."""
    members = select(Membership.person_id).where(
        Membership.household_id == household_id, Membership.end_date.is_(None)
    )
    return set(
        session.scalars(
            select(Consent.program_code)
            .where(
                Consent.revoked_at.is_(None),
                or_(Consent.household_id == household_id, Consent.person_id.in_(members)),
            )
            .distinct()
        )
    )


def _programs(session: Session, household_id: uuid.UUID, policy: RecertificationPolicy) -> set[str]:
    """The household's programs when they matter (some program has its own interval). Read
    without autoflush: a household being registered is not flushed early (its consents, if
    any, are recorded after it and refresh the date then)."""
    if not policy.per_program:
        return set()
    with session.no_autoflush:
        return enrolled_programs(session, household_id)


def certify(
    session: Session, household: Household, source: Source, policy: RecertificationPolicy
) -> HouseholdRecertification:
    """Record that ``household`` was certified at ``source.at()``: a new cycle begins."""
    at = source.at()
    # Locked (PostgreSQL), so a round flagging the household at the same time waits or is
    # waited for: a certification is never overwritten by a stale flag.
    row = session.get(HouseholdRecertification, household.id, with_for_update=True)
    if row is None:
        row = HouseholdRecertification(household_id=household.id)
        session.add(row)
    row.last_certified_at = at
    row.certified_by = source.system
    row.due_on = policy.due_on(at, _programs(session, household.id, policy))
    row.state = policy.state_on(row.due_on, at.date())
    row.reminded_for = row.overdue_for = None  # the new cycle's events are still to come
    row.updated_at = utcnow()
    return row


def refresh_due_date(
    session: Session, household_id: uuid.UUID, policy: RecertificationPolicy, today: date
) -> bool:
    """Recompute the due date of the household's current cycle from its last certification
    and the programs it is enrolled in now (after a consent was granted or withdrawn).

    Returns True when the date moved. The state may get lighter at once (a household no
    longer due is ``current`` again); it never gets heavier here: the round moves it into
    ``due`` or ``overdue`` and writes the events, for the cycle now named by the new date.
    Nothing to do without per-program intervals or before the household's first cycle.
    """
    if not policy.per_program:
        return False
    row = session.get(HouseholdRecertification, household_id, with_for_update=True)
    if row is None:
        return False
    due = policy.due_on(row.last_certified_at, enrolled_programs(session, household_id))
    if due == row.due_on:
        return False
    row.due_on = due
    state = policy.state_on(due, today)
    if _SEVERITY[state] < _SEVERITY.get(row.state, 0):
        row.state = state
    row.updated_at = utcnow()
    return True


@dataclass
class RoundResult:
    """What one round did (``deleted`` is always 0: the retention runner reads it)."""

    started: int = 0  # households that got their first row (registered before the table)
    reminded: list[str] = field(default_factory=list)  # household ids
    overdue: list[str] = field(default_factory=list)
    deleted: int = 0


def _emit(session: Session, row: HouseholdRecertification, household: Household, kind: str) -> None:
    payload = RecertificationDue if kind == "due" else RecertificationOverdue
    emit(
        session,
        payload(
            household_id=household.id,
            due_on=row.due_on,
            last_certified_at=row.last_certified_at,
            admin_area_code=household.admin_area_code,
            source=REGISTRY_SOURCE,
        ),
    )


def run_round(
    session: Session, policy: RecertificationPolicy, today: date, batch: int = 1000
) -> RoundResult:
    """One pass over the households in ``session``'s transaction (see the module docstring).

    Idempotent: a cycle already reminded (``reminded_for == due_on``) or already flagged
    (``overdue_for == due_on``) writes nothing again.
    """
    result = RoundResult()
    missing = session.execute(
        select(Household)
        .outerjoin(HouseholdRecertification, HouseholdRecertification.household_id == Household.id)
        .where(HouseholdRecertification.household_id.is_(None))
        .limit(batch)
    ).scalars()
    for household in missing:
        certify(session, household, Source("registry", None, household.created_at), policy)
        result.started += 1
    session.flush()

    # Only rows with something to do: in the reminder window and not reminded for this cycle,
    # or past due and not yet flagged (a reminded household waiting out its window is skipped,
    # so a large backlog never starves the batch).
    rows = session.execute(
        select(HouseholdRecertification, Household)
        .join(Household, Household.id == HouseholdRecertification.household_id)
        .where(
            HouseholdRecertification.state != RecertificationState.OVERDUE,
            Household.status != HouseholdStatus.DISSOLVED,  # no one to remind
            HouseholdRecertification.due_on <= policy.latest_due_in_window(today),
            or_(
                HouseholdRecertification.reminded_for.is_(None),
                HouseholdRecertification.reminded_for != HouseholdRecertification.due_on,
                HouseholdRecertification.due_on <= policy.latest_due_overdue(today),
            ),
        )
        .order_by(HouseholdRecertification.due_on, HouseholdRecertification.household_id)
        .limit(batch)
        .with_for_update(of=HouseholdRecertification)
    ).all()
    for row, household in rows:
        state = policy.state_on(row.due_on, today)
        if state == RecertificationState.CURRENT:
            continue
        if row.reminded_for != row.due_on:
            _emit(session, row, household, "due")
            row.reminded_for = row.due_on
            result.reminded.append(str(household.id))
        if state == RecertificationState.OVERDUE and row.overdue_for != row.due_on:
            _emit(session, row, household, "overdue")
            row.overdue_for = row.due_on
            result.overdue.append(str(household.id))
        if row.state != state:
            row.state = state
            row.updated_at = utcnow()
    return result


class Recertifications:
    """Staff confirmation, the periodic round, and the lists of households due or overdue."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def recertify(self, household_id: uuid.UUID | str, source: Source) -> dict[str, Any]:
        """Certify the household now (a staff confirmation or an applied field submission);
        returns its ``recertification`` status."""
        with self._ws.transaction() as session:
            household = household_by_id(session, household_id)
            row = certify(session, household, source, self._ws.recertification)
            session.flush()
            status = recertification_record(row)
        assert status is not None
        return status

    def status(self, household_id: uuid.UUID | str) -> dict[str, Any] | None:
        def work(session: Session) -> dict[str, Any] | None:
            household = household_by_id(session, household_id)
            return recertification_record(session.get(HouseholdRecertification, household.id))

        return self._ws.read(work)

    def run_round(self, today: date | None = None) -> RoundResult:
        """One round as of ``today`` (default: the current UTC day)."""
        with self._ws.transaction() as session:
            return run_round(session, self._ws.recertification, today or utcnow().date())

    def list_households(
        self,
        state: str,
        *,
        area_prefixes: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Households in ``state`` (``due`` or ``overdue``, as the last round flagged them),
        earliest due date first, with the total count; ``area_prefixes`` scopes by area."""

        def work(session: Session) -> tuple[list[dict[str, Any]], int]:
            query = (
                select(HouseholdRecertification, Household)
                .join(Household, Household.id == HouseholdRecertification.household_id)
                .where(HouseholdRecertification.state == state)
            )
            if area_prefixes is not None:
                if not area_prefixes:
                    return [], 0
                query = query.where(within_areas(Household.admin_area_code, area_prefixes))
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(
                query.order_by(
                    HouseholdRecertification.due_on, HouseholdRecertification.household_id
                )
                .limit(limit)
                .offset(offset)
            ).all()
            items = [
                {
                    "household_id": str(household.id),
                    "registry_number": household.registry_number,
                    "admin_area_code": household.admin_area_code,
                    "status": household.status,
                    **(recertification_record(row) or {}),
                }
                for row, household in rows
            ]
            return items, total

        return self._ws.read(work)

    def counts_by_area(
        self, *, area_prefixes: Sequence[str] | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Households due and overdue per administrative area (as the last round flagged
        them, counted as ``list_households`` lists them), the areas with most overdue first;
        ``area_prefixes`` scopes by area."""

        def work(session: Session) -> list[dict[str, Any]]:
            area = Household.admin_area_code
            state = HouseholdRecertification.state
            due = func.sum(case((state == RecertificationState.DUE, 1), else_=0))
            overdue = func.sum(case((state == RecertificationState.OVERDUE, 1), else_=0))
            query = (
                select(area, due, overdue)
                .join(Household, Household.id == HouseholdRecertification.household_id)
                .where(state.in_((RecertificationState.DUE, RecertificationState.OVERDUE)))
                .group_by(area)
            )
            if area_prefixes is not None:
                if not area_prefixes:
                    return []
                query = query.where(within_areas(area, area_prefixes))
            rows = session.execute(
                query.order_by(overdue.desc(), due.desc(), area).limit(limit)
            ).all()
            return [
                {"admin_area_code": code, "due": int(d or 0), "overdue": int(o or 0)}
                for code, d, o in rows
            ]

        return self._ws.read(work)
