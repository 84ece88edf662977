"""Identity and verification: identifier systems, look-ups by identifier, identity checks, and
the data-quality notes partner records leave about a person.

Identifier systems are rows, not code: the built-in ones and those of the country profile are
registered at start-up, and a deployment may register more. A verification by an authority
(the national ID system) is recorded once per result: the same answer twice emits nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.errors import InvalidRecord
from registry_core.identifiers import add_notes, identifier_violations
from registry_core.models import IdentifierSystem, VerificationStatus
from registry_core.records import person_record
from registry_core.services.base import (
    ChangeResult,
    Source,
    Workspace,
    current_household,
    person_by_id,
    person_by_identifier,
)
from registry_core.services.events import (
    EventPayload,
    PersonVerificationFailed,
    PersonVerified,
    emit,
)
from standards.identifiers import IdentifierProfile
from standards.timeutil import utcnow
from standards.validation import Violation, validate

BUILTIN_IDENTIFIER_SYSTEMS: dict[str, str] = {
    "national_id": "National identity number (UIN)",
    "birth_registration": "Birth registration number (BRN) from the civil registry",
    "death_registration": "Death registration number (DRN) from the civil registry",
    "tax_id": "Taxpayer identification number",
    "program_beneficiary_id": "Beneficiary number in a social program",
    "crvs_tracking_id": "Tracking id of a civil registry declaration (before or besides its "
    "registration number)",
    "crvs_draft_id": "Draft id of a civil registry declaration",
}


class Identity:
    """Identifier systems, identifier look-ups, verifications, data-quality notes."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    @property
    def identifier_profile(self) -> IdentifierProfile:
        return self._ws.identifier_profile

    def ensure_identifier_systems(self) -> None:
        """Register the built-in identifier systems and every system of the country profile
        (idempotent); called at start-up."""
        wanted = dict(BUILTIN_IDENTIFIER_SYSTEMS)
        wanted.update({rule.system: rule.description for rule in self.identifier_profile})
        with self._ws.transaction() as session:
            existing = set(session.scalars(select(IdentifierSystem.code)))
            for code, description in wanted.items():
                if code not in existing:
                    session.add(IdentifierSystem(code=code, description=description[:500]))

    def register_identifier_system(self, code: str, description: str) -> None:
        """Register one more system; ``code`` must have the form person.json gives systems."""
        probe = {
            "given_name": "x",
            "family_name": "x",
            "sex": "unknown",
            "birth_date": "2000-01-01",
            "identifiers": [{"system": code, "value": "X"}],
        }
        validate("person.json", probe)
        with self._ws.transaction() as session:
            if session.get(IdentifierSystem, code) is None:
                session.add(IdentifierSystem(code=code, description=description))

    def find_person_by_identifier(self, system: str, value: str) -> dict[str, Any] | None:
        """The person holding ``value`` of ``system``; ``InvalidRecord`` (naming the system and
        the rule) for a value that breaks the country profile, which nobody can hold."""
        problems = identifier_violations(
            self.identifier_profile, [{"system": system, "value": value}], "$.identifier"
        )
        if problems:
            raise InvalidRecord([Violation("$.identifier", v.rule, v.message) for v in problems])
        cipher = self._ws.cipher

        def work(session: Session) -> dict[str, Any] | None:
            person = person_by_identifier(session, cipher, system, value)
            return person_record(session, person, cipher) if person else None

        return self._ws.read(work)

    def record_verification(
        self,
        person_id: uuid.UUID | str,
        verified: bool,
        source: Source,
        matched_fields: Sequence[str] = (),
        mismatched_fields: Sequence[str] = (),
        reason: str | None = None,
    ) -> ChangeResult:
        """Record an identity check by ``source`` (e.g. the national ID authority).

        A success marks the person and their ``national_id`` identifier verified and emits
        ``person.verified``; a failure emits ``person.verification_failed`` with the reason.
        The same result repeated emits nothing and only moves ``verified_at`` forward.
        """
        if not verified and not reason:
            raise InvalidRecord(
                [Violation("$.reason", "required", "a failed verification needs a reason")]
            )
        with self._ws.transaction() as session:
            person = person_by_id(session, person_id, live=True)
            status = VerificationStatus.VERIFIED if verified else VerificationStatus.FAILED
            if person.verification_status == status and person.verification_source == source.system:
                # Nothing new to announce, but the authority did answer again: ``verified_at``
                # says when it last did (a re-check's pending state is settled by it).
                when = source.at()
                if person.verified_at is None or when > person.verified_at:
                    person.verified_at = when
                return ChangeResult(person_record(session, person, self._ws.cipher), [])
            when = source.at()
            person.verification_status = status
            person.verification_source = source.system
            person.verified_at = when
            person.updated_at = utcnow()
            for ident in person.identifiers:
                if ident.system == "national_id":
                    ident.verified = verified
            household = current_household(session, person.id)
            area = household.admin_area_code if household else None
            event: EventPayload
            if verified:
                event = PersonVerified(
                    person_id=person.id,
                    verified_at=when,
                    matched_fields=tuple(matched_fields),
                    admin_area_code=area,
                    source=source,
                )
            else:
                event = PersonVerificationFailed(
                    person_id=person.id,
                    checked_at=when,
                    reason=reason or "",
                    mismatched_fields=tuple(mismatched_fields),
                    admin_area_code=area,
                    source=source,
                )
            kind = emit(session, event)
            session.flush()
            return ChangeResult(person_record(session, person, self._ws.cipher), [kind])

    def record_data_quality_notes(
        self,
        person_id: uuid.UUID | str,
        notes: Sequence[Mapping[str, Any]],
        source: Source,
    ) -> int:
        """Keep what a partner record's mapping dropped (and why) on the person the record is
        about, as provenance (field ``data_quality_note``); returns how many notes were new."""
        with self._ws.transaction() as session:
            person = person_by_id(session, person_id, live=True)
            return add_notes(
                session, person.id, notes, source.system, source.record_id, source.at()
            )
