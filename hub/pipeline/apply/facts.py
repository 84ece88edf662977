"""Socio-economic facts and places: ``income``, ``person_attributes``, ``area``,
``area_layers``, ``enrollment``."""

from __future__ import annotations

from datetime import date
from typing import Any

from hub.pipeline.apply.common import IngestContext, source, who
from registry_core.errors import BusinessRuleViolation
from registry_core.service import Registry


def apply_income(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """An income return: the taxpayer's facts land on their current household; an identifier
    the authority knows and we did not is added to the person."""
    provenance = source(ctx, record.get("record_no") or ctx.source_id, record.get("filed_on"))
    taxpayer = who(registry, record["taxpayer"], "income", record, provenance, ctx)
    if isinstance(taxpayer, str):
        return taxpayer
    known = {i["system"] for i in registry.get_person(taxpayer).get("identifiers", [])}
    missing = [i for i in record["taxpayer"].get("identifiers", []) if i["system"] not in known]
    if missing:  # the tax authority taught us an identifier we did not have
        registry.update_person(taxpayer, {"identifiers": missing}, provenance)
    try:
        result = registry.record_person_attributes(taxpayer, record["attributes"], provenance)
    except BusinessRuleViolation:
        return "not_in_household"
    return "applied" if result.events else "already_applied"


def apply_person_attributes(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """Facts a partner states about one person (``inbound/person_attributes.json``): kept on
    the person's current household, asserted by the connector's kind. The applier a new
    partner's record type uses when what it knows is attributes of people."""
    provenance = source(ctx, record.get("record_id") or ctx.source_id, record.get("observed_on"))
    person = who(registry, record["person"], "person_attributes", record, provenance, ctx)
    if isinstance(person, str):
        return person
    try:
        result = registry.record_person_attributes(person, record["attributes"], provenance)
    except BusinessRuleViolation:
        return "not_in_household"
    return "applied" if result.events else "already_applied"


def apply_area(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """GIS: a household's location resolved to an area, with the area's risk layers."""
    household_id = ctx.headers.get("household_id") or record.get("household_id")
    if not household_id:
        return "no_household"
    provenance = source(ctx, ctx.source_id)
    changes: dict[str, Any] = {"admin_area_code": record["admin_area_code"]}
    if record.get("location"):
        changes["location"] = record["location"]
    registry.update_household(household_id, changes, provenance)
    if record.get("attributes"):
        registry.record_attributes(household_id, record["attributes"], provenance)
    return "applied"


def apply_area_layers(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """GIS risk and poverty layers of one locality, onto every household registered there."""
    if not record.get("attributes"):
        return "nothing_to_apply"
    provenance = source(ctx, ctx.source_id)
    changed = 0
    for household_id in registry.household_ids_in_area(record["admin_area_code"]):
        result = registry.record_attributes(household_id, record["attributes"], provenance)
        changed += bool(result.events)
    return "applied" if changed else "already_applied"


def apply_enrollment(registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
    """A program enrolment: the beneficiary gets the program's beneficiary number once."""
    provenance = source(
        ctx,
        f"{record['program_code']}:{record['beneficiary_number']}",
        record.get("enrolled_on"),
    )
    beneficiary = who(registry, record["beneficiary"], "enrollment", record, provenance, ctx)
    if isinstance(beneficiary, str):
        return beneficiary
    # The enrolment itself (what coverage reports count), before the identifier short-cut:
    # an exit arrives for a beneficiary number the person already holds.
    enrolled = registry.record_enrolment(
        beneficiary,
        record["program_code"],
        record["beneficiary_number"],
        record.get("status") or "active",
        provenance,
        enrolled_on=_day(record.get("enrolled_on")),
        exited_on=_day(record.get("exited_on")),
    )
    number = f"{record['program_code']}-{record['beneficiary_number']}"
    known = registry.get_person(beneficiary).get("identifiers", [])
    stored = registry.identifier_profile.normalise("program_beneficiary_id", number)
    if any(i["system"] == "program_beneficiary_id" and i["value"] == stored for i in known):
        return "applied" if enrolled else "already_applied"
    registry.update_person(
        beneficiary,
        {"identifiers": [{"system": "program_beneficiary_id", "value": number}]},
        provenance,
    )
    return "applied"


def _day(value: Any) -> date | None:
    """An ISO date of the mapped record (``YYYY-MM-DD``, maybe with a time), else None."""
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
