"""Registry services: every change to households and people goes through here.

``Registry`` is the facade the hub, the CLI and the tests call. It holds nothing of its own:
each method hands the call to the use case that owns it (``registry_core/services/``):

- ``households`` — register, update a household or a member, add and remove members, a head;
- ``life_events`` — births and deaths (with ``registry_core.vital``);
- ``identity`` — identifier systems, look-ups by identifier, verifications, data notes;
- ``consents`` — granting and revoking consent;
- ``attributes`` — socio-economic facts and eligibility scores;
- ``reviews`` — resolving who a record is about, and the review queue;
- ``merges`` — deciding duplicate pairs (merge, keep apart), undoing merges;
- ``reads`` — records, pages, provenance, the outbox;
- ``recertification`` — when households are due again, the periodic round, the lists;
- ``scoring`` — scoring models, program eligibility rules, re-scoring (``registry_core.scoring``).
- ``simulations`` — what-if simulations and benefit schedules (``registry_core.simulation``).

Each write is one transaction (``services.base.Workspace``): it validates its input against
the canonical schema, applies the change through field provenance and source precedence, and
writes its events (``services.events``, one payload class per event type) to the outbox in the
same transaction, so an event exists exactly when its change does. Methods that record partner
facts (births, deaths, verifications) are idempotent: the same fact delivered twice changes
nothing and emits nothing the second time, which is what at-least-once delivery needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from registry_core.crypto import IdentifierCipher
from registry_core.geography import service as geography
from registry_core.matching import Matcher, PersonMatcher
from registry_core.models import OutboxEvent
from registry_core.precedence import SourcePrecedence
from registry_core.recertification import RecertificationPolicy
from registry_core.reports.enrolments import record_enrolment
from registry_core.resolution import Resolution
from registry_core.scoring.service import Scoring
from registry_core.services.attributes import Attributes
from registry_core.services.base import ChangeResult, Source, Workspace
from registry_core.services.bulk_households import BulkHousehold, BulkHouseholds, BulkOutcome
from registry_core.services.bulk_income import BulkFacts, BulkIncome
from registry_core.services.consents import Consents
from registry_core.services.households import Households
from registry_core.services.identity import Identity
from registry_core.services.life_events import LifeEvents
from registry_core.services.merges import Actor, Merges, PairCheck
from registry_core.services.reads import Reads
from registry_core.services.recertification import Recertifications, RoundResult
from registry_core.services.reviews import Reviews
from registry_core.simulation.service import Simulations
from registry_core.vital import VitalFacts
from standards.identifiers import IdentifierProfile

__all__ = [
    "BulkFacts",
    "BulkHousehold",
    "BulkOutcome",
    "ChangeResult",
    "Registry",
    "Source",
]


class Registry:
    """The registry's write and read services over one database.

    Each method's behaviour (what it checks, what it emits) is documented on the use case it
    hands the call to, e.g. ``Households.register_household``.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        cipher: IdentifierCipher,
        precedence: SourcePrecedence | None = None,
        matcher: PersonMatcher | None = None,
        recertification: RecertificationPolicy | None = None,
    ) -> None:
        self._open(
            Workspace(
                sessions=session_factory,
                cipher=cipher,
                precedence=precedence or SourcePrecedence.default(),
                matcher=matcher or Matcher(),
                recertification=recertification or RecertificationPolicy(),
            )
        )

    def _open(self, ws: Workspace) -> None:
        self._ws = ws
        self._households = Households(ws)
        self._life_events = LifeEvents(ws)
        self._identity = Identity(ws)
        self._consents = Consents(ws)
        self._attributes = Attributes(ws)
        self._reviews = Reviews(ws)
        self._merges = Merges(ws)
        self._reads = Reads(ws)
        self._recertifications = Recertifications(ws)
        self._scoring = Scoring(ws)
        self._simulations = Simulations(ws)

    def within(self, session: Session) -> Registry:
        """The same services, working inside the caller's open transaction.

        Each call runs in a SAVEPOINT of ``session``: a refused record rolls back alone, and a
        successful one commits together with whatever else the caller does in that transaction
        (the ingest worker records the message as processed there: exactly-once effect).
        """
        bound = Registry.__new__(Registry)
        bound._open(self._ws.within(session))
        return bound

    @property
    def scoring(self) -> Scoring:
        """Scoring models, eligibility rules, re-scoring and the household's policy results
        (``registry_core.scoring.service.Scoring``; in a caller's transaction under ``within``)."""
        return self._scoring

    @property
    def simulations(self) -> Simulations:
        """What-if simulations of policy and programs' benefit schedules
        (``registry_core.simulation.service.Simulations``)."""
        return self._simulations

    # ------------------------------------------------------------------ identity

    @property
    def identifier_profile(self) -> IdentifierProfile:
        """The country profile this registry normalises and checks identifiers with."""
        return self._identity.identifier_profile

    def ensure_identifier_systems(self) -> None:
        self._identity.ensure_identifier_systems()

    def register_identifier_system(self, code: str, description: str) -> None:
        self._identity.register_identifier_system(code, description)

    def find_person_by_identifier(self, system: str, value: str) -> dict[str, Any] | None:
        return self._identity.find_person_by_identifier(system, value)

    def record_verification(
        self,
        person_id: uuid.UUID | str,
        verified: bool,
        source: Source,
        matched_fields: Sequence[str] = (),
        mismatched_fields: Sequence[str] = (),
        reason: str | None = None,
    ) -> ChangeResult:
        return self._identity.record_verification(
            person_id, verified, source, matched_fields, mismatched_fields, reason
        )

    def record_data_quality_notes(
        self, person_id: uuid.UUID | str, notes: Sequence[Mapping[str, Any]], source: Source
    ) -> int:
        return self._identity.record_data_quality_notes(person_id, notes, source)

    # ------------------------------------------------------------------ households

    def register_household(self, record: Mapping[str, Any], source: Source) -> ChangeResult:
        return self._households.register_household(record, source)

    def update_household(
        self,
        household_id: uuid.UUID | str,
        changes: Mapping[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        return self._households.update_household(household_id, changes, source, expected_version)

    def update_person(
        self,
        person_id: uuid.UUID | str,
        changes: Mapping[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        return self._households.update_person(person_id, changes, source, expected_version)

    def add_member(
        self,
        household_id: uuid.UUID | str,
        member: Mapping[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        return self._households.add_member(household_id, member, source, expected_version)

    def remove_member(
        self,
        household_id: uuid.UUID | str,
        person_id: uuid.UUID | str,
        source: Source,
        reason: str = "left",
        end_date: date | None = None,
        expected_version: int | None = None,
    ) -> ChangeResult:
        return self._households.remove_member(
            household_id, person_id, source, reason, end_date, expected_version
        )

    def set_head(
        self,
        household_id: uuid.UUID | str,
        person_id: uuid.UUID | str,
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        return self._households.set_head(household_id, person_id, source, expected_version)

    # ------------------------------------------------------------------ life events

    def record_birth(
        self,
        mother_person_id: uuid.UUID | str | None,
        child: Mapping[str, Any],
        source: Source,
        facts: VitalFacts | None = None,
    ) -> ChangeResult:
        return self._life_events.record_birth(mother_person_id, child, source, facts)

    def record_death(
        self,
        person_id: uuid.UUID | str,
        death_date: date | str,
        source: Source,
        death_registration_number: str | None = None,
        identifiers: Sequence[Mapping[str, Any]] = (),
        facts: VitalFacts | None = None,
    ) -> ChangeResult:
        return self._life_events.record_death(
            person_id, death_date, source, death_registration_number, identifiers, facts
        )

    # ------------------------------------------------------------------ attributes, scores

    def record_attributes(
        self,
        household_id: uuid.UUID | str,
        attributes: Sequence[Mapping[str, Any]],
        source: Source,
    ) -> ChangeResult:
        return self._attributes.record_attributes(household_id, attributes, source)

    def record_person_attributes(
        self,
        person_id: uuid.UUID | str,
        attributes: Sequence[Mapping[str, Any]],
        source: Source,
    ) -> ChangeResult:
        """Facts about one person, kept on their household; the result's record holds the
        household's ``id`` and ``version`` only (see ``Attributes.record_person_attributes``)."""
        return self._attributes.record_person_attributes(person_id, attributes, source)

    # ------------------------------------------------------------------ bulk

    def load_households(self, batch: Sequence[BulkHousehold], source: Source) -> list[BulkOutcome]:
        """A batch of a registry's first load, set-based (``services.bulk_households``)."""
        return BulkHouseholds(self._ws).load(batch, source)

    def record_facts_bulk(self, batch: Sequence[BulkFacts]) -> dict[str, str]:
        """Persons' facts of a large partner extract, set-based (``services.bulk_income``)."""
        return BulkIncome(self._ws).record(batch)

    def record_enrolment(
        self,
        person_id: uuid.UUID | str,
        program_code: str,
        beneficiary_number: str,
        status: str,
        source: Source,
        enrolled_on: date | None = None,
        exited_on: date | None = None,
    ) -> bool:
        """Record that ``person_id`` is (``active``) or was (``exited``) a beneficiary of a
        program: what coverage reports count as enrolled (``registry_core.reports``). True
        when something changed."""
        with self._ws.transaction() as session:
            return record_enrolment(
                session,
                program_code=program_code,
                beneficiary_number=beneficiary_number,
                person_id=uuid.UUID(str(person_id)),
                status=status,
                source_system=source.system,
                enrolled_on=enrolled_on,
                exited_on=exited_on,
            )

    def record_admin_area(self, record: Mapping[str, Any], source: Source) -> bool:
        """Store an admin area's outline, level, name, parent and layer values as the GIS
        draws it (``inbound/admin_area.json``; ``registry_core.geography``). True when
        something changed."""
        box = geography.check_admin_area(record)  # before the transaction, as every write
        with self._ws.transaction() as session:
            return geography.record_admin_area(session, record, source.system, box)

    def admin_areas(self, level: int | None = None) -> list[dict[str, Any]]:
        """The admin areas drawn (of one ``level``, or all), by code, with geometry."""
        with self._ws.sessions() as session:
            return geography.admin_areas(session, level)

    def record_eligibility_score(
        self,
        household_id: uuid.UUID | str,
        model: str,
        score: float,
        inputs: Mapping[str, Any],
    ) -> ChangeResult:
        return self._attributes.record_eligibility_score(household_id, model, score, inputs)

    # ------------------------------------------------------------------ consent

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
        return self._consents.grant_consent(
            program_code,
            purpose,
            channel,
            source,
            person_id,
            household_id,
            evidence_reference=evidence_reference,
            recorded_by=recorded_by,
        )

    def revoke_consent(
        self,
        consent_id: uuid.UUID | str,
        source: Source,
        reason: str | None = None,
        revoked_by: str | None = None,
    ) -> ChangeResult:
        return self._consents.revoke_consent(consent_id, source, reason, revoked_by)

    def get_consent(self, consent_id: uuid.UUID | str) -> dict[str, Any]:
        return self._consents.get_consent(consent_id)

    def list_consents(
        self,
        person_id: uuid.UUID | str | None = None,
        household_id: uuid.UUID | str | None = None,
    ) -> list[dict[str, Any]]:
        return self._consents.list_consents(person_id, household_id)

    # ------------------------------------------------------------------ resolution, review

    def resolve(
        self, reference: Mapping[str, Any], household_hint: Mapping[str, Any] | None = None
    ) -> Resolution:
        return self._reviews.resolve(reference, household_hint)

    def queue_review(
        self,
        *,
        kind: str,
        reason: str,
        record: Mapping[str, Any],
        candidates: Sequence[tuple[str, float]],
        source: Source,
        message_id: str | None = None,
    ) -> str:
        return self._reviews.queue_review(
            kind=kind,
            reason=reason,
            record=record,
            candidates=candidates,
            source=source,
            message_id=message_id,
        )

    def add_review_notes(self, message_id: str, notes: Sequence[Mapping[str, Any]]) -> bool:
        return self._reviews.add_review_notes(message_id, notes)

    def list_reviews(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        kind: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        return self._reviews.list_reviews(status, limit, offset, kind)

    def review_detail(self, review_id: uuid.UUID | str) -> dict[str, Any]:
        return self._reviews.review_detail(review_id)

    # ------------------------------------------------------------------ merges

    def merge_review(
        self,
        review_id: uuid.UUID | str,
        *,
        survivor_id: uuid.UUID | str | None,
        reason: str,
        actor: Actor,
        forced_reason: str | None = None,
        check: PairCheck | None = None,
    ) -> dict[str, Any]:
        return self._merges.merge_review(
            review_id,
            survivor_id=survivor_id,
            reason=reason,
            actor=actor,
            forced_reason=forced_reason,
            check=check,
        )

    def keep_apart(
        self,
        review_id: uuid.UUID | str,
        *,
        reason: str,
        actor: Actor,
        check: PairCheck | None = None,
    ) -> str:
        return self._merges.keep_apart(review_id, reason=reason, actor=actor, check=check)

    def merge_persons(
        self,
        survivor_id: uuid.UUID | str,
        merged_id: uuid.UUID | str,
        *,
        reason: str,
        actor: Actor,
        forced_reason: str | None = None,
    ) -> dict[str, Any]:
        return self._merges.merge_persons(
            survivor_id, merged_id, reason=reason, actor=actor, forced_reason=forced_reason
        )

    def unmerge(self, merge_id: uuid.UUID | str, *, reason: str, actor: Actor) -> dict[str, Any]:
        return self._merges.unmerge(merge_id, reason=reason, actor=actor)

    def get_merge(self, merge_id: uuid.UUID | str) -> dict[str, Any]:
        return self._merges.get_merge(merge_id)

    def merges_of(self, person_id: uuid.UUID | str) -> list[dict[str, Any]]:
        return self._merges.merges_of(person_id)

    def merges_of_review(self, review_id: uuid.UUID | str) -> list[dict[str, Any]]:
        return self._merges.merges_of_review(review_id)

    def survivor_of(self, person_id: uuid.UUID | str) -> str | None:
        return self._merges.survivor_of(person_id)

    # ------------------------------------------------------------------ reads

    def get_household(self, household_id: uuid.UUID | str) -> dict[str, Any]:
        return self._reads.get_household(household_id)

    def get_person(self, person_id: uuid.UUID | str) -> dict[str, Any]:
        return self._reads.get_person(person_id)

    def person_household_area(self, person_id: uuid.UUID | str) -> str | None:
        return self._reads.person_household_area(person_id)

    def list_households(
        self,
        *,
        area_prefixes: Sequence[str] | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        return self._reads.list_households(
            area_prefixes=area_prefixes, status=status, limit=limit, offset=offset
        )

    def household_ids_in_area(self, admin_area_code: str, limit: int = 100_000) -> list[str]:
        return self._reads.household_ids_in_area(admin_area_code, limit)

    def provenance(self, entity: str, entity_id: uuid.UUID | str) -> list[dict[str, Any]]:
        return self._reads.provenance(entity, entity_id)

    def outbox_since(self, after_sequence: int = 0, limit: int = 100) -> list[OutboxEvent]:
        return self._reads.outbox_since(after_sequence, limit)

    # ------------------------------------------------------------------ recertification

    @property
    def source_precedence(self) -> SourcePrecedence:
        """The precedence table in force (corrections read a fact's current value by it)."""
        return self._ws.precedence

    @property
    def recertification_policy(self) -> RecertificationPolicy:
        return self._ws.recertification

    def recertify(self, household_id: uuid.UUID | str, source: Source) -> dict[str, Any]:
        return self._recertifications.recertify(household_id, source)

    def run_recertification_round(self, today: date | None = None) -> RoundResult:
        return self._recertifications.run_round(today)

    def list_recertification(
        self,
        state: str,
        *,
        area_prefixes: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        return self._recertifications.list_households(
            state, area_prefixes=area_prefixes, limit=limit, offset=offset
        )

    def recertification_counts_by_area(
        self, *, area_prefixes: Sequence[str] | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        return self._recertifications.counts_by_area(area_prefixes=area_prefixes, limit=limit)
