"""Households: register one, change its fields or a member's, add and remove members, name a
head.

Every method validates its input against the canonical schema before it opens a transaction,
applies fields through provenance and precedence, and writes its events in the same
transaction. A caller that read a household may pass ``expected_version``: a household
changed since then is a ``ConflictError`` naming the current version, never a silent
overwrite. A person belongs to one household at a time; history is kept (memberships end,
they are never deleted).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry_core.errors import BusinessRuleViolation, ConflictError, InvalidRecord, NotFound
from registry_core.models import Household, HouseholdStatus, Membership
from registry_core.records import household_record, person_record
from registry_core.services.attributes import record_attribute_rows
from registry_core.services.base import (
    HOUSEHOLD_FIELDS,
    PERSON_FIELDS,
    ChangeResult,
    Source,
    Workspace,
    check_version,
    current_membership,
    household_by_id,
    new_registry_number,
    person_by_id,
)
from registry_core.services.events import HouseholdCreated, MemberRef, emit
from registry_core.services.membership import household_updated, join, leave
from registry_core.services.people import add_identifiers, create_person
from registry_core.services.provenance import apply_household_fields, apply_person_fields
from registry_core.services.recertification import certify
from standards.timeutil import utcnow
from standards.validation import Violation, validate

# A person that satisfies person.json, for validating a partial change against the schemas.
_PROBE_PERSON = {
    "given_name": "x",
    "family_name": "x",
    "sex": "unknown",
    "birth_date": "2000-01-01",
}


def _fields_violation(allowed: tuple[str, ...], unknown: list[str]) -> InvalidRecord:
    return InvalidRecord(
        [
            Violation(
                "$",
                "fields",
                f"updatable fields are {', '.join(allowed)}; got {', '.join(unknown) or 'none'}",
            )
        ]
    )


def _check_members(record: Mapping[str, Any]) -> int:
    """The index of the one head among the members to register (a household has at least
    one member: its head); every member states a relationship."""
    members = record["members"]
    if not members:
        raise InvalidRecord(
            [Violation("$.members", "minItems", "a household is registered with its head")]
        )
    heads = [i for i, m in enumerate(members) if m.get("relationship") == "head"]
    if len(heads) != 1:
        raise InvalidRecord(
            [
                Violation(
                    "$.members", "head", f"exactly one member must be the head, not {len(heads)}"
                )
            ]
        )
    missing = [
        Violation(f"$.members[{i}].relationship", "required", "is required for members")
        for i, m in enumerate(members)
        if "relationship" not in m
    ]
    if missing:
        raise InvalidRecord(missing)
    return heads[0]


class Households:
    """Registering and maintaining households and their members."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def _record(self, session: Session, household: Household) -> dict[str, Any]:
        return household_record(session, household, self._ws.cipher)

    def register_household(self, record: Mapping[str, Any], source: Source) -> ChangeResult:
        """Create a household with its members; emits ``household.created``."""
        validate("household.json", record, writing=True)
        head = _check_members(record)
        ws = self._ws
        with ws.transaction() as session:
            people = [
                create_person(ws, session, member, source, f"$.members[{index}].identifiers")
                for index, member in enumerate(record["members"])
            ]
            household = Household(
                id=uuid.uuid4(),
                registry_number=new_registry_number(),
                admin_area_code=record["admin_area_code"],
                status=HouseholdStatus.ACTIVE,
                head_person_id=people[head].id,
            )
            apply_household_fields(
                session,
                ws.precedence,
                household,
                {k: record[k] for k in HOUSEHOLD_FIELDS if k in record},
                source,
                new=True,
            )
            session.add(household)
            start = source.at().date()
            members: list[MemberRef] = []
            for person, member in zip(people, record["members"], strict=True):
                session.add(
                    Membership(
                        household_id=household.id,
                        person_id=person.id,
                        relationship_to_head=member["relationship"],
                        start_date=start,
                    )
                )
                members.append(MemberRef(person_id=person.id, relationship=member["relationship"]))
            record_attribute_rows(session, household, people, record.get("attributes", []), source)
            session.flush()
            certify(session, household, source, ws.recertification)  # the first cycle begins
            session.flush()
            created = HouseholdCreated(
                household_id=household.id,
                registry_number=household.registry_number,
                members=tuple(members),
                admin_area_code=household.admin_area_code,
                source=source,
            )
            return ChangeResult(self._record(session, household), [emit(session, created)])

    def update_household(
        self,
        household_id: uuid.UUID | str,
        changes: Mapping[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Assert new values for household fields; emits ``household.updated`` if the current
        value of any field changed (a lower-precedence source only adds provenance)."""
        unknown = sorted(set(changes) - set(HOUSEHOLD_FIELDS))
        if unknown or not changes:
            raise _fields_violation(HOUSEHOLD_FIELDS, unknown)
        probe = {
            **changes,
            "admin_area_code": changes.get("admin_area_code", "X"),
            "members": [_PROBE_PERSON],
        }
        validate("household.json", probe, writing=True)
        with self._ws.transaction() as session:
            household = household_by_id(session, household_id)
            check_version(household, expected_version)
            changed = apply_household_fields(
                session, self._ws.precedence, household, changes, source
            )
            events = []
            if changed:
                events.append(household_updated(session, household, changed, source))
            return ChangeResult(self._record(session, household), events)

    def update_person(
        self,
        person_id: uuid.UUID | str,
        changes: Mapping[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Assert new values for a person's fields (and add identifiers); emits
        ``household.updated`` on the person's household when a current value changed."""
        allowed = (*PERSON_FIELDS, "identifiers")
        unknown = sorted(set(changes) - set(allowed))
        if unknown or not changes:
            raise _fields_violation(allowed, unknown)
        validate("person.json", {**_PROBE_PERSON, **changes}, writing=True)
        ws = self._ws
        with ws.transaction() as session:
            person = person_by_id(session, person_id, live=True)
            if expected_version is not None and person.version != expected_version:
                raise ConflictError(
                    f"person {person.id} is at version {person.version}, not {expected_version}",
                    current_version=person.version,
                )
            fields_ = {k: v for k, v in changes.items() if k != "identifiers"}
            changed = (
                apply_person_fields(session, ws.precedence, person, fields_, source)
                if fields_
                else []
            )
            if "identifiers" in changes:
                before = len(person.identifiers)
                add_identifiers(
                    ws, session, person, changes["identifiers"], source, "$.identifiers"
                )
                session.flush()
                session.refresh(person)
                if len(person.identifiers) != before:
                    changed.append("identifiers")
            events: list[str] = []
            if changed:
                person.updated_at = utcnow()
                membership = current_membership(session, person.id)
                if membership is not None:
                    household = household_by_id(session, membership.household_id)
                    member_fields = [f"person.{c}" for c in changed]
                    events.append(
                        household_updated(session, household, member_fields, source, person.id)
                    )
            session.flush()
            return ChangeResult(person_record(session, person, ws.cipher), events)

    def add_member(
        self,
        household_id: uuid.UUID | str,
        member: Mapping[str, Any],
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Add a new person (``member`` is a canonical person with ``relationship``) or an
        existing one (``{"person_id": ..., "relationship": ...}``); emits
        ``household.member_added``. A person belongs to one household at a time."""
        ws = self._ws
        with ws.transaction() as session:
            household = household_by_id(session, household_id)
            check_version(household, expected_version)
            relationship = member.get("relationship")
            if "person_id" in member:
                if set(member) - {"person_id", "relationship"}:
                    raise InvalidRecord(
                        [Violation("$", "fields", "give person_id and relationship only")]
                    )
                person = person_by_id(session, member["person_id"], live=True)
                if person.is_deceased:
                    raise BusinessRuleViolation("a deceased person cannot join a household")
                if current_membership(session, person.id) is not None:
                    raise BusinessRuleViolation(
                        "the person is a member of another household; remove them there first"
                    )
            else:
                validate("person.json", member, writing=True)
                person = create_person(ws, session, member, source, "$.identifiers")
            if relationship is None:
                raise InvalidRecord([Violation("$.relationship", "required", "is required")])
            if relationship == "head":
                raise BusinessRuleViolation("the household has a head; use set_head to change it")
            events = join(session, household, person, relationship, source, "joined")
            return ChangeResult(self._record(session, household), events)

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
        with self._ws.transaction() as session:
            household = household_by_id(session, household_id)
            check_version(household, expected_version)
            person = person_by_id(session, person_id, live=True)
            if household.head_person_id == person.id:
                raise BusinessRuleViolation("the head cannot be removed; name a new head first")
            events = leave(session, household, person, source, reason, end_date)
            if not events:
                raise NotFound("current membership of that person in household", household.id)
            return ChangeResult(self._record(session, household), events)

    def set_head(
        self,
        household_id: uuid.UUID | str,
        person_id: uuid.UUID | str,
        source: Source,
        expected_version: int | None = None,
    ) -> ChangeResult:
        """Name a living current member as head; clears a ``needs_review`` left by a death."""
        with self._ws.transaction() as session:
            household = household_by_id(session, household_id)
            check_version(household, expected_version)
            person = person_by_id(session, person_id, live=True)
            membership = current_membership(session, person.id)
            if membership is None or membership.household_id != household.id or person.is_deceased:
                raise BusinessRuleViolation("the new head must be a living current member")
            old_head = household.head_person_id
            if old_head is not None and old_head != person.id:
                old = current_membership(session, old_head)
                if old is not None and old.household_id == household.id:
                    old.relationship_to_head = "other_relative"
            membership.relationship_to_head = "head"
            household.head_person_id = person.id
            household.status = HouseholdStatus.ACTIVE
            household.review_reason = None
            changed = ["head_person_id", "status"]
            events = [household_updated(session, household, changed, source, person.id)]
            return ChangeResult(self._record(session, household), events)
