"""Consent: a program's permission, given by a person or for a household, to see them.

Granting and revoking are recorded here and announced (``consent.granted``,
``consent.revoked``); what a consent *covers* when someone reads is decided by one rule in
``registry_core.consent``. Revoking twice is not an error and emits nothing the second time.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from registry_core.errors import InvalidRecord, NotFound
from registry_core.models import Consent, Household, Membership
from registry_core.services.base import (
    ChangeResult,
    Source,
    Workspace,
    current_household,
    household_by_id,
    person_by_id,
)
from registry_core.services.events import ConsentGranted, ConsentRevoked, emit
from registry_core.services.recertification import refresh_due_date
from standards.timeutil import utcnow
from standards.validation import Violation


def _consent_record(consent: Consent) -> dict[str, Any]:
    """What a consent is, as a revoke that changed nothing answers it."""
    return {
        "consent_id": str(consent.id),
        "person_id": str(consent.person_id) if consent.person_id else None,
        "household_id": str(consent.household_id) if consent.household_id else None,
        "program_code": consent.program_code,
        "purpose": consent.purpose,
    }


def consent_history(consent: Consent) -> dict[str, Any]:
    """One consent as its history shows it: given (when, how, on what evidence, by whom) and,
    once withdrawn, when, by whom and why. The row is never deleted, so this is the history."""
    return {
        **_consent_record(consent),
        "channel": consent.channel,
        "evidence_reference": consent.evidence_reference,
        "granted_at": consent.granted_at.isoformat(),
        "recorded_by": consent.recorded_by,
        "status": "withdrawn" if consent.revoked_at is not None else "active",
        "revoked_at": consent.revoked_at.isoformat() if consent.revoked_at else None,
        "revoked_by": consent.revoked_by,
        "revocation_reason": consent.revocation_reason,
    }


class Consents:
    """Granting and revoking consents."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def grant_consent(
        self,
        program_code: str,
        purpose: str,
        channel: str,
        source: Source,
        person_id: uuid.UUID | str | None = None,
        household_id: uuid.UUID | str | None = None,
        evidence_reference: str | None = None,
        recorded_by: str | None = None,
    ) -> ChangeResult:
        """Record a consent of one person or one household; emits ``consent.granted`` (its
        data is the result's record). ``recorded_by`` names the credential that recorded it
        (kept on the row, not in the event: programs need not know staff accounts)."""
        if (person_id is None) == (household_id is None):
            raise InvalidRecord(
                [Violation("$", "subject", "give exactly one of person_id, household_id")]
            )
        with self._ws.transaction() as session:
            person = person_by_id(session, person_id, live=True) if person_id else None
            household = household_by_id(session, household_id) if household_id else None
            area_household = household
            if household is None and person is not None:
                area_household = current_household(session, person.id)
            consent = Consent(
                person_id=person.id if person else None,
                household_id=household.id if household else None,
                program_code=program_code,
                purpose=purpose,
                channel=channel,
                granted_at=source.at(),
                evidence_reference=evidence_reference,
                recorded_by=recorded_by,
            )
            session.add(consent)
            session.flush()
            granted = ConsentGranted(
                consent_id=consent.id,
                person_id=consent.person_id,
                household_id=consent.household_id,
                program_code=program_code,
                purpose=purpose,
                channel=channel,
                granted_at=consent.granted_at,
                admin_area_code=area_household.admin_area_code if area_household else None,
                source=source,
            )
            emit(session, granted)
            self._refresh_due_date(session, area_household)
            return ChangeResult(granted.to_data(), [granted.TYPE])

    def revoke_consent(
        self,
        consent_id: uuid.UUID | str,
        source: Source,
        reason: str | None = None,
        revoked_by: str | None = None,
    ) -> ChangeResult:
        """End a consent from now on; emits ``consent.revoked`` (nothing when it already was:
        the first withdrawal's time, author and reason are kept)."""
        with self._ws.transaction() as session:
            consent = session.get(Consent, uuid.UUID(str(consent_id)))
            if consent is None:
                raise NotFound("consent", consent_id)
            if consent.revoked_at is not None:
                return ChangeResult(_consent_record(consent), [])
            consent.revoked_at = source.at()
            consent.revoked_by = revoked_by
            consent.revocation_reason = reason
            revoked = ConsentRevoked(
                consent_id=consent.id,
                person_id=consent.person_id,
                household_id=consent.household_id,
                program_code=consent.program_code,
                purpose=consent.purpose,
                revoked_at=consent.revoked_at,
                admin_area_code=None,
                source=source,
            )
            emit(session, revoked)
            if consent.household_id is not None:
                self._refresh_due_date(session, household_by_id(session, consent.household_id))
            elif consent.person_id is not None:
                self._refresh_due_date(session, current_household(session, consent.person_id))
            return ChangeResult(revoked.to_data(), [revoked.TYPE])

    def _refresh_due_date(self, session: Session, household: Household | None) -> None:
        """A consent names a program: the household's programs, so its due date under
        per-program recertification intervals, may have changed (docs/recertification.md)."""
        if household is not None:
            refresh_due_date(session, household.id, self._ws.recertification, utcnow().date())

    def get_consent(self, consent_id: uuid.UUID | str) -> dict[str, Any]:
        """One consent with its history (``consent_history``)."""

        def work(session: Session) -> dict[str, Any]:
            consent = session.get(Consent, uuid.UUID(str(consent_id)))
            if consent is None:
                raise NotFound("consent", consent_id)
            return consent_history(consent)

        return self._ws.read(work)

    def list_consents(
        self,
        person_id: uuid.UUID | str | None = None,
        household_id: uuid.UUID | str | None = None,
    ) -> list[dict[str, Any]]:
        """Every consent given by a person or for a household, withdrawn ones included, oldest
        first. For a person, the consents of the households they belong or belonged to are
        listed too: those cover them as well (``registry_core.consent``)."""

        def work(session: Session) -> list[dict[str, Any]]:
            who: list[Any] = []
            if person_id is not None:
                person = person_by_id(session, person_id)
                households = select(Membership.household_id).where(
                    Membership.person_id == person.id
                )
                who += [Consent.person_id == person.id, Consent.household_id.in_(households)]
            if household_id is not None:
                household = household_by_id(session, household_id)
                who.append(Consent.household_id == household.id)
            if not who:
                return []
            rows = session.scalars(
                select(Consent).where(or_(*who)).order_by(Consent.granted_at, Consent.id)
            )
            return [consent_history(c) for c in rows]

        return self._ws.read(work)
