"""Creating people and writing their identifiers: the one path every use case takes.

A household registration, a new member, a birth, a death's registration number and an update
all add identifiers here, so the same rules hold everywhere: the system must be registered,
the value must pass the country profile's rule, and a value held by someone else is a
``DuplicateIdentifier`` (never silently moved). Values are stored sealed (AES-GCM bound to the
system) beside their keyed look-up hash; nothing here logs or echoes a value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.errors import DuplicateIdentifier, InvalidRecord
from registry_core.identifiers import identifier_violations
from registry_core.models import Identifier, IdentifierSystem, Person
from registry_core.resolution import refresh_match_keys
from registry_core.services.base import PERSON_FIELDS, Source, Workspace, person_by_identifier
from registry_core.services.provenance import apply_person_fields
from standards.validation import Violation


def add_identifiers(
    ws: Workspace,
    session: Session,
    person: Person,
    identifiers: Sequence[Mapping[str, Any]],
    source: Source,
    path: str,
) -> None:
    """Give ``person`` the identifiers they do not hold yet; ``path`` is where the list sits
    in the caller's record (``$.members[0].identifiers``), for the violations."""
    known = set(session.scalars(select(IdentifierSystem.code)))
    problems = [
        Violation(f"{path}[{i}].system", "registered", "is not a registered identifier system")
        for i, ident in enumerate(identifiers)
        if ident["system"] not in known
    ]
    problems += identifier_violations(
        ws.identifier_profile, [i for i in identifiers if i["system"] in known], path
    )
    if problems:
        raise InvalidRecord(problems)
    for ident in identifiers:
        system, value = ident["system"], ident["value"]
        owner = person_by_identifier(session, ws.cipher, system, value)
        if owner is not None and owner.id != person.id:
            raise DuplicateIdentifier(system, owner.id)
        if owner is not None:
            continue
        version, digest = ws.cipher.active_lookup(system, value)
        session.add(
            Identifier(
                person_id=person.id,
                system=system,
                value_hash=digest,
                value_hash_version=version,
                value_ciphertext=ws.cipher.encrypt(system, value),
                verified=bool(ident.get("verified", False)),
                source_system=source.system,
            )
        )


def create_person(
    ws: Workspace, session: Session, data: Mapping[str, Any], source: Source, path: str
) -> Person:
    """A new person from a canonical person record (already validated), with provenance of
    each field, match keys and identifiers."""
    person = Person(id=uuid.uuid4(), is_deceased=False)
    apply_person_fields(
        session,
        ws.precedence,
        person,
        {k: data[k] for k in PERSON_FIELDS if k in data},
        source,
        new=True,
    )
    session.add(person)
    refresh_match_keys(session, person, new=True)
    add_identifiers(ws, session, person, data.get("identifiers", []), source, path)
    return person
