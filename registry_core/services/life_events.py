"""Life events: births and deaths as a civil registry reports them.

Partner facts arrive at least once, often more than once, and sometimes in two steps (a
provisional record with only a tracking id, then the registered one). So both methods are
idempotent on the subject's identifiers: the same fact twice changes nothing and emits
nothing; a later delivery that adds something (a registration number, a corrected date) is
kept on the same person, never a second birth or death. What a record says around its
subject (place, residence, father, informant) is kept as provenance (``registry_core.vital``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.errors import BusinessRuleViolation, InvalidRecord
from registry_core.models import Household, HouseholdStatus, Identifier, Person
from registry_core.records import person_record
from registry_core.services.base import (
    PERSON_FIELDS,
    ChangeResult,
    Source,
    Workspace,
    current_membership,
    household_by_id,
    parse_date,
    person_by_id,
    person_by_identifier,
)
from registry_core.services.events import PersonBorn, PersonDied, emit
from registry_core.services.membership import household_updated, join, leave
from registry_core.services.people import add_identifiers, create_person
from registry_core.services.provenance import apply_household_fields, apply_person_fields
from registry_core.vital import (
    Finder,
    VitalFacts,
    move_death_end,
    owner_of,
    provenance_rows,
    subject_facts,
    unknown_identifiers,
)
from standards.timeutil import utcnow
from standards.validation import Violation, validate

# The relationship of a newborn to the head, from the mother's.
_CHILD_OF = {"head": "child", "spouse": "child", "child": "grandchild"}


class LifeEvents:
    """Births and deaths."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def record_birth(
        self,
        mother_person_id: uuid.UUID | str | None,
        child: Mapping[str, Any],
        source: Source,
        facts: VitalFacts | None = None,
    ) -> ChangeResult:
        """A child born to a registered mother joins her current household.

        ``child`` is a canonical person; its identifiers (birth registration number, the civil
        registry's tracking or draft id) make the call idempotent: a child already recorded
        under any of them is that child. A later delivery that brings an identifier the child
        lacks (the registration number after a provisional record) adds it and re-asserts the
        child's fields under that record: the same child, no second ``person.born``, and a
        ``household.updated``. ``mother_person_id`` may be None only for such a child.
        ``facts`` (place, mother's residence, father, informant) are kept as provenance; the
        residence's text becomes the household's address only where no better source gave one.
        Emits ``person.born`` and ``household.member_added`` for a new child.
        """
        validate("person.json", child, writing=True)
        facts = facts or VitalFacts()
        ws = self._ws
        with ws.transaction() as session:
            existing = owner_of(self._finder(session), child.get("identifiers", []))
            if existing is not None:
                events = self._learn(session, existing, child, source, facts, "birth_place")
                return ChangeResult(person_record(session, existing, ws.cipher), events)
            if mother_person_id is None:
                raise BusinessRuleViolation("the mother is not known and the child is not")
            mother = person_by_id(session, mother_person_id, live=True)
            membership = current_membership(session, mother.id)
            if membership is None:
                raise BusinessRuleViolation(
                    "the mother is not a current member of any household; "
                    "register her household first"
                )
            household = household_by_id(session, membership.household_id)
            relationship = _CHILD_OF.get(membership.relationship_to_head, "other_relative")
            person = create_person(ws, session, child, source, "$.identifiers")
            birth_date = date.fromisoformat(child["birth_date"])
            events = join(session, household, person, relationship, source, "birth", birth_date)
            self._keep_facts(session, person, subject_facts(facts, "birth_place"), source)
            self._keep_residence(session, mother, household, facts, source)
            born = PersonBorn(
                person_id=person.id,
                household_id=household.id,
                mother_person_id=mother.id,
                birth_date=birth_date,
                sex=child["sex"],
                identifier_systems={i["system"] for i in child.get("identifiers", [])},
                admin_area_code=household.admin_area_code,
                place_admin_area_code=facts.place.get("admin_area_code"),
                provisional=facts.provisional,
                source=source,
            )
            emit(session, born)
            return ChangeResult(person_record(session, person, ws.cipher), [born.TYPE, *events])

    def record_death(
        self,
        person_id: uuid.UUID | str,
        death_date: date | str,
        source: Source,
        death_registration_number: str | None = None,
        identifiers: Sequence[Mapping[str, Any]] = (),
        facts: VitalFacts | None = None,
    ) -> ChangeResult:
        """Mark a person deceased, end their membership on the date of death, flag the
        household if they headed it.

        Idempotent: a person already recorded as deceased emits nothing new. A later delivery
        that brings something new (the registration number after a provisional record, a
        corrected date) is kept: identifiers added, the date asserted (and the membership's
        end moved with it), the facts kept as provenance. ``identifiers``: the civil
        registry's ids of the death (tracking, draft id), so its later deliveries find this
        person. Emits ``person.died``, ``household.member_removed`` and, for a head,
        ``household.updated`` (needs_review).
        """
        when = parse_date(death_date)
        if when is None or when > utcnow().date():
            raise InvalidRecord(
                [Violation("$.death_date", "range", "must be a date not in the future")]
            )
        facts = facts or VitalFacts()
        ids: list[Mapping[str, Any]] = list(identifiers)
        if death_registration_number:
            ids.append(
                {
                    "system": "death_registration",
                    "value": death_registration_number,
                    "verified": True,
                }
            )
        ws = self._ws
        with ws.transaction() as session:
            person = person_by_id(session, person_id, live=True)
            fresh = unknown_identifiers(self._finder(session), person, ids)
            if person.is_deceased and not fresh and person.death_date == when:
                return ChangeResult(person_record(session, person, ws.cipher), [])
            if person.birth_date and when < person.birth_date:
                raise InvalidRecord(
                    [Violation("$.death_date", "range", "is before the birth date")]
                )
            add_identifiers(ws, session, person, fresh, source, "$.identifiers")
            before = person.death_date
            apply_person_fields(session, ws.precedence, person, {"death_date": when}, source)
            self._keep_facts(session, person, subject_facts(facts, "death_place"), source)
            if person.is_deceased:
                if person.death_date != before:
                    move_death_end(session, person)
                return ChangeResult(person_record(session, person, ws.cipher), [])
            person.is_deceased = True
            person.updated_at = utcnow()
            membership = current_membership(session, person.id)
            household: Household | None = None
            was_head = False
            if membership is not None:
                household = household_by_id(session, membership.household_id)
                was_head = household.head_person_id == person.id
                self._keep_residence(session, person, household, facts, source)
            systems = session.scalars(
                select(Identifier.system).where(Identifier.person_id == person.id)
            )
            died = PersonDied(
                person_id=person.id,
                household_id=household.id if household else None,
                death_date=when,
                was_head=was_head,
                identifier_systems=set(systems),
                admin_area_code=household.admin_area_code if household else None,
                place_admin_area_code=facts.place.get("admin_area_code"),
                provisional=facts.provisional,
                source=source,
            )
            events = [emit(session, died)]
            if household is not None:
                events += leave(session, household, person, source, "death", when)
                if was_head:
                    household.status = HouseholdStatus.NEEDS_REVIEW
                    household.review_reason = "the household head died; name a new head"
                    events.append(
                        household_updated(
                            session, household, ["status"], source, person.id, "head_died"
                        )
                    )
            return ChangeResult(person_record(session, person, ws.cipher), events)

    # -- what a vital record adds besides its subject ----------------------------------------

    def _finder(self, session: Session) -> Finder:
        cipher = self._ws.cipher
        return lambda system, value: person_by_identifier(session, cipher, system, value)

    def _learn(
        self,
        session: Session,
        person: Person,
        data: Mapping[str, Any],
        source: Source,
        facts: VitalFacts,
        place_field: str,
    ) -> list[str]:
        """A known subject delivered again: keep what the delivery adds (identifiers, then its
        fields and facts under this record); nothing when it adds no identifier."""
        ws = self._ws
        fresh = unknown_identifiers(self._finder(session), person, data.get("identifiers", []))
        if not fresh:
            return []
        add_identifiers(ws, session, person, fresh, source, "$.identifiers")
        fields_ = {k: data[k] for k in PERSON_FIELDS if k in data}
        changed = [
            "identifiers",
            *apply_person_fields(session, ws.precedence, person, fields_, source),
        ]
        self._keep_facts(session, person, subject_facts(facts, place_field), source)
        person.updated_at = utcnow()
        membership = current_membership(session, person.id)
        if membership is None:
            return []
        household = household_by_id(session, membership.household_id)
        member_fields = [f"person.{c}" for c in changed]
        return [household_updated(session, household, member_fields, source, person.id)]

    def _keep_facts(
        self, session: Session, person: Person, facts: Mapping[str, Any], source: Source
    ) -> None:
        session.add_all(
            provenance_rows(
                self._ws.cipher,
                person.id,
                facts,
                system=source.system,
                record_id=source.record_id,
                asserted_at=source.at(),
            )
        )

    def _keep_residence(
        self,
        session: Session,
        person: Person,
        household: Household,
        facts: VitalFacts,
        source: Source,
    ) -> None:
        """The mother's / deceased's residence: provenance of the person, and the address of
        their household through source precedence (it never outranks a survey or staff)."""
        if not facts.residence:
            return
        self._keep_facts(session, person, {"residence": dict(facts.residence)}, source)
        text = facts.residence.get("text")
        if text:
            changed = apply_household_fields(
                session, self._ws.precedence, household, {"address": text}, source
            )
            if changed:
                household_updated(session, household, changed, source, person.id)
