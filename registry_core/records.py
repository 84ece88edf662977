"""ORM rows -> canonical records (plain dicts in the shape of standards/schemas).

Identifier values are decrypted here, for callers allowed to see them; the API decides who is.
``None`` values are left out, as the canonical schemas do not admit nulls for optional facts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.crypto import IdentifierCipher
from registry_core.models import (
    Household,
    HouseholdRecertification,
    Identifier,
    Membership,
    Person,
    SocioEconomicAttribute,
)
from standards.timeutil import iso


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its ``None`` values (the canonical schemas admit no nulls there)."""
    return {key: value for key, value in record.items() if value is not None}


def recertification_record(row: HouseholdRecertification | None) -> dict[str, Any] | None:
    """A household's ``recertification`` (read-only): its due date and state as the last
    round flagged them, and its last certification."""
    if row is None:
        return None
    return {
        "due_on": iso(row.due_on),
        "state": row.state,
        "last_certified_at": iso(row.last_certified_at),
        "certified_by": row.certified_by,
    }


def identifier_record(identifier: Identifier, cipher: IdentifierCipher) -> dict[str, Any]:
    return {
        "system": identifier.system,
        "value": cipher.decrypt(identifier.system, identifier.value_ciphertext),
        "verified": identifier.verified,
    }


def person_record(
    session: Session, person: Person, cipher: IdentifierCipher, *, relationship: str | None = None
) -> dict[str, Any]:
    identifiers = session.scalars(
        select(Identifier).where(Identifier.person_id == person.id).order_by(Identifier.system)
    ).all()
    memberships = session.scalars(
        select(Membership)
        .where(Membership.person_id == person.id)
        .order_by(Membership.start_date, Membership.id)
    ).all()
    return compact(
        {
            "id": str(person.id),
            "version": person.version,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "other_names": person.other_names,
            "sex": person.sex,
            "birth_date": iso(person.birth_date),
            "death_date": iso(person.death_date),
            "is_deceased": person.is_deceased,
            "relationship": relationship,
            "identifiers": [identifier_record(i, cipher) for i in identifiers],
            "verification": {
                "status": person.verification_status,
                "source": person.verification_source,
                "verified_at": iso(person.verified_at),
            },
            "memberships": [
                compact(
                    {
                        "household_id": str(m.household_id),
                        "relationship": m.relationship_to_head,
                        "start_date": iso(m.start_date),
                        "end_date": iso(m.end_date),
                        "end_reason": m.end_reason,
                    }
                )
                for m in memberships
            ],
            "created_at": iso(person.created_at),
            "updated_at": iso(person.updated_at),
        }
    )


def household_record(
    session: Session, household: Household, cipher: IdentifierCipher
) -> dict[str, Any]:
    current = session.execute(
        select(Membership, Person)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id == household.id, Membership.end_date.is_(None))
        .order_by(Membership.start_date, Person.birth_date, Person.id)
    ).all()
    # Head first, then by when they joined and age: a stable order people recognise.
    current = sorted(current, key=lambda row: row[0].person_id != household.head_person_id)
    attributes = session.scalars(
        select(SocioEconomicAttribute)
        .where(SocioEconomicAttribute.household_id == household.id)
        .order_by(
            SocioEconomicAttribute.domain,
            SocioEconomicAttribute.name,
            SocioEconomicAttribute.period,
        )
    ).all()
    member_index = {m.person_id: i for i, (m, _p) in enumerate(current)}
    location = None
    if household.latitude is not None and household.longitude is not None:
        location = {"lat": household.latitude, "lon": household.longitude}
    return compact(
        {
            "id": str(household.id),
            "registry_number": household.registry_number,
            "version": household.version,
            "status": household.status,
            "review_reason": household.review_reason,
            "head_person_id": str(household.head_person_id) if household.head_person_id else None,
            "admin_area_code": household.admin_area_code,
            "address": household.address,
            "location": location,
            "members": [
                person_record(session, person, cipher, relationship=m.relationship_to_head)
                for m, person in current
            ],
            "attributes": [
                compact(
                    {
                        "domain": a.domain,
                        "name": a.name,
                        "period": a.period,
                        "value": a.value,
                        "unit": a.unit,
                        "member_index": member_index.get(a.person_id) if a.person_id else None,
                    }
                )
                for a in attributes
            ],
            "recertification": recertification_record(
                session.get(HouseholdRecertification, household.id)
            ),
            "created_at": iso(household.created_at),
            "updated_at": iso(household.updated_at),
        }
    )
