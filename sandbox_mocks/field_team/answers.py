"""What an enumerator answers on the household registration form for a household of the
synthetic population.

The enumerator knows the form (``household_registration``, the hub's sample form): the answers
are keyed by its question names. Questions this form does not have are simply not asked, so a
form an administrator changed still gets what it shares with this one.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from sandbox_mocks.population.model import Household, Person

ROOFS = ("metal", "tiles", "concrete", "thatch")
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


def member_answers(person: Person) -> dict[str, Any]:
    relationship = person.relationship if person.relationship in RELATIONSHIPS else "other"
    return {
        "given_name": person.given_name,
        "family_name": person.family_name,
        "sex": person.sex,
        "birth_date": person.birth_date.isoformat(),
        "relationship": relationship if relationship != "other" else "other_relative",
        "national_id": person.national_id or "",
        "disability": "no",
    }


def household_answers(
    household: Household,
    *,
    as_of: date,
    rng: random.Random,
    household_id: str = "",
    base_version: int | None = None,
) -> dict[str, Any]:
    """The filled form for ``household`` as it lives on ``as_of`` (the dead are not listed;
    the head first). ``household_id`` and ``base_version`` make it a revisit of a registered
    household: an update based on that version."""
    alive = [p for p in household.members if p.death_date is None or p.death_date > as_of]
    alive.sort(key=lambda p: p.relationship != "head")
    incomes = sum(i.amount for i in household.incomes)
    return {
        "household_id": household_id,
        "base_version": "" if base_version is None else str(base_version),
        "admin_area_code": household.locality_code,
        "address": household.address,
        "location": f"{household.latitude:.6f} {household.longitude:.6f} 0 {rng.randint(3, 25)}",
        "consent_national_id_check": "yes",
        "members": [member_answers(p) for p in alive],
        "dwelling": {"roof_material": rng.choice(ROOFS), "rooms": rng.randint(1, 4)},
        "income": {
            "monthly_income": round(incomes / 12, 2) if incomes else rng.randint(0, 80) * 50,
            "receives_transfers": rng.choice(("yes", "no")),
        },
    }
