"""Field provenance and source precedence: how an assertion becomes (or does not become) a value.

Every write of a person's or household's field is first an *assertion* (``FieldAssertion``:
value, source system, source record, when). The current value is then chosen among all
assertions of that field by ``SourcePrecedence`` — so a lower-ranked source adds provenance
without overwriting a better one, and a change of the precedence table can re-derive every
value. The use cases call ``apply_person_fields`` / ``apply_household_fields`` and get back the
fields whose current value actually changed (what ``household.updated`` lists).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.identifiers import NOTE_FIELD
from registry_core.models import FieldAssertion, Household, Person
from registry_core.precedence import Candidate, SourcePrecedence
from registry_core.resolution import refresh_match_keys
from registry_core.services.base import Source, parse_date
from standards.timeutil import rfc3339

# Person fields that feed the matcher's blocking keys: a change refreshes them.
_MATCHED_FIELDS = frozenset({"given_name", "family_name", "birth_date", "sex"})
_DATE_FIELDS = frozenset({"birth_date", "death_date"})


def _json_value(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def assert_fields(
    session: Session,
    precedence: SourcePrecedence,
    entity: str,
    entity_id: uuid.UUID,
    values: Mapping[str, Any],
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
        best = precedence.choose(entity, name, candidates)
        if best is not None:
            winners[name] = best.value
    return winners


def apply_person_fields(
    session: Session,
    precedence: SourcePrecedence,
    person: Person,
    values: Mapping[str, Any],
    source: Source,
    *,
    new: bool = False,
) -> list[str]:
    """Assert ``values`` about ``person``; returns the fields whose current value changed."""
    winners = assert_fields(session, precedence, "person", person.id, values, source, new=new)
    changed: list[str] = []
    for name, value in winners.items():
        typed = parse_date(value) if name in _DATE_FIELDS else value
        if getattr(person, name) != typed:
            setattr(person, name, typed)
            changed.append(name)
    if not new and set(changed) & _MATCHED_FIELDS:
        refresh_match_keys(session, person)
    return changed


def apply_household_fields(
    session: Session,
    precedence: SourcePrecedence,
    household: Household,
    values: Mapping[str, Any],
    source: Source,
    *,
    new: bool = False,
) -> list[str]:
    """Assert ``values`` about ``household``; returns the fields whose current value changed
    (``location`` is one field over two columns)."""
    winners = assert_fields(session, precedence, "household", household.id, values, source, new=new)
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


def assertions_of(
    session: Session, precedence: SourcePrecedence, entity: str, entity_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Every assertion about one entity, with ``current`` marking the value precedence chose
    per field. Data-quality notes are listed too; they are never a current value."""
    rows = session.scalars(
        select(FieldAssertion)
        .where(FieldAssertion.entity_type == entity, FieldAssertion.entity_id == entity_id)
        .order_by(FieldAssertion.field, FieldAssertion.id)
    ).all()
    winners: dict[str, int] = {}
    for name in {r.field for r in rows} - {NOTE_FIELD}:
        best = precedence.choose(
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
            "asserted_at": rfc3339(r.asserted_at),
            "current": winners.get(r.field) == r.id,
        }
        for r in rows
    ]
