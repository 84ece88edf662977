"""Registry services: every change to households and people goes through here.

Each public method is one transaction: it validates its input against the canonical schema,
applies the change through field provenance and source precedence, and writes its events to the
outbox in the same transaction, so an event exists exactly when its change does. Methods that
record partner facts (births, deaths, verifications) are idempotent: the same fact delivered
twice changes nothing and emits nothing the second time, which is what at-least-once delivery
from the broker needs.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from registry_core.crypto import IdentifierCipher
from registry_core.db import utcnow
from registry_core.errors import (
    BusinessRuleViolation,
    ConflictError,
    DuplicateIdentifier,
    InvalidRecord,
    NotFound,
)
from registry_core.identifiers import NOTE_FIELD, add_notes, identifier_violations
from registry_core.matching import Matcher
from registry_core.models import (
    Consent,
    EligibilityScore,
    FieldAssertion,
    Household,
    HouseholdStatus,
    Identifier,
    IdentifierSystem,
    MatchReview,
    Membership,
    OutboxEvent,
    Person,
    SocioEconomicAttribute,
    VerificationStatus,
)
from registry_core.outbox import write_event
from registry_core.precedence import Candidate, SourcePrecedence
from registry_core.records import household_record, person_record
from registry_core.resolution import (
    Resolution,
    open_review,
    refresh_match_keys,
    resolve_person,
    review_record,
    seal_review_record,
)
from registry_core.vital import (
    VitalFacts,
    event_flags,
    move_death_end,
    owner_of,
    provenance_rows,
    subject_facts,
    unknown_identifiers,
)
from standards.identifiers import IdentifierProfile
from standards.validation import Violation, validate

T = TypeVar("T")

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

PERSON_FIELDS = ("given_name", "family_name", "other_names", "sex", "birth_date")
HOUSEHOLD_FIELDS = ("admin_area_code", "address", "location")


@dataclass(frozen=True)
class Source:
    """Who asserts a fact: the source system, its record id, and when it was true/asserted."""

    system: str
    record_id: str | None = None
    asserted_at: datetime | None = None

    def at(self) -> datetime:
        return self.asserted_at or utcnow()

    def as_event(self) -> dict[str, Any]:
        return {"system": self.system, "record_id": self.record_id}


@dataclass
class ChangeResult:
    """What a service call did: the record afterwards and the events it wrote."""

    record: dict[str, Any]
    events: list[str] = field(default_factory=list)


def _new_registry_number() -> str:
    return "SR-" + base64.b32encode(uuid.uuid4().bytes[:8]).decode("ascii").rstrip("=")


def _parse_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


class Registry:
    """The registry's write and read services over one database."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        cipher: IdentifierCipher,
        precedence: SourcePrecedence | None = None,
        matcher: Matcher | None = None,
    ) -> None:
        self._sessions = session_factory
        self._cipher = cipher
        self._precedence = precedence or SourcePrecedence.default()
        self._matcher = matcher or Matcher()
        self._outer: Session | None = None

    def within(self, session: Session) -> Registry:
        """The same services, working inside the caller's open transaction.

        Each call runs in a SAVEPOINT of ``session``: a refused record rolls back alone, and a
        successful one commits together with whatever else the caller does in that transaction
        (the ingest worker records the message as processed there: exactly-once effect).
        """
        bound = copy.copy(self)
        bound._outer = session
        return bound

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """One unit of work; stale versions and constraint races become ConflictError."""
        outer = self._outer
        session = outer if outer is not None else self._sessions()
        try:
            with session.begin_nested() if outer is not None else session.begin():
                yield session
        except StaleDataError as exc:
            raise ConflictError(
                "the record was changed by someone else at the same time; read it again"
            ) from exc
        except IntegrityError as exc:
            raise ConflictError(
                "a concurrent change created the same record first; read it again"
            ) from exc
        finally:
            if outer is None:
                session.close()

    def _read(self, work: Callable[[Session], T]) -> T:
        if self._outer is not None:
            return work(self._outer)
        with self._sessions() as session:
            return work(session)

    @property
    def identifier_profile(self) -> IdentifierProfile:
        """The country profile this registry normalises and checks identifiers with (the
        cipher's: the look-up hash is computed from its normalisation)."""
        return self._cipher.profile

    def ensure_identifier_systems(self) -> None:
        """Register the built-in identifier systems and every system of the country profile
        (idempotent); called at start-up."""
        wanted = dict(BUILTIN_IDENTIFIER_SYSTEMS)
        wanted.update({rule.system: rule.description for rule in self.identifier_profile})
        with self._transaction() as session:
            existing = set(session.scalars(select(IdentifierSystem.code)))
            for code, description in wanted.items():
                if code not in existing:
                    session.add(IdentifierSystem(code=code, description=description[:500]))

    def register_identifier_system(self, code: str, description: str) -> None:
        validate(
            "person.json",
            {
                "given_name": "x",
                "family_name": "x",
                "sex": "unknown",
                "birth_date": "2000-01-01",
                "identifiers": [{"system": code, "value": "X"}],
            },
        )
        with self._transaction() as session:
            if session.get(IdentifierSystem, code) is None:
                session.add(IdentifierSystem(code=code, description=description))

    # ------------------------------------------------------------------ look-ups

    def _household(
        self, session: Session, household_id: uuid.UUID | str, *, lock: bool = False
    ) -> Household:
        key = uuid.UUID(str(household_id))
        household = session.get(Household, key, with_for_update=lock or None)
        if household is None:
            raise NotFound("household", key)
        return household

    def _person(self, session: Session, person_id: uuid.UUID | str) -> Person:
        key = uuid.UUID(str(person_id))
        person = session.get(Person, key)
        if person is None:
            raise NotFound("person", key)
        return person

    def _find_by_identifier(self, session: Session, system: str, value: str) -> Person | None:
        digest = self._cipher.lookup_hash(system, value)
        return session.scalar(
            select(Person)
            .join(Identifier, Identifier.person_id == Person.id)
            .where(Identifier.system == system, Identifier.value_hash == digest)
        )

    def _current_membership(self, session: Session, person_id: uuid.UUID) -> Membership | None:
        return session.scalar(
            select(Membership).where(
                Membership.person_id == person_id, Membership.end_date.is_(None)
            )
        )

    @staticmethod
    def _check_version(household: Household, expected_version: int | None) -> None:
        if expected_version is not None and household.version != expected_version:
            raise ConflictError(
                f"household {household.id} is at version {household.version}, "
                f"not {expected_version}; read it again and retry",
                current_version=household.version,
            )

    # ------------------------------------------------------------------ provenance

    def _assert_fields(
        self,
        session: Session,
        entity: str,
        entity_id: uuid.UUID,
        values: dict[str, Any],
        source: Source,
        *,
        new: bool = False,
    ) -> dict[str, Any]:
        """Record assertions and return {field: current value} after precedence.

        For a new entity the given values are the current ones, so no query is made (and the
        entity is not flushed early, which would spend a version number on its creation).
        """
        asserted_at = source.at()
        for name, value in values.items():
            session.add(
                FieldAssertion(
                    entity_type=entity,
                    entity_id=entity_id,
                    field=name,
                    value=_json_value(value),
                    source_system=source.system,
                    source_record_id=source.record_id,
                    asserted_at=asserted_at,
                )
            )
        if new:
            return {name: _json_value(value) for name, value in values.items()}
        session.flush()
        winners: dict[str, Any] = {}
        rows = session.scalars(
            select(FieldAssertion).where(
                FieldAssertion.entity_type == entity,
                FieldAssertion.entity_id == entity_id,
                FieldAssertion.field.in_(list(values)),
            )
        ).all()
        for name in values:
            candidates = [
                Candidate(r.value, r.source_system, r.asserted_at, r.id)
                for r in rows
                if r.field == name
            ]
            best = self._precedence.choose(entity, name, candidates)
            if best is not None:
                winners[name] = best.value
        return winners

    def _apply_person_fields(
        self,
        session: Session,
        person: Person,
        values: dict[str, Any],
        source: Source,
        *,
        new: bool = False,
    ) -> list[str]:
        winners = self._assert_fields(session, "person", person.id, values, source, new=new)
        changed: list[str] = []
        for name, value in winners.items():
            typed = _parse_date(value) if name in ("birth_date", "death_date") else value
            if getattr(person, name) != typed:
                setattr(person, name, typed)
                changed.append(name)
        if not new and set(changed) & {"given_name", "family_name", "birth_date", "sex"}:
            refresh_match_keys(session, person)
        return changed

    def _apply_household_fields(
        self,
        session: Session,
        household: Household,
        values: dict[str, Any],
        source: Source,
        *,
        new: bool = False,
    ) -> list[str]:
        winners = self._assert_fields(session, "household", household.id, values, source, new=new)
        changed: list[str] = []
        for name, value in winners.items():
            if name == "location":
                lat, lon = (value or {}).get("lat"), (value or {}).get("lon")
                if (household.latitude, household.longitude) != (lat, lon):
                    household.latitude, household.longitude = lat, lon
                    changed.append(name)
            elif getattr(household, name) != value:
                setattr(household, name, value)
                changed.append(name)
        return changed

    # ------------------------------------------------------------------ identifiers

    def _add_identifiers(
        self,
        session: Session,
        person: Person,
        identifiers: Sequence[dict[str, Any]],
        source: Source,
        path: str,
    ) -> None:
        known = set(session.scalars(select(IdentifierSystem.code)))
        problems = [
            Violation(f"{path}[{i}].system", "registered", "is not a registered identifier system")
            for i, ident in enumerate(identifiers)
            if ident["system"] not in known
        ]
        problems += identifier_violations(
            self.identifier_profile, [i for i in identifiers if i["system"] in known], path
        )
        if problems:
            raise InvalidRecord(problems)
        for ident in identifiers:
            system, value = ident["system"], ident["value"]
            owner = self._find_by_identifier(session, system, value)
            if owner is not None and owner.id != person.id:
                raise DuplicateIdentifier(system, owner.id)
            if owner is not None:
                continue
            session.add(
                Identifier(
                    person_id=person.id,
                    system=system,
                    value_hash=self._cipher.lookup_hash(system, value),
                    value_ciphertext=self._cipher.encrypt(system, value),
                    verified=bool(ident.get("verified", False)),
                    source_system=source.system,
                )
            )

    def _create_person(
        self, session: Session, data: dict[str, Any], source: Source, path: str
    ) -> Person:
        person = Person(id=uuid.uuid4(), is_deceased=False)
        self._apply_person_fields(
            session, person, {k: data[k] for k in PERSON_FIELDS if k in data}, source, new=True
        )
        session.add(person)
        refresh_match_keys(session, person)
        self._add_identifiers(session, person, data.get("identifiers", []), source, path)
        return person

    # ------------------------------------------------------------------ households

    def register_household(self, record: dict[str, Any], source: Source) -> ChangeResult:
        """Create a household with its members; emits ``household.created``."""
        validate("household.json", record, writing=True)
        heads = [i for i, m in enumerate(record["members"]) if m.get("relationship") == "head"]
        if len(heads) != 1:
            raise InvalidRecord(
                [
                    Violation(
                        "$.members",
                        "head",
                        f"exactly one member must be the head, not {len(heads)}",
                    )
                ]
            )
        missing = [
            Violation(f"$.members[{i}].relationship", "required", "is required for members")
            for i, m in enumerate(record["members"])
            if "relationship" not in m
        ]
        if missing:
            raise InvalidRecord(missing)
        with self._transaction() as session:
            people = [
                self._create_person(session, member, source, f"$.members[{index}].identifiers")
                for index, member in enumerate(record["members"])
            ]
            household = Household(
                id=uuid.uuid4(),
                registry_number=_new_registry_number(),
                admin_area_code=record["admin_area_code"],
                status=HouseholdStatus.ACTIVE,
                head_person_id=people[heads[0]].id,
            )
            self._apply_household_fields(
                session,
                household,
                {k: record[k] for k in HOUSEHOLD_FIELDS if k in record},
                source,
                new=True,
            )
            session.add(household)
            start = source.at().date()
            members_event = []
            for person, member in zip(people, record["members"], strict=True):
                session.add(
                    Membership(
                        household_id=household.id,
                        person_id=person.id,
                        relationship_to_head=member["relationship"],
                        start_date=start,
                    )
                )
                members_event.append(
                    {"person_id": str(person.id), "relationship": member["relationship"]}
                )
            self._record_attributes(
                session, household, people, record.get("attributes", []), source
            )
            session.flush()
            write_event(
                session,
                "household.created",
                f"household/{household.id}",
                {
                    "household_id": str(household.id),
                    "registry_number": household.registry_number,
                    "member_count": len(people),
                    "members": members_event,
                    "admin_area_code": household.admin_area_code,
                    "source": source.as_event(),
                },
            )
            return ChangeResult(
                household_record(session, household, self._cipher), ["household.created"]
            )

    def update_household(
        self,
        household_id: uuid.UUID | str,
        changes: dict[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Assert new values for household fields; emits ``household.updated`` if the current
        value of any field changed (a lower-precedence source only adds provenance)."""
        unknown = sorted(set(changes) - set(HOUSEHOLD_FIELDS))
        if unknown or not changes:
            raise InvalidRecord(
                [
                    Violation(
                        "$",
                        "fields",
                        f"updatable fields are {', '.join(HOUSEHOLD_FIELDS)}; "
                        f"got {', '.join(unknown) or 'none'}",
                    )
                ]
            )
        validate(
            "household.json",
            {
                **changes,
                "admin_area_code": changes.get("admin_area_code", "X"),
                "members": [
                    {
                        "given_name": "x",
                        "family_name": "x",
                        "sex": "unknown",
                        "birth_date": "2000-01-01",
                    }
                ],
            },
            writing=True,
        )
        with self._transaction() as session:
            household = self._household(session, household_id)
            self._check_version(household, expected_version)
            changed = self._apply_household_fields(session, household, changes, source)
            events = []
            if changed:
                events.append(self._household_updated(session, household, changed, source))
            return ChangeResult(household_record(session, household, self._cipher), events)

    def _household_updated(
        self,
        session: Session,
        household: Household,
        changed: list[str],
        source: Source,
        person_id: uuid.UUID | None = None,
        reason: str | None = None,
    ) -> str:
        household.updated_at = utcnow()  # bumps the version even when only members changed
        session.flush()
        data: dict[str, Any] = {
            "household_id": str(household.id),
            "version": household.version,
            "status": household.status,
            "changed_fields": changed,
            "admin_area_code": household.admin_area_code,
            "source": source.as_event(),
        }
        if person_id is not None:
            data["person_id"] = str(person_id)
        if reason:
            data["reason"] = reason
        write_event(session, "household.updated", f"household/{household.id}", data)
        return "household.updated"

    def update_person(
        self,
        person_id: uuid.UUID | str,
        changes: dict[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Assert new values for a person's fields (and add identifiers); emits
        ``household.updated`` on the person's household when a current value changed."""
        allowed = (*PERSON_FIELDS, "identifiers")
        unknown = sorted(set(changes) - set(allowed))
        if unknown or not changes:
            raise InvalidRecord(
                [
                    Violation(
                        "$",
                        "fields",
                        f"updatable fields are {', '.join(allowed)}; "
                        f"got {', '.join(unknown) or 'none'}",
                    )
                ]
            )
        probe = {
            "given_name": "x",
            "family_name": "x",
            "sex": "unknown",
            "birth_date": "2000-01-01",
        }
        validate("person.json", {**probe, **changes}, writing=True)
        with self._transaction() as session:
            person = self._person(session, person_id)
            if expected_version is not None and person.version != expected_version:
                raise ConflictError(
                    f"person {person.id} is at version {person.version}, not {expected_version}",
                    current_version=person.version,
                )
            fields_ = {k: v for k, v in changes.items() if k != "identifiers"}
            changed = self._apply_person_fields(session, person, fields_, source) if fields_ else []
            if "identifiers" in changes:
                before = len(person.identifiers)
                self._add_identifiers(
                    session, person, changes["identifiers"], source, "$.identifiers"
                )
                session.flush()
                session.refresh(person)
                if len(person.identifiers) != before:
                    changed.append("identifiers")
            events: list[str] = []
            if changed:
                person.updated_at = utcnow()
                membership = self._current_membership(session, person.id)
                if membership is not None:
                    household = self._household(session, membership.household_id)
                    events.append(
                        self._household_updated(
                            session, household, [f"person.{c}" for c in changed], source, person.id
                        )
                    )
            session.flush()
            return ChangeResult(person_record(session, person, self._cipher), events)

    def add_member(
        self,
        household_id: uuid.UUID | str,
        member: dict[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Add a new person (``member`` is a canonical person with ``relationship``) or an
        existing one (``{"person_id": ..., "relationship": ...}``); emits
        ``household.member_added``. A person belongs to one household at a time."""
        with self._transaction() as session:
            household = self._household(session, household_id)
            self._check_version(household, expected_version)
            relationship = member.get("relationship")
            if "person_id" in member:
                if set(member) - {"person_id", "relationship"}:
                    raise InvalidRecord(
                        [Violation("$", "fields", "give person_id and relationship only")]
                    )
                person = self._person(session, member["person_id"])
                if person.is_deceased:
                    raise BusinessRuleViolation("a deceased person cannot join a household")
                if self._current_membership(session, person.id) is not None:
                    raise BusinessRuleViolation(
                        "the person is a member of another household; remove them there first"
                    )
            else:
                validate("person.json", member, writing=True)
                person = self._create_person(session, member, source, "$.identifiers")
            if relationship is None:
                raise InvalidRecord([Violation("$.relationship", "required", "is required")])
            if relationship == "head":
                raise BusinessRuleViolation("the household has a head; use set_head to change it")
            result = self._join(session, household, person, relationship, source, "joined")
            return ChangeResult(household_record(session, household, self._cipher), result)

    def _join(
        self,
        session: Session,
        household: Household,
        person: Person,
        relationship: str,
        source: Source,
        reason: str,
        start: date | None = None,
    ) -> list[str]:
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
        write_event(
            session,
            "household.member_added",
            f"household/{household.id}",
            {
                "household_id": str(household.id),
                "person_id": str(person.id),
                "relationship": relationship,
                "start_date": start.isoformat(),
                "reason": reason,
                "admin_area_code": household.admin_area_code,
                "source": source.as_event(),
            },
        )
        return ["household.member_added"]

    def remove_member(
        self,
        household_id: uuid.UUID | str,
        person_id: uuid.UUID | str,
        source: Source,
        reason: str = "left",
        end_date: date | None = None,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """End a person's membership (history is kept); emits ``household.member_removed``."""
        if reason not in ("left", "correction"):
            raise InvalidRecord([Violation("$.reason", "enum", "must be left or correction")])
        with self._transaction() as session:
            household = self._household(session, household_id)
            self._check_version(household, expected_version)
            person = self._person(session, person_id)
            if household.head_person_id == person.id:
                raise BusinessRuleViolation("the head cannot be removed; name a new head first")
            events = self._leave(session, household, person, source, reason, end_date)
            if not events:
                raise NotFound("current membership of that person in household", household.id)
            return ChangeResult(household_record(session, household, self._cipher), events)

    def _leave(
        self,
        session: Session,
        household: Household,
        person: Person,
        source: Source,
        reason: str,
        end_date: date | None,
    ) -> list[str]:
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
        write_event(
            session,
            "household.member_removed",
            f"household/{household.id}",
            {
                "household_id": str(household.id),
                "person_id": str(person.id),
                "end_date": membership.end_date.isoformat(),
                "reason": reason,
                "admin_area_code": household.admin_area_code,
                "source": source.as_event(),
            },
        )
        return ["household.member_removed"]

    def set_head(
        self,
        household_id: uuid.UUID | str,
        person_id: uuid.UUID | str,
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Name a living current member as head; clears a ``needs_review`` left by a death."""
        with self._transaction() as session:
            household = self._household(session, household_id)
            self._check_version(household, expected_version)
            person = self._person(session, person_id)
            membership = self._current_membership(session, person.id)
            if membership is None or membership.household_id != household.id or person.is_deceased:
                raise BusinessRuleViolation("the new head must be a living current member")
            old_head = household.head_person_id
            if old_head is not None and old_head != person.id:
                old = self._current_membership(session, old_head)
                if old is not None and old.household_id == household.id:
                    old.relationship_to_head = "other_relative"
            membership.relationship_to_head = "head"
            household.head_person_id = person.id
            household.status = HouseholdStatus.ACTIVE
            household.review_reason = None
            events = [
                self._household_updated(
                    session, household, ["head_person_id", "status"], source, person.id
                )
            ]
            return ChangeResult(household_record(session, household, self._cipher), events)

    # ------------------------------------------------------------------ vital events

    def record_birth(
        self,
        mother_person_id: uuid.UUID | str | None,
        child: dict[str, Any],
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
        with self._transaction() as session:
            existing = owner_of(self._finder(session), child.get("identifiers", []))
            if existing is not None:
                events = self._learn(session, existing, child, source, facts, "birth_place")
                return ChangeResult(person_record(session, existing, self._cipher), events)
            if mother_person_id is None:
                raise BusinessRuleViolation("the mother is not known and the child is not")
            mother = self._person(session, mother_person_id)
            membership = self._current_membership(session, mother.id)
            if membership is None:
                raise BusinessRuleViolation(
                    "the mother is not a current member of any household; "
                    "register her household first"
                )
            household = self._household(session, membership.household_id)
            relationship = {"head": "child", "spouse": "child", "child": "grandchild"}.get(
                membership.relationship_to_head, "other_relative"
            )
            person = self._create_person(session, child, source, "$.identifiers")
            birth_date = _parse_date(child["birth_date"])
            events = self._join(
                session, household, person, relationship, source, "birth", birth_date
            )
            self._keep_facts(session, person, subject_facts(facts, "birth_place"), source)
            self._keep_residence(session, mother, household, facts, source)
            data = {
                "person_id": str(person.id),
                "household_id": str(household.id),
                "mother_person_id": str(mother.id),
                "birth_date": child["birth_date"],
                "sex": child["sex"],
                "identifier_systems": sorted({i["system"] for i in child.get("identifiers", [])}),
                "admin_area_code": household.admin_area_code,
                **event_flags(facts),
                "source": source.as_event(),
            }
            write_event(session, "person.born", f"person/{person.id}", data)
            return ChangeResult(
                person_record(session, person, self._cipher), ["person.born", *events]
            )

    def record_death(
        self,
        person_id: uuid.UUID | str,
        death_date: date | str,
        source: Source,
        death_registration_number: str | None = None,
        identifiers: Sequence[dict[str, Any]] = (),
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
        when = _parse_date(death_date)
        if when is None or when > utcnow().date():
            raise InvalidRecord(
                [Violation("$.death_date", "range", "must be a date not in the future")]
            )
        facts = facts or VitalFacts()
        ids = list(identifiers)
        if death_registration_number:
            ids.append(
                {
                    "system": "death_registration",
                    "value": death_registration_number,
                    "verified": True,
                }
            )
        with self._transaction() as session:
            person = self._person(session, person_id)
            fresh = unknown_identifiers(self._finder(session), person, ids)
            if person.is_deceased and not fresh and person.death_date == when:
                return ChangeResult(person_record(session, person, self._cipher), [])
            if person.birth_date and when < person.birth_date:
                raise InvalidRecord(
                    [Violation("$.death_date", "range", "is before the birth date")]
                )
            self._add_identifiers(session, person, fresh, source, "$.identifiers")
            before = person.death_date
            self._apply_person_fields(session, person, {"death_date": when}, source)
            self._keep_facts(session, person, subject_facts(facts, "death_place"), source)
            if person.is_deceased:
                if person.death_date != before:
                    move_death_end(session, person)
                return ChangeResult(person_record(session, person, self._cipher), [])
            person.is_deceased = True
            person.updated_at = utcnow()
            membership = self._current_membership(session, person.id)
            events: list[str] = []
            household: Household | None = None
            was_head = False
            if membership is not None:
                household = self._household(session, membership.household_id)
                was_head = household.head_person_id == person.id
                self._keep_residence(session, person, household, facts, source)
            systems = sorted(
                set(
                    session.scalars(
                        select(Identifier.system).where(Identifier.person_id == person.id)
                    )
                )
            )
            write_event(
                session,
                "person.died",
                f"person/{person.id}",
                {
                    "person_id": str(person.id),
                    "household_id": str(household.id) if household else None,
                    "death_date": when.isoformat(),
                    "was_head": was_head,
                    "identifier_systems": systems,
                    "admin_area_code": household.admin_area_code if household else None,
                    **event_flags(facts),
                    "source": source.as_event(),
                },
            )
            events.append("person.died")
            if household is not None:
                events += self._leave(session, household, person, source, "death", when)
                if was_head:
                    household.status = HouseholdStatus.NEEDS_REVIEW
                    household.review_reason = "the household head died; name a new head"
                    events.append(
                        self._household_updated(
                            session, household, ["status"], source, person.id, "head_died"
                        )
                    )
            return ChangeResult(person_record(session, person, self._cipher), events)

    # -- helpers of the vital events (kept together: they move out with them) --------------

    def _finder(self, session: Session) -> Callable[[str, str], Person | None]:
        return lambda system, value: self._find_by_identifier(session, system, value)

    def _learn(
        self,
        session: Session,
        person: Person,
        data: dict[str, Any],
        source: Source,
        facts: VitalFacts,
        place_field: str,
    ) -> list[str]:
        """A known subject delivered again: keep what the delivery adds (identifiers, then its
        fields and facts under this record); nothing when it adds no identifier."""
        fresh = unknown_identifiers(self._finder(session), person, data.get("identifiers", []))
        if not fresh:
            return []
        self._add_identifiers(session, person, fresh, source, "$.identifiers")
        fields_ = {k: data[k] for k in PERSON_FIELDS if k in data}
        changed = ["identifiers", *self._apply_person_fields(session, person, fields_, source)]
        self._keep_facts(session, person, subject_facts(facts, place_field), source)
        person.updated_at = utcnow()
        membership = self._current_membership(session, person.id)
        if membership is None:
            return []
        household = self._household(session, membership.household_id)
        return [
            self._household_updated(
                session, household, [f"person.{c}" for c in changed], source, person.id
            )
        ]

    def _keep_facts(
        self, session: Session, person: Person, facts: dict[str, Any], source: Source
    ) -> None:
        session.add_all(
            provenance_rows(
                self._cipher,
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
            changed = self._apply_household_fields(session, household, {"address": text}, source)
            if changed:
                self._household_updated(session, household, changed, source, person.id)

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
        The same result repeated emits nothing.
        """
        if not verified and not reason:
            raise InvalidRecord(
                [Violation("$.reason", "required", "a failed verification needs a reason")]
            )
        with self._transaction() as session:
            person = self._person(session, person_id)
            status = VerificationStatus.VERIFIED if verified else VerificationStatus.FAILED
            if person.verification_status == status and person.verification_source == source.system:
                return ChangeResult(person_record(session, person, self._cipher), [])
            when = source.at()
            person.verification_status = status
            person.verification_source = source.system
            person.verified_at = when
            person.updated_at = utcnow()
            for ident in person.identifiers:
                if ident.system == "national_id":
                    ident.verified = verified
            membership = self._current_membership(session, person.id)
            area = None
            if membership is not None:
                area = self._household(session, membership.household_id).admin_area_code
            when_text = when.isoformat().replace("+00:00", "Z")
            if verified:
                data = {
                    "person_id": str(person.id),
                    "verified_at": when_text,
                    "matched_fields": list(matched_fields),
                }
                kind = "person.verified"
            else:
                data = {
                    "person_id": str(person.id),
                    "checked_at": when_text,
                    "reason": reason,
                    "mismatched_fields": list(mismatched_fields),
                }
                kind = "person.verification_failed"
            write_event(
                session,
                kind,
                f"person/{person.id}",
                {**data, "admin_area_code": area, "source": source.as_event()},
            )
            session.flush()
            return ChangeResult(person_record(session, person, self._cipher), [kind])

    # ------------------------------------------------------------------ attributes, scores

    def _record_attributes(
        self,
        session: Session,
        household: Household,
        members: Sequence[Person],
        attributes: Sequence[dict[str, Any]],
        source: Source,
    ) -> list[str]:
        changed: list[str] = []
        for index, attr in enumerate(attributes):
            person_id = None
            if "member_index" in attr:
                if attr["member_index"] >= len(members):
                    raise InvalidRecord(
                        [
                            Violation(
                                f"$.attributes[{index}].member_index",
                                "range",
                                "points past the last member",
                            )
                        ]
                    )
                person_id = members[attr["member_index"]].id
            key = dict(
                household_id=household.id,
                person_id=person_id,
                domain=attr["domain"],
                name=attr["name"],
                period=attr.get("period", ""),
                source_system=source.system,
            )
            row = session.scalar(select(SocioEconomicAttribute).filter_by(**key))
            if row is None:
                row = SocioEconomicAttribute(**key, value=None)
                session.add(row)
            if row.value != attr["value"] or row.unit != attr.get("unit"):
                row.value = attr["value"]
                row.unit = attr.get("unit")
                row.source_record_id = source.record_id
                row.observed_at = source.at()
                changed.append(f"attributes.{attr['domain']}.{attr['name']}")
        return changed

    def record_attributes(
        self,
        household_id: uuid.UUID | str,
        attributes: Sequence[dict[str, Any]],
        source: Source,
    ) -> ChangeResult:
        """Upsert socio-economic facts (per source, domain, name, period); emits
        ``household.updated`` listing the facts that changed."""
        validate(
            "household.json",
            {
                "admin_area_code": "X",
                "attributes": list(attributes),
                "members": [
                    {
                        "given_name": "x",
                        "family_name": "x",
                        "sex": "unknown",
                        "birth_date": "2000-01-01",
                    }
                ],
            },
        )
        with self._transaction() as session:
            household = self._household(session, household_id)
            members = [
                m.person
                for m in session.scalars(
                    select(Membership)
                    .where(Membership.household_id == household.id, Membership.end_date.is_(None))
                    .order_by(Membership.start_date, Membership.id)
                )
            ]
            changed = self._record_attributes(session, household, members, attributes, source)
            events = []
            if changed:
                events.append(
                    self._household_updated(session, household, sorted(set(changed)), source)
                )
            return ChangeResult(household_record(session, household, self._cipher), events)

    def record_eligibility_score(
        self, household_id: uuid.UUID | str, model: str, score: float, inputs: dict[str, Any]
    ) -> ChangeResult:
        """Store a new score; emits ``household.eligibility_changed`` when it differs."""
        with self._transaction() as session:
            household = self._household(session, household_id)
            previous = session.scalar(
                select(EligibilityScore)
                .where(
                    EligibilityScore.household_id == household.id, EligibilityScore.model == model
                )
                .order_by(EligibilityScore.computed_at.desc())
                .limit(1)
            )
            events = []
            if previous is None or previous.score != score:
                session.add(
                    EligibilityScore(
                        household_id=household.id, model=model, score=score, inputs=inputs
                    )
                )
                write_event(
                    session,
                    "household.eligibility_changed",
                    f"household/{household.id}",
                    {
                        "household_id": str(household.id),
                        "model": model,
                        "score": score,
                        "previous_score": previous.score if previous else None,
                        "admin_area_code": household.admin_area_code,
                        "source": {"system": "registry", "record_id": None},
                    },
                )
                events.append("household.eligibility_changed")
            return ChangeResult(household_record(session, household, self._cipher), events)

    # ------------------------------------------------------------------ consent

    def grant_consent(
        self,
        program_code: str,
        purpose: str,
        channel: str,
        source: Source,
        person_id: uuid.UUID | str | None = None,
        household_id: uuid.UUID | str | None = None,
    ) -> ChangeResult:
        if (person_id is None) == (household_id is None):
            raise InvalidRecord(
                [Violation("$", "subject", "give exactly one of person_id, household_id")]
            )
        with self._transaction() as session:
            person = self._person(session, person_id) if person_id else None
            household = self._household(session, household_id) if household_id else None
            if household is None and person is not None:
                membership = self._current_membership(session, person.id)
                area_household = (
                    self._household(session, membership.household_id) if membership else None
                )
            else:
                area_household = household
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
            data = self._consent_data(consent)
            data.update(
                channel=channel,
                granted_at=consent.granted_at.isoformat().replace("+00:00", "Z"),
                admin_area_code=area_household.admin_area_code if area_household else None,
                source=source.as_event(),
            )
            write_event(session, "consent.granted", f"consent/{consent.id}", data)
            return ChangeResult(data, ["consent.granted"])

    @staticmethod
    def _consent_data(consent: Consent) -> dict[str, Any]:
        return {
            "consent_id": str(consent.id),
            "person_id": str(consent.person_id) if consent.person_id else None,
            "household_id": str(consent.household_id) if consent.household_id else None,
            "program_code": consent.program_code,
            "purpose": consent.purpose,
        }

    def revoke_consent(self, consent_id: uuid.UUID | str, source: Source) -> ChangeResult:
        with self._transaction() as session:
            consent = session.get(Consent, uuid.UUID(str(consent_id)))
            if consent is None:
                raise NotFound("consent", consent_id)
            data = self._consent_data(consent)
            if consent.revoked_at is not None:
                return ChangeResult(data, [])
            consent.revoked_at = source.at()
            data.update(
                revoked_at=consent.revoked_at.isoformat().replace("+00:00", "Z"),
                admin_area_code=None,
                source=source.as_event(),
            )
            write_event(session, "consent.revoked", f"consent/{consent.id}", data)
            return ChangeResult(data, ["consent.revoked"])

    # ------------------------------------------------------------------ resolution, review

    def resolve(
        self, reference: dict[str, Any], household_hint: dict[str, Any] | None = None
    ) -> Resolution:
        """Who ``reference`` (identifiers and/or names and birth date) is in the registry."""
        return self._read(
            lambda s: resolve_person(s, self._cipher, self._matcher, reference, household_hint)
        )

    def queue_review(
        self,
        *,
        kind: str,
        reason: str,
        record: dict[str, Any],
        candidates: Sequence[tuple[str, float]],
        source: Source,
        message_id: str | None = None,
    ) -> str:
        """Put a record in front of a person; returns the review id (idempotent per message)."""
        with self._transaction() as session:
            review = open_review(
                session,
                self._cipher,
                kind=kind,
                reason=reason,
                record=record,
                candidates=candidates,
                source_system=source.system,
                source_record_id=source.record_id,
                message_id=message_id,
            )
            session.flush()
            return str(review.id)

    def add_review_notes(self, message_id: str, notes: Sequence[dict[str, Any]]) -> bool:
        """Add data-quality notes to the (sealed) record of the review opened for
        ``message_id``; False when there is none."""
        with self._transaction() as session:
            review = session.scalar(select(MatchReview).where(MatchReview.message_id == message_id))
            if review is None:
                return False
            record = review_record(self._cipher, review)
            kept = record.setdefault("data_quality_notes", [])
            kept.extend(n for n in notes if n not in kept)
            review.record_sealed = seal_review_record(self._cipher, record)
            return True

    def list_reviews(
        self, status: str = "open", limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of reviews (with the sealed record opened) and the total."""

        def work(session: Session) -> tuple[list[dict[str, Any]], int]:
            query = select(MatchReview).where(MatchReview.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(MatchReview.created_at, MatchReview.id).limit(limit).offset(offset)
            ).all()
            return [
                {
                    "id": str(r.id),
                    "kind": r.kind,
                    "reason": r.reason,
                    "candidates": [{"person_id": c, "score": sc} for c, sc in r.candidates],
                    "record": review_record(self._cipher, r),
                    "source": {"system": r.source_system, "record_id": r.source_record_id},
                    "status": r.status,
                    "created_at": r.created_at.isoformat().replace("+00:00", "Z"),
                }
                for r in rows
            ], total

        return self._read(work)

    def record_person_attributes(
        self, person_id: uuid.UUID | str, attributes: Sequence[dict[str, Any]], source: Source
    ) -> ChangeResult:
        """Socio-economic facts about one person (e.g. income from the tax authority), kept on
        their current household; emits ``household.updated`` listing the facts that changed."""
        facts = [{**a, "member_index": 0} for a in attributes]
        validate(
            "household.json",
            {
                "admin_area_code": "X",
                "attributes": facts,
                "members": [
                    {
                        "given_name": "x",
                        "family_name": "x",
                        "sex": "unknown",
                        "birth_date": "2000-01-01",
                    }
                ],
            },
        )
        with self._transaction() as session:
            person = self._person(session, person_id)
            membership = self._current_membership(session, person.id)
            if membership is None:
                raise BusinessRuleViolation("the person is not a current member of any household")
            household = self._household(session, membership.household_id)
            changed = self._record_attributes(session, household, [person], facts, source)
            events = []
            if changed:
                events.append(
                    self._household_updated(
                        session, household, sorted(set(changed)), source, person.id
                    )
                )
            return ChangeResult(household_record(session, household, self._cipher), events)

    # ------------------------------------------------------------------ reads

    def get_household(self, household_id: uuid.UUID | str) -> dict[str, Any]:
        return self._read(
            lambda s: household_record(s, self._household(s, household_id), self._cipher)
        )

    def get_person(self, person_id: uuid.UUID | str) -> dict[str, Any]:
        return self._read(lambda s: person_record(s, self._person(s, person_id), self._cipher))

    def person_household_area(self, person_id: uuid.UUID | str) -> str | None:
        """Admin area of the person's current household (for area-scoped access checks)."""

        def work(session: Session) -> str | None:
            person = self._person(session, person_id)
            membership = self._current_membership(session, person.id)
            if membership is None:
                return None
            return self._household(session, membership.household_id).admin_area_code

        return self._read(work)

    def find_person_by_identifier(self, system: str, value: str) -> dict[str, Any] | None:
        """The person holding ``value`` of ``system``; ``InvalidRecord`` (naming the system and
        the rule) for a value that breaks the country profile, which nobody can hold."""
        problems = identifier_violations(
            self.identifier_profile, [{"system": system, "value": value}], "$.identifier"
        )
        if problems:
            raise InvalidRecord([Violation("$.identifier", v.rule, v.message) for v in problems])

        def work(session: Session) -> dict[str, Any] | None:
            person = self._find_by_identifier(session, system, value)
            return person_record(session, person, self._cipher) if person else None

        return self._read(work)

    def list_households(
        self,
        *,
        area_prefixes: Sequence[str] | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of households (newest first) and the total count, filtered by area prefixes."""

        def work(session: Session) -> tuple[list[dict[str, Any]], int]:
            query = select(Household)
            if area_prefixes is not None:
                if not area_prefixes:
                    return [], 0
                from sqlalchemy import or_

                query = query.where(
                    or_(
                        *[
                            Household.admin_area_code.startswith(p, autoescape=True)
                            for p in area_prefixes
                        ]
                    )
                )
            if status:
                query = query.where(Household.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(Household.created_at.desc(), Household.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return [household_record(session, h, self._cipher) for h in rows], total

        return self._read(work)

    def household_ids_in_area(self, admin_area_code: str, limit: int = 100_000) -> list[str]:
        """Ids of the active households whose area is ``admin_area_code`` or inside it."""

        def work(session: Session) -> list[str]:
            rows = session.scalars(
                select(Household.id)
                .where(
                    Household.admin_area_code.startswith(admin_area_code, autoescape=True),
                    Household.status != HouseholdStatus.DISSOLVED,
                )
                .order_by(Household.id)
                .limit(limit)
            )
            return [str(r) for r in rows]

        return self._read(work)

    def record_data_quality_notes(
        self,
        person_id: uuid.UUID | str,
        notes: Sequence[dict[str, Any]],
        source: Source,
    ) -> int:
        """Keep what a partner record's mapping dropped (and why) on the person the record is
        about, as provenance (field ``data_quality_note``); returns how many notes were new."""
        with self._transaction() as session:
            person = self._person(session, person_id)
            return add_notes(
                session, person.id, notes, source.system, source.record_id, source.at()
            )

    def provenance(self, entity: str, entity_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """Every assertion about an entity with a flag marking the current value per field.

        Data-quality notes (field ``data_quality_note``) are listed too; they are never a
        current value."""
        if entity not in ("person", "household"):
            raise ValueError("entity must be person or household")

        def work(session: Session) -> list[dict[str, Any]]:
            key = uuid.UUID(str(entity_id))
            getter = self._person if entity == "person" else self._household
            getter(session, key)
            rows = session.scalars(
                select(FieldAssertion)
                .where(FieldAssertion.entity_type == entity, FieldAssertion.entity_id == key)
                .order_by(FieldAssertion.field, FieldAssertion.id)
            ).all()
            winners: dict[str, int] = {}
            for name in {r.field for r in rows} - {NOTE_FIELD}:
                best = self._precedence.choose(
                    entity,
                    name,
                    [
                        Candidate(r.value, r.source_system, r.asserted_at, r.id)
                        for r in rows
                        if r.field == name
                    ],
                )
                if best is not None:
                    winners[name] = best.sequence
            return [
                {
                    "field": r.field,
                    "value": r.value,
                    "source_system": r.source_system,
                    "source_record_id": r.source_record_id,
                    "asserted_at": r.asserted_at.isoformat().replace("+00:00", "Z"),
                    "current": winners.get(r.field) == r.id,
                }
                for r in rows
            ]

        return self._read(work)

    def outbox_since(self, after_sequence: int = 0, limit: int = 100) -> list[OutboxEvent]:
        return self._read(
            lambda s: list(
                s.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.sequence > after_sequence)
                    .order_by(OutboxEvent.sequence)
                    .limit(limit)
                )
            )
        )
