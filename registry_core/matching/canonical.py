"""Canonical person (``standards/schemas/person.json``) -> :class:`PersonRecord`.

Why here: the ingest worker holds canonical records, and both sides of a comparison (the
incoming record and the registry's candidates) must go through one conversion, or the same
person would compare differently depending on the path it came by.

Only one identifier takes part in matching: the first of ``id_systems`` that the person has
(national ID by default). The household's address and admin area code stand in for the
address and locality, since the canonical person has no address of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry_core.matching.normalise import PersonRecord, make_person

DEFAULT_ID_SYSTEMS: tuple[str, ...] = ("national_id",)


def person_from_canonical(
    person: Mapping[str, Any],
    *,
    record_id: str | None = None,
    household: Mapping[str, Any] | None = None,
    id_systems: Sequence[str] = DEFAULT_ID_SYSTEMS,
) -> PersonRecord:
    """Build a matcher record from a canonical person (and optionally its household).

    ``record_id`` defaults to the person's ``id`` (an incoming record may have none yet: pass a
    message id). Raises :class:`~registry_core.matching.normalise.FieldError` for an unreadable
    birth date or sex code, as the batch path does.
    """
    identifiers = {
        item.get("system"): item.get("value") for item in person.get("identifiers") or ()
    }
    national_id = next((identifiers[s] for s in id_systems if identifiers.get(s)), None)
    household = household or {}
    return make_person(
        record_id or str(person.get("id") or ""),
        given_name=person.get("given_name"),
        family_name=person.get("family_name"),
        birth_date=person.get("birth_date"),
        sex=person.get("sex"),
        address=household.get("address"),
        locality=household.get("admin_area_code"),
        national_id=national_id,
    )
