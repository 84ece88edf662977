"""Consent: a program's permission, given by a person or for a household, to see them.

Granting and revoking are recorded here and announced (``consent.granted``,
``consent.revoked``); what a consent *covers* when someone reads is decided by one rule in
``registry_core.consent``. Revoking twice is not an error and emits nothing the second time.
"""

from __future__ import annotations

import uuid
from typing import Any

from registry_core.errors import InvalidRecord, NotFound
from registry_core.models import Consent
from registry_core.services.base import (
    ChangeResult,
    Source,
    Workspace,
    current_household,
    household_by_id,
    person_by_id,
)
from registry_core.services.events import ConsentGranted, ConsentRevoked, emit
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
    ) -> ChangeResult:
        """Record a consent of one person or one household; emits ``consent.granted`` (its
        data is the result's record)."""
        if (person_id is None) == (household_id is None):
            raise InvalidRecord(
                [Violation("$", "subject", "give exactly one of person_id, household_id")]
            )
        with self._ws.transaction() as session:
            person = person_by_id(session, person_id) if person_id else None
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
            return ChangeResult(granted.to_data(), [granted.TYPE])

    def revoke_consent(self, consent_id: uuid.UUID | str, source: Source) -> ChangeResult:
        """End a consent from now on; emits ``consent.revoked`` (nothing when it already was)."""
        with self._ws.transaction() as session:
            consent = session.get(Consent, uuid.UUID(str(consent_id)))
            if consent is None:
                raise NotFound("consent", consent_id)
            if consent.revoked_at is not None:
                return ChangeResult(_consent_record(consent), [])
            consent.revoked_at = source.at()
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
            return ChangeResult(revoked.to_data(), [revoked.TYPE])
