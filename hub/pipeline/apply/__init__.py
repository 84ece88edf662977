"""The hub's registry appliers, by the name a connector's ``RecordType.apply`` gives.

Connectors never import the registry: a record type names an applier here, and the applier
decides what the mapped record must look like (the spec's ``output_schema``):

| applier | output schema | what it does |
|---|---|---|
| ``birth`` | ``inbound/birth.json`` | the child joins the mother's household |
| ``death`` | ``inbound/death.json`` | the person is deceased, memberships end |
| ``income`` | ``inbound/income.json`` | the taxpayer's facts on their household |
| ``person_attributes`` | ``inbound/person_attributes.json`` | any partner's facts about a person |
| ``verification`` | ``inbound/verification.json`` | a person verified, or not |
| ``identity`` | ``inbound/identity.json`` | the authority's names, sex, birth date |
| ``area`` | ``inbound/area.json`` | a household's area and layers |
| ``area_layers`` | ``inbound/area.json`` | a locality's layers on its households |
| ``enrollment`` | ``inbound/enrollment.json`` | a program's beneficiary number |
| ``admin_area`` | ``inbound/admin_area.json`` | an area's outline and layers, for maps |

A new kind of fact needs a new applier (and its inbound schema) here; a new partner with facts
of a known kind needs none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hub.pipeline.apply.areas import apply_admin_area
from hub.pipeline.apply.common import Applier, IngestContext
from hub.pipeline.apply.facts import (
    apply_area,
    apply_area_layers,
    apply_enrollment,
    apply_income,
    apply_person_attributes,
)
from hub.pipeline.apply.identity import apply_identity, apply_verification
from hub.pipeline.apply.vital_events import apply_birth, apply_death


@dataclass(frozen=True)
class RegistryApplier:
    """An applier and the schema of the records it takes: a record type's mapping spec must
    write exactly that schema (checked when the routes are built, not at the first record)."""

    apply: Applier
    schema: str


APPLIERS: Mapping[str, RegistryApplier] = {
    "birth": RegistryApplier(apply_birth, "inbound/birth.json"),
    "death": RegistryApplier(apply_death, "inbound/death.json"),
    "income": RegistryApplier(apply_income, "inbound/income.json"),
    "person_attributes": RegistryApplier(apply_person_attributes, "inbound/person_attributes.json"),
    "verification": RegistryApplier(apply_verification, "inbound/verification.json"),
    "identity": RegistryApplier(apply_identity, "inbound/identity.json"),
    "area": RegistryApplier(apply_area, "inbound/area.json"),
    "area_layers": RegistryApplier(apply_area_layers, "inbound/area.json"),
    "enrollment": RegistryApplier(apply_enrollment, "inbound/enrollment.json"),
    "admin_area": RegistryApplier(apply_admin_area, "inbound/admin_area.json"),
}

__all__ = ["APPLIERS", "Applier", "IngestContext", "RegistryApplier"]
