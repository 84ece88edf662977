"""The registry's side of the country profile: refusing bad identifiers on every write path, and
keeping the data-quality notes of partner records where staff look for them.

Why here and not in each caller: the API, the ingest worker and the CLI all write through the
registry services, so checking in the service is what makes "the same rules everywhere" true.
The normalisation itself lives in the cipher (``registry_core.crypto``), because the look-up
hash is computed from it.

Data-quality notes (a partner's value dropped by the mapping, e.g. a father's national ID that
fails its check digit) are kept as field provenance of the person the record is about: a
``FieldAssertion`` with field ``data_quality_note``, whose value says which field of the partner
record was dropped, by which rule and why (never the value). ``GET /api/v1/persons/{id}/
provenance`` lists them beside the facts the same source asserted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.models import FieldAssertion
from standards.identifiers import IdentifierProfile
from standards.validation import Violation

NOTE_FIELD = "data_quality_note"
_NOTE_KEYS = ("target", "source_path", "rule", "message")


def identifier_violations(
    profile: IdentifierProfile, identifiers: Sequence[Mapping[str, Any]], path: str
) -> list[Violation]:
    """Every identifier that breaks its system's rule: path of its value, the rule
    (``identifier:pattern``...) and a reason naming the system, never the value."""
    found = []
    for index, ident in enumerate(identifiers):
        problem = profile.problem(str(ident.get("system")), ident.get("value"))
        if problem is not None:
            found.append(
                Violation(f"{path}[{index}].value", f"identifier:{problem.rule}", problem.reason)
            )
    return found


def note_value(note: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of one note: only the keys that say where and why (no value)."""
    return {key: note.get(key) for key in _NOTE_KEYS if note.get(key) is not None}


def add_notes(
    session: Session,
    person_id: uuid.UUID,
    notes: Sequence[Mapping[str, Any]],
    source_system: str,
    source_record_id: str | None,
    asserted_at: datetime,
) -> int:
    """Keep ``notes`` as provenance of the person; a note already kept from the same source
    record is not kept twice (a partner re-sending a record). Returns how many were added."""
    existing = {
        repr(sorted(row.value.items()))
        for row in session.scalars(
            select(FieldAssertion).where(
                FieldAssertion.entity_type == "person",
                FieldAssertion.entity_id == person_id,
                FieldAssertion.field == NOTE_FIELD,
                FieldAssertion.source_system == source_system,
                FieldAssertion.source_record_id == source_record_id,
            )
        )
        if isinstance(row.value, dict)
    }
    added = 0
    for note in notes:
        value = note_value(note)
        key = repr(sorted(value.items()))
        if key in existing:
            continue
        existing.add(key)
        session.add(
            FieldAssertion(
                entity_type="person",
                entity_id=person_id,
                field=NOTE_FIELD,
                value=value,
                source_system=source_system,
                source_record_id=source_record_id,
                asserted_at=asserted_at,
            )
        )
        added += 1
    return added
