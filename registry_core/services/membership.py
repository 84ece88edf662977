"""Joining and leaving a household, and saying that a household changed.

Three use cases change who lives where — households (add, remove), life events (a birth joins
the mother's household, a death ends a membership) — and several say "this household changed"
(a field, a member's field, facts, a head). These are the shared steps, so a membership is
always ended the same way and ``household.updated`` always bumps the version first.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.models import Household, Membership, Person
from registry_core.services.base import Source
from registry_core.services.events import HouseholdUpdated, MemberAdded, MemberRemoved, emit
from standards.timeutil import utcnow


def household_updated(
    session: Session,
    household: Household,
    changed: Sequence[str],
    source: Source,
    person_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> str:
    """Emit ``household.updated`` for ``changed`` (after bumping the version, even when only
    members changed, so readers holding the old version see a conflict)."""
    household.updated_at = utcnow()
    session.flush()
    return emit(
        session,
        HouseholdUpdated(
            household_id=household.id,
            version=household.version,
            status=household.status,
            changed_fields=tuple(changed),
            admin_area_code=household.admin_area_code,
            source=source,
            person_id=person_id,
            reason=reason,
        ),
    )


def join(
    session: Session,
    household: Household,
    person: Person,
    relationship: str,
    source: Source,
    reason: str,
    start: date | None = None,
) -> list[str]:
    """Make ``person`` a current member from ``start`` (default: the source's day)."""
    start = start or source.at().date()
    session.add(
        Membership(
            household_id=household.id,
            person_id=person.id,
            relationship_to_head=relationship,
            start_date=start,
        )
    )
    household.updated_at = utcnow()
    return [
        emit(
            session,
            MemberAdded(
                household_id=household.id,
                person_id=person.id,
                relationship=relationship,
                start_date=start,
                reason=reason,
                admin_area_code=household.admin_area_code,
                source=source,
            ),
        )
    ]


def leave(
    session: Session,
    household: Household,
    person: Person,
    source: Source,
    reason: str,
    end_date: date | None,
) -> list[str]:
    """End ``person``'s current membership of ``household``; nothing when there is none."""
    membership = session.scalar(
        select(Membership).where(
            Membership.household_id == household.id,
            Membership.person_id == person.id,
            Membership.end_date.is_(None),
        )
    )
    if membership is None:
        return []
    end = end_date or source.at().date()
    # Memberships are half-open intervals [start_date, end_date). A death ends one on the
    # date of death as reported, even before start_date (the day the registry recorded the
    # member): the interval is then empty, the person was never a living member of record.
    # Other ends are processing days and never precede the start.
    membership.end_date = end if reason == "death" else max(end, membership.start_date)
    membership.end_reason = reason
    household.updated_at = utcnow()
    return [
        emit(
            session,
            MemberRemoved(
                household_id=household.id,
                person_id=person.id,
                end_date=membership.end_date,
                reason=reason,
                admin_area_code=household.admin_area_code,
                source=source,
            ),
        )
    ]
