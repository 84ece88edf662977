"""A household's raw variable values read through the ORM: the per-household path.

The incremental re-score (one household after an event) reads its facts here and scores them
with ``evaluate.score``; the full re-score of a linear model computes the same values in SQL
(``sql.py``). Both follow the rules of ``definitions``: current, living members; ages on the
scoring date; facts turned into numbers by ``evaluate.as_number``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.models import Membership, Person, SocioEconomicAttribute
from registry_core.scoring.definitions import ModelDefinition, Variable
from registry_core.scoring.evaluate import as_number


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def age_bounds(variable: Variable, as_of: date) -> tuple[date | None, date | None]:
    """(born on or before, born after): the birth dates of the variable's age range."""
    born_by = years_before(as_of, variable.age_min) if variable.age_min is not None else None
    born_after = years_before(as_of, variable.age_max + 1) if variable.age_max is not None else None
    return born_by, born_after


def _member_matches(variable: Variable, person: Person, as_of: date) -> bool:
    born_by, born_after = age_bounds(variable, as_of)
    if born_by is not None or born_after is not None:
        if person.birth_date is None:
            return False
        if born_by is not None and person.birth_date > born_by:
            return False
        if born_after is not None and person.birth_date <= born_after:
            return False
    return variable.sex is None or person.sex == variable.sex


def _fact_rows(
    facts: Sequence[SocioEconomicAttribute], variable: Variable, *, per_person: bool | None
) -> list[SocioEconomicAttribute]:
    fact = variable.fact
    if fact is None:
        return []
    rows = []
    for row in facts:
        if (row.domain, row.name) != fact:
            continue
        if row.period != variable.period:
            continue
        if variable.source_systems and row.source_system not in variable.source_systems:
            continue
        if per_person is True and row.person_id is None:
            continue
        if per_person is False and row.person_id is not None:
            continue
        rows.append(row)
    return rows


def _aggregate(kind: str, values: list[float]) -> float | None:
    if kind == "count":
        return float(len(values))
    if not values:
        return None
    if kind == "sum":
        return float(sum(values))
    if kind == "min":
        return min(values)
    if kind == "avg":
        return sum(values) / len(values)
    return max(values)


def raw_values(
    session: Session, household_id: uuid.UUID, model: ModelDefinition, as_of: date
) -> dict[str, float | None]:
    """Each variable's value for one household before missing-value rules (None: missing)."""
    members = [
        person
        for person in session.scalars(
            select(Person)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.household_id == household_id, Membership.end_date.is_(None))
        )
        if not person.is_deceased
    ]
    facts = list(
        session.scalars(
            select(SocioEconomicAttribute).where(
                SocioEconomicAttribute.household_id == household_id
            )
        )
    )
    values: dict[str, float | None] = {}
    for variable in model.variables:
        if variable.source == "members":
            values[variable.name] = _members_value(variable, members, facts, as_of)
            continue
        per_person = False if variable.source in ("household_attribute", "gis_layer") else None
        numbers = [
            n
            for row in _fact_rows(facts, variable, per_person=per_person)
            if (n := as_number(row.value, variable.value_map)) is not None
        ]
        kind = "sum" if variable.source == "tax_income" else variable.aggregate
        values[variable.name] = _aggregate("max" if kind == "count" else kind, numbers)
    return values


def _members_value(
    variable: Variable,
    members: Sequence[Person],
    facts: Sequence[SocioEconomicAttribute],
    as_of: date,
) -> float | None:
    chosen = [p for p in members if _member_matches(variable, p, as_of)]
    if variable.fact is None:
        return float(len(chosen))
    per_person: dict[uuid.UUID, float] = {}
    for row in _fact_rows(facts, variable, per_person=True):
        number = as_number(row.value, variable.value_map)
        if number is not None and row.person_id is not None:
            known = per_person.get(row.person_id)
            per_person[row.person_id] = number if known is None else max(known, number)
    present = [per_person[p.id] for p in chosen if p.id in per_person]
    if variable.aggregate == "count":
        return float(sum(1 for value in present if value > 0))
    return _aggregate(variable.aggregate, present)
