"""The registry's starting households in the sandbox: what field workers registered before the
partner feeds began. Without them a birth has no mother to join and a death no one to mark.

The hub reads the synthetic population the way a field survey would have captured it: with a
little data-entry noise (``partner_view``), so matching partner records to registered people is
a real problem even in the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from registry_core.errors import ConflictError, InvalidRecord
from registry_core.service import Registry, Source
from standards.validation import SchemaViolation

SURVEY_SOURCE = "field_survey"
SURVEY_NOISE = 0.02
RELATIONSHIPS = {
    "head",
    "spouse",
    "child",
    "parent",
    "grandchild",
    "grandparent",
    "sibling",
    "other_relative",
    "non_relative",
}


def household_record(household: Any, noisy_person: Any) -> dict[str, Any] | None:
    """A canonical household from a population household; None if nobody is left alive."""
    members = []
    for person in household.members:
        if person.death_date is not None:
            continue
        seen = noisy_person(person)
        member: dict[str, Any] = {
            "given_name": seen.given_name or person.given_name,
            "family_name": seen.family_name or person.family_name,
            "sex": person.sex,
            "birth_date": seen.birth_date.isoformat(),
            "relationship": person.relationship
            if person.relationship in RELATIONSHIPS
            else "other_relative",
        }
        identifiers = []
        if person.national_id:
            identifiers.append({"system": "national_id", "value": person.national_id})
        if person.birth_registration_number:
            identifiers.append(
                {"system": "birth_registration", "value": person.birth_registration_number}
            )
        if person.tax_id:
            identifiers.append({"system": "tax_id", "value": person.tax_id})
        if identifiers:
            member["identifiers"] = identifiers
        members.append(member)
    if not any(m["relationship"] == "head" for m in members):
        return None  # the head died before the survey: the household is not in the registry
    return {
        "admin_area_code": household.locality_code,
        "address": household.address,
        "location": {"lat": household.latitude, "lon": household.longitude},
        "members": members,
    }


def seed_registry(
    registry: Registry,
    households: Iterable[Any],
    seed: int = 7,
    *,
    consenting: int = 0,
    only_if_empty: bool = True,
) -> int:
    """Register every household once; return how many were registered now. With
    ``only_if_empty`` (the default) a registry that holds any household is left alone; a
    caller that checked emptiness itself passes False.

    The first households, until they hold ``consenting`` people with a national ID, record the
    survey's consent to the national ID check (``hub.crosscheck``): the registration
    cross-check then checks those people by itself, and shows the others as not checked for
    want of consent.
    """
    from hub.crosscheck.policy import IDENTITY_CHECK_PURPOSE, REGISTRY_PROGRAM
    from sandbox_mocks.population import partner_view

    if only_if_empty and registry.list_households(limit=1)[1] > 0:
        return 0
    surveyed = Source(SURVEY_SOURCE, "sandbox-seed", datetime(2025, 1, 1, tzinfo=UTC))
    count = 0
    for household in households:
        record = household_record(
            household, lambda p: partner_view(p, SURVEY_SOURCE, seed, SURVEY_NOISE)
        )
        if record is None:
            continue
        try:
            result = registry.register_household(record, surveyed)
            count += 1
        except (ConflictError, InvalidRecord, SchemaViolation):
            continue  # a survey form the registry refuses is skipped, as an officer would
        if consenting > 0:
            holders = sum(
                1
                for m in result.record["members"]
                if any(i["system"] == "national_id" for i in m.get("identifiers", []))
            )
            if holders:
                registry.grant_consent(
                    REGISTRY_PROGRAM,
                    IDENTITY_CHECK_PURPOSE,
                    "field_survey",
                    surveyed,
                    household_id=result.record["id"],
                )
                consenting -= holders
    return count
