"""The program MIS's programs and who was already enrolled in them when the sandbox starts.

A real program MIS has its own beneficiary lists, built over years by its own staff, that only
partly agree with the social registry. So the initial lists are a seeded sample (``coverage``)
of the households each program's rule makes eligible, not the full eligible set: reconciling
the two is exactly what the hub is for.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sandbox_mocks.population.model import Household, Person
from sandbox_mocks.population.noise import partner_view


@dataclass(frozen=True)
class Program:
    code: str
    name: str
    unit: str  # "HOUSEHOLD" | "INDIVIDUAL"
    benefit_amount: int  # per period, whole currency units; 0 for in-kind
    benefit_frequency: str  # "MONTHLY" | "QUARTERLY" | "IN_KIND"
    description: str

    def to_json(self, currency: str, beneficiaries: int) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "enrolmentUnit": self.unit,
            "description": self.description,
            "benefit": {
                "amount": self.benefit_amount,
                "currency": currency,
                "frequency": self.benefit_frequency,
            },
            "activeBeneficiaries": beneficiaries,
        }


PROGRAMS: tuple[Program, ...] = (
    Program(
        "CCG",
        "Child Cash Grant",
        "HOUSEHOLD",
        450,
        "MONTHLY",
        "Monthly cash for households caring for a child under five.",
    ),
    Program(
        "OAP",
        "Old Age Pension",
        "INDIVIDUAL",
        1200,
        "MONTHLY",
        "Non-contributory pension for residents aged 65 and over.",
    ),
    Program(
        "SFP",
        "School Feeding Programme",
        "HOUSEHOLD",
        0,
        "IN_KIND",
        "School meals for households with children aged 6 to 14.",
    ),
)


def age_on(person: Person, day: date) -> int:
    born = person.birth_date
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _alive(person: Person, day: date) -> bool:
    return person.death_date is None or person.death_date > day


def _children_aged(low: int, high: int) -> Callable[[Household, date], bool]:
    def rule(household: Household, day: date) -> bool:
        return any(
            _alive(p, day) and low <= age_on(p, day) <= high and p.birth_date <= day
            for p in household.members
        )

    return rule


HOUSEHOLD_RULES: dict[str, Callable[[Household, date], bool]] = {
    "CCG": _children_aged(0, 4),
    "SFP": _children_aged(6, 14),
}
PENSION_AGE = 65


def household_ref(household: Household) -> str:
    """The MIS's own household number: stable, but not the registry's or the generator's key."""
    return f"MIS-HH-{zlib.crc32(household.household_key.encode()):010d}"


_KEEP = frozenset({"national_id"})


def _head(household: Household) -> Person | None:
    heads = [p for p in household.members if p.relationship == "head"]
    return heads[0] if heads else (household.members[0] if household.members else None)


def initial_enrolments(
    households: Iterable[Household],
    as_of: date,
    seed: int,
    coverage: float,
    noise_rate: float = 0.0,
) -> dict[str, list[dict[str, Any]]]:
    """Program code -> beneficiary records (without numbers), a seeded share of the eligible.

    Names are the MIS's own copy (``partner_view`` noise at ``noise_rate``); national IDs stay
    exact because the MIS enrols by them.
    """

    def display_name(person: Person) -> str:
        if noise_rate:
            person = partner_view(person, "program-mis", seed, noise_rate, keep=_KEEP)
        return f"{person.given_name} {person.family_name}"

    result: dict[str, list[dict[str, Any]]] = {p.code: [] for p in PROGRAMS}
    rngs = {p.code: random.Random(f"programs:{seed}:{p.code}") for p in PROGRAMS}
    for household in households:
        living = [p for p in household.members if _alive(p, as_of) and p.birth_date <= as_of]
        head = _head(household)
        for code, rule in HOUSEHOLD_RULES.items():
            if head is None or not rule(household, as_of) or rngs[code].random() >= coverage:
                continue
            result[code].append(
                {
                    "nationalId": head.national_id,
                    "householdRef": household_ref(household),
                    "memberNationalIds": [p.national_id for p in living if p.national_id],
                    "fullName": display_name(head),
                    "enrolledOn": _enrolled_on(rngs[code], as_of).isoformat(),
                }
            )
        for person in living:
            if age_on(person, as_of) >= PENSION_AGE and rngs["OAP"].random() < coverage:
                result["OAP"].append(
                    {
                        "nationalId": person.national_id,
                        "householdRef": household_ref(household),
                        "memberNationalIds": [person.national_id] if person.national_id else [],
                        "fullName": display_name(person),
                        "enrolledOn": _enrolled_on(rngs["OAP"], as_of).isoformat(),
                    }
                )
    return result


def _enrolled_on(rng: random.Random, as_of: date) -> date:
    return as_of - timedelta(days=rng.randint(30, 5 * 365))
