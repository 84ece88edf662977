"""Consent as one rule: whom a program may see in the registry.

A consent is *active* until it is revoked. An active consent for a program (and, when one is
asked for, a purpose) *covers* a person when the person gave it, or when it was given for the
household the person belongs to: their current household, or for someone who has left every
household (a death ends the membership) the one they belonged to last.

The rule is written once, here, and read in two forms:

- ``consent_purposes`` answers for one subject (a notification about one person or household:
  ``hub.subscriptions.fanout``; a FHIR read of one Patient);
- ``member_covered`` is the same rule as a SQL condition on a ``Membership`` row, for queries
  that return pages of households (DCI search, a FHIR Group), so a program's page, its count
  and its member lists are decided in the database and never filtered after the fact.

``ReadScope`` says what one caller may read at all (the hub derives it from the caller's role):
everything, what a program's consents cover, or nothing personal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from registry_core.models import Consent, Membership

# What a caller that may read nothing personal is told (DCI search, FHIR).
NOTHING_TO_READ = (
    "this credential reads no personal data: consents name programs, and it acts for none. "
    "A system that reads the registry's people needs a program credential (role program)"
)


@dataclass(frozen=True)
class ConsentScope:
    """Read only what active consents for ``program`` (for ``purpose``, when given) cover."""

    program: str
    purpose: str | None = None


@dataclass(frozen=True)
class ReadScope:
    """What one caller may read of people and households.

    ``everything``: staff roles, no consent restriction. ``program``: a program's system, which
    sees what its program's consents cover. Neither: nothing personal at all (a partner system
    has no consent of its own: consents name programs).
    """

    everything: bool = False
    program: str | None = None

    @property
    def nothing(self) -> bool:
        return not self.everything and not self.program

    def consent(self, purpose: str | None = None) -> ConsentScope | None:
        """The consent restriction to apply (None: none, for ``everything``)."""
        if self.everything:
            return None
        if not self.program:
            raise ValueError("this scope reads nothing; check ReadScope.nothing first")
        return ConsentScope(self.program, purpose or None)


def _active(program: str, purpose: str | None = None) -> ColumnElement[bool]:
    """Active consents of ``program`` (for ``purpose`` when given)."""
    conditions = [Consent.program_code == program, Consent.revoked_at.is_(None)]
    if purpose is not None:
        conditions.append(Consent.purpose == purpose)
    return and_(*conditions)


def household_of(session: Session, person_id: uuid.UUID | None) -> uuid.UUID | None:
    """The household a person belongs to now, else the one they belonged to last."""
    if person_id is None:
        return None
    return session.scalar(
        select(Membership.household_id)
        .where(Membership.person_id == person_id)
        .order_by(Membership.end_date.is_(None).desc(), Membership.start_date.desc())
        .limit(1)
    )


def consent_purposes(
    session: Session, program: str, person_id: uuid.UUID | None, household_id: uuid.UUID | None
) -> set[str]:
    """Purposes for which ``program`` holds an active consent covering this subject (a person,
    a household, or a person within a household; the household defaults to the person's)."""
    if household_id is None:
        household_id = household_of(session, person_id)
    who: list[Any] = []
    if person_id is not None:
        who.append(Consent.person_id == person_id)
    if household_id is not None:
        who.append(Consent.household_id == household_id)
    if not who:
        return set()
    return set(session.scalars(select(Consent.purpose).where(_active(program), or_(*who))))


def covers_person(session: Session, scope: ConsentScope, person_id: uuid.UUID) -> bool:
    """Whether ``scope`` covers one person (``consent_purposes``' rule)."""
    purposes = consent_purposes(session, scope.program, person_id, None)
    return scope.purpose in purposes if scope.purpose else bool(purposes)


def member_covered(scope: ConsentScope) -> ColumnElement[bool]:
    """The same rule on a ``Membership`` row of the enclosing query: the member's own consent,
    or their household's, covers them. Correlates to ``Membership`` in the enclosing FROM."""
    return exists(
        select(Consent.id).where(
            _active(scope.program, scope.purpose),
            or_(
                Consent.person_id == Membership.person_id,
                Consent.household_id == Membership.household_id,
            ),
        )
    )


def covered_members(
    session: Session, scope: ConsentScope, household_id: uuid.UUID
) -> set[uuid.UUID]:
    """Current members of one household that ``scope`` covers."""
    return set(
        session.scalars(
            select(Membership.person_id).where(
                Membership.household_id == household_id,
                Membership.end_date.is_(None),
                member_covered(scope),
            )
        )
    )
