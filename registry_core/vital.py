"""What a civil registry says around a birth or a death, kept as provenance.

A birth or death record names more than its subject: where the event happened, where the
mother or the deceased lives, the father, the informant. None of them becomes a person of the
registry through a declaration (an informant is not a household member, a father named on a
certificate may live elsewhere), but none is thrown away either: they are kept as field
assertions of the subject, with the declaring source and record id, next to the subject's own
fields. Identifier values inside them are sealed like every identifier at rest (AES-GCM bound
to the system) and carry their keyed look-up hash, so a father registered later can still be
linked to the child without ever storing his number in clear.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.crypto import IdentifierCipher
from registry_core.errors import BusinessRuleViolation
from registry_core.models import FieldAssertion, Membership, Person

# Who holds an identifier: (system, value) -> the person, or None (a keyed-hash look-up).
Finder = Callable[[str, str], Person | None]

# Identifier systems a civil registry's declaration ids live in (registered at start-up).
DECLARATION_SYSTEMS = ("crvs_tracking_id", "crvs_draft_id")


@dataclass(frozen=True)
class VitalFacts:
    """The parts of a birth or death record beyond the subject's canonical fields.

    ``place``: where the event happened (``admin_area_code``, ``type``, ``name``);
    ``residence``: where the mother / the deceased lives (``text``, ``admin_area_code``);
    ``related``: people the record names, by role (``mother``, ``father``, ``informant``),
    as the record gives them (identifiers, names, relationship); ``provisional``: the record
    carried no registration number yet.
    """

    place: Mapping[str, str] = field(default_factory=dict)
    residence: Mapping[str, str] = field(default_factory=dict)
    related: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    provisional: bool = False


def sealed(cipher: IdentifierCipher, value: Any) -> Any:
    """``value`` with every ``identifiers`` list replaced by sealed entries
    (``{system, hash, sealed}``): no identifier value is stored in clear."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "identifiers" and isinstance(item, Sequence):
                out[key] = [
                    {
                        "system": ident["system"],
                        "hash": cipher.lookup_hash(ident["system"], ident["value"]),
                        "sealed": base64.b64encode(
                            cipher.encrypt(ident["system"], ident["value"])
                        ).decode("ascii"),
                    }
                    for ident in item
                    if isinstance(ident, Mapping) and "system" in ident and "value" in ident
                ]
            else:
                out[key] = sealed(cipher, item)
        return out
    if isinstance(value, list):
        return [sealed(cipher, item) for item in value]
    return value


def provenance_rows(
    cipher: IdentifierCipher,
    entity_id: uuid.UUID,
    facts: Mapping[str, Any],
    *,
    system: str,
    record_id: str | None,
    asserted_at: Any,
) -> list[FieldAssertion]:
    """Field assertions of a person for ``facts`` (field -> value), identifiers sealed.

    These fields are provenance only (``birth_place``, ``father``, ``informant``,
    ``residence``...): they have no column of their own, so precedence never makes them a
    current value; ``Registry.provenance`` lists them with the rest.
    """
    return [
        FieldAssertion(
            entity_type="person",
            entity_id=entity_id,
            field=name,
            value=sealed(cipher, dict(value)),
            source_system=system,
            source_record_id=record_id,
            asserted_at=asserted_at,
        )
        for name, value in facts.items()
        if value
    ]


def subject_facts(facts: VitalFacts, place_field: str) -> dict[str, Any]:
    """What is asserted on the child or the deceased: the place and the related people."""
    found: dict[str, Any] = {}
    if facts.place:
        found[place_field] = dict(facts.place)
    for role, ref in facts.related.items():
        if ref:
            found[role] = dict(ref)
    return found


def owner_of(find: Finder, identifiers: Sequence[Mapping[str, Any]]) -> Person | None:
    """The one person holding any of ``identifiers``; two different holders are a conflict a
    person must look at (the record goes to review), never resolved by guessing."""
    owners = {
        found.id: found
        for ident in identifiers
        if (found := find(ident["system"], ident["value"])) is not None
    }
    if len(owners) > 1:
        raise BusinessRuleViolation(
            "the record's identifiers belong to different people: "
            + ", ".join(sorted(str(k) for k in owners))
        )
    return next(iter(owners.values()), None)


def unknown_identifiers(
    find: Finder, person: Person, identifiers: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Those of ``identifiers`` the person does not hold yet; one held by someone else is a
    conflict, never silently moved."""
    fresh = []
    for ident in identifiers:
        owner = find(ident["system"], ident["value"])
        if owner is None:
            fresh.append(ident)
        elif owner.id != person.id:
            raise BusinessRuleViolation(
                f"the {ident['system']} of this record belongs to another person ({owner.id})"
            )
    return fresh


def move_death_end(session: Session, person: Person) -> None:
    """A corrected date of death moves the end of the membership the death ended."""
    ended = session.scalars(
        select(Membership).where(
            Membership.person_id == person.id, Membership.end_reason == "death"
        )
    ).all()
    for membership in ended:
        membership.end_date = person.death_date
