"""What a change request may correct, how its current value is read, and how a correction is
applied through the registry services.

A target is named as the precedence table names fields:

- ``household.<field>``: ``address``, ``admin_area_code``, ``location``;
- ``person.<field>``: ``given_name``, ``family_name``, ``other_names``, ``sex``,
  ``birth_date`` of a current member (``person_id``);
- ``attribute.<domain>.<name>``: a socio-economic fact of the household, or of a member when
  ``person_id`` is given (period ``""``: facts without a period).

Identifiers, deaths and memberships are not corrected here: they have their own services
(identity checks, life events, membership) and their own evidence rules.

The current value of a field is the registry's (precedence already chose it); of a fact, the
value of the highest-ranked source holding it (``household.attributes.<domain>.<name>`` in
the precedence table, which falls back to ``household.*``), since facts of several sources
stand side by side. A correction is applied with the source ``correction``: the registry
writes its provenance and its ``household.updated`` / ``person.updated`` events as for any
other change.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.models import SocioEconomicAttribute
from registry_core.precedence import Candidate, SourcePrecedence
from registry_core.service import Registry, Source
from registry_core.services.attributes import validate_attributes
from standards.validation import validate

SOURCE_SYSTEM = "correction"
HOUSEHOLD_FIELDS = ("address", "admin_area_code", "location")
PERSON_FIELDS = ("given_name", "family_name", "other_names", "sex", "birth_date")
ATTRIBUTE_DOMAINS = ("income", "dwelling", "asset", "other")
TARGET_PATTERN = (
    r"^(household\.(address|admin_area_code|location)"
    r"|person\.(given_name|family_name|other_names|sex|birth_date)"
    r"|attribute\.(income|dwelling|asset|other)\.[a-z][a-z0-9_]{0,63})$"
)
_TARGET = re.compile(TARGET_PATTERN)
# A member that satisfies person.json, to validate one proposed field against the schemas.
_PROBE_PERSON = {
    "given_name": "x",
    "family_name": "x",
    "sex": "unknown",
    "birth_date": "2000-01-01",
}


class TargetProblem(ValueError):
    """The target does not fit the household or person named (the message says why)."""


@dataclass(frozen=True)
class Target:
    """A parsed target: the entity kind and the field, or the fact's domain and name."""

    kind: str  # household | person | attribute
    field: str  # the field, or "<domain>.<name>" for an attribute

    @classmethod
    def parse(cls, text: str) -> Target:
        if not _TARGET.match(text):
            raise TargetProblem(
                "target must be household.<address|admin_area_code|location>, "
                "person.<given_name|family_name|other_names|sex|birth_date> or "
                "attribute.<income|dwelling|asset|other>.<name>"
            )
        kind, _, rest = text.partition(".")
        return cls(kind, rest)

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.field}"

    @property
    def domain_and_name(self) -> tuple[str, str]:
        domain, _, name = self.field.partition(".")
        return domain, name


def same_value(a: Any, b: Any) -> bool:
    """Equal as JSON values; numbers compare by value (``450`` and ``450.0`` are one income)."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        if isinstance(a, bool) or isinstance(b, bool):
            return a is b
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=1e-9)
    return bool(a == b)


def validate_value(target: Target, value: Any) -> None:
    """Check a proposed value against the canonical schemas (``SchemaViolation``: a 422)."""
    if target.kind == "person":
        validate("person.json", {**_PROBE_PERSON, target.field: value}, writing=True)
    elif target.kind == "household":
        record: dict[str, Any] = {"admin_area_code": "X", "members": [_PROBE_PERSON]}
        record[target.field] = value
        validate("household.json", record, writing=True)
    else:
        domain, name = target.domain_and_name
        validate_attributes([{"domain": domain, "name": name, "value": value}])


def check_subject(target: Target, household: dict[str, Any], person_id: str | None) -> None:
    """A person target names a current member; a household target names no person."""
    members = {m["id"] for m in household.get("members", [])}
    if target.kind == "person" and not person_id:
        raise TargetProblem("a person's field needs person_id: the member to correct")
    if target.kind == "household" and person_id:
        raise TargetProblem("a household's field is corrected without person_id")
    if person_id and person_id not in members:
        raise TargetProblem(f"person {person_id} is not a current member of this household")


def current_value(
    session: Session,
    registry: Registry,
    target: Target,
    household_id: str,
    person_id: str | None,
) -> Any:
    """The value the registry holds now for ``target`` (``None``: none)."""
    if target.kind == "household":
        return registry.get_household(household_id).get(target.field)
    if target.kind == "person":
        assert person_id is not None
        return registry.get_person(person_id).get(target.field)
    return _fact_value(session, registry.source_precedence, target, household_id, person_id)


def current_source(
    registry: Registry, target: Target, household_id: str, person_id: str | None
) -> str | None:
    """The source system whose value of a field is current (for a refusal's message)."""
    if target.kind == "attribute":
        return None
    entity_id = household_id if target.kind == "household" else person_id
    assert entity_id is not None
    current = [
        a["source_system"]
        for a in registry.provenance(target.kind, entity_id)
        if a["field"] == target.field and a["current"]
    ]
    return current[0] if current else None


def _fact_value(
    session: Session,
    precedence: SourcePrecedence,
    target: Target,
    household_id: str,
    person_id: str | None,
) -> Any:
    domain, name = target.domain_and_name
    person = uuid.UUID(person_id) if person_id else None
    rows = session.scalars(
        select(SocioEconomicAttribute).where(
            SocioEconomicAttribute.household_id == uuid.UUID(household_id),
            SocioEconomicAttribute.domain == domain,
            SocioEconomicAttribute.name == name,
            SocioEconomicAttribute.period == "",
            SocioEconomicAttribute.person_id.is_(None)
            if person is None
            else SocioEconomicAttribute.person_id == person,
        )
    ).all()
    best = precedence.choose(
        "household",
        f"attributes.{domain}.{name}",
        [Candidate(r.value, r.source_system, r.observed_at, i) for i, r in enumerate(rows)],
    )
    return best.value if best is not None else None


def apply(
    registry: Registry,
    target: Target,
    household_id: str,
    person_id: str | None,
    value: Any,
    request_id: str,
) -> None:
    """Write the correction through the registry's own services (provenance, precedence,
    events), as source ``correction`` with the request as its record."""
    source = Source(SOURCE_SYSTEM, f"change-request:{request_id}")
    if target.kind == "household":
        registry.update_household(household_id, {target.field: value}, source)
    elif target.kind == "person":
        assert person_id is not None
        registry.update_person(person_id, {target.field: value}, source)
    else:
        domain, name = target.domain_and_name
        fact = {"domain": domain, "name": name, "value": value}
        if person_id:
            registry.record_person_attributes(person_id, [fact], source)
        else:
            registry.record_attributes(household_id, [fact], source)
