"""Streaming, deterministic generator of the synthetic population and its vital events.

Determinism without memory: every household ``i`` is drawn from its own random stream, seeded
from ``(seed, i)``. So the population is a pure function of the seed, any household can be
rebuilt on its own (the event timeline uses this to stay small in memory), and a sandbox of
2,000 people is exactly the first households of the 1,000,000-person world of the same seed.

Person numbers are ``household_index * 16 + member_index`` (at most 16 members per household);
identifiers are seeded bijections of that number, so they are unique without a lookup table.
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from functools import lru_cache
from itertools import accumulate

from sandbox_mocks.population.geography import build_geography, random_point_in
from sandbox_mocks.population.geometry import bbox
from sandbox_mocks.population.ids import (
    IdentifierFactory,
    new_birth_registration_number,
    new_death_registration_number,
)
from sandbox_mocks.population.model import AdminArea, Household, Income, Person, VitalEvent
from sandbox_mocks.population.names import STREETS, company_name, family_name, given_name

DEFAULT_AS_OF = date(2025, 1, 1)
MAX_MEMBERS = 16
PENSION_FUND = ("National Pension Fund", "900000001")

_KINDS = ("single", "couple", "nuclear", "single_parent", "extended", "large")
_KIND_CUM = list(accumulate((0.13, 0.12, 0.36, 0.10, 0.21, 0.08)))
_CHILDREN = {  # number of children -> weight, by household kind
    "nuclear": ((1, 2, 3, 4, 5, 6), (0.28, 0.30, 0.20, 0.12, 0.06, 0.04)),
    "single_parent": ((1, 2, 3, 4, 5), (0.40, 0.30, 0.17, 0.09, 0.04)),
    "extended": ((0, 1, 2, 3, 4, 5), (0.10, 0.25, 0.28, 0.20, 0.11, 0.06)),
    "large": ((4, 5, 6, 7, 8), (0.25, 0.25, 0.22, 0.16, 0.12)),
}
_CHILDREN_CUM = {k: (v, list(accumulate(w))) for k, (v, w) in _CHILDREN.items()}
# Annual births per woman by 5-year age group from 15 (total fertility about 3.9).
_FERTILITY = (0.08, 0.19, 0.20, 0.16, 0.10, 0.04, 0.01)
_YEAR = 365.2425

Spec = tuple[str, str, int, str]  # relationship, sex, age in years, family name


def _annual_mortality(age: float) -> float:
    if age < 1:
        return 0.035
    if age < 5:
        return 0.006
    if age < 15:
        return 0.001
    return min(0.5, 0.0004 * math.exp(0.08 * (age - 15)))


def _annual_fertility(age: float) -> float:
    group = int((age - 15) // 5)
    return _FERTILITY[group] if 0 <= group < len(_FERTILITY) else 0.0


def _sex(rng: random.Random) -> str:
    return "male" if rng.random() < 0.51 else "female"


class SyntheticCountry:
    """One synthetic world: its areas, its households (streamed), its vital events.

    ``as_of`` is the census date: households describe the living population on that day.
    Not thread-safe (one reusable random stream); give each thread its own instance.
    """

    def __init__(
        self,
        seed: int,
        as_of: date = DEFAULT_AS_OF,
        *,
        regions: int = 4,
        districts_per_region: int = 4,
        localities_per_district: int = 5,
    ) -> None:
        if not isinstance(seed, int) or seed < 0:
            raise ValueError("seed must be a non-negative integer")
        self.seed = seed
        self.as_of = as_of
        geo = build_geography(seed, regions, districts_per_region, localities_per_district)
        self.areas: list[AdminArea] = geo.areas
        self._localities = geo.localities
        self._boxes = [bbox(a.polygon) for a in geo.localities]
        self._loc_cum = list(accumulate(geo.locality_weights))
        self._ids = IdentifierFactory(seed)
        erng = random.Random(f"employers:{seed}")
        self._employers = [(company_name(erng), f"9{k * 7919 % 10**8:08d}") for k in range(1, 401)]
        self._rng = random.Random()
        self._as_of_ord = as_of.toordinal()
        self._household_cached = lru_cache(maxsize=512)(self._household)

    # -- random stream bases: one stream per (purpose, household) -------------------------
    def _base(self, purpose: int) -> int:
        return (self.seed * 8 + purpose) * 10**15

    # -- households -------------------------------------------------------------------------
    def household(self, index: int, max_members: int | None = None) -> Household:
        """Household number ``index`` (0-based); ``max_members`` truncates the last one."""
        return self._household_cached(index, max_members)

    def _household(self, index: int, max_members: int | None) -> Household:
        r = self._rng
        r.seed(self._base(0) + index)
        k = bisect(self._loc_cum, r.random() * self._loc_cum[-1])
        locality = self._localities[k]
        specs = self._compose(r)
        if max_members is not None:
            specs = specs[:max_members]
        key = f"HH{index:08d}"
        poverty = locality.poverty_rate
        formal_share = 0.6 * (1.15 - poverty)
        members: list[Person] = []
        incomes: list[Income] = []
        for m, (relationship, sex, age, fam) in enumerate(specs):
            person, income = self._person(
                r,
                index * MAX_MEMBERS + m,
                f"{key}-{m:02d}",
                relationship,
                sex,
                age,
                fam,
                formal_share,
                poverty,
            )
            members.append(person)
            if income is not None:
                incomes.append(income)
        lon, lat = random_point_in(r, locality, self._boxes[k])
        address = f"{r.randint(1, 250)} {STREETS[r.randrange(len(STREETS))]}, {locality.name}"
        return Household(key, locality.code, address, lat, lon, members, incomes)

    def _compose(self, r: random.Random) -> list[Spec]:
        """Who lives together: relationships, sexes and ages that are plausible as a family."""
        kind = _KINDS[bisect(_KIND_CUM, r.random() * _KIND_CUM[-1])]
        fam = family_name(r)
        if kind == "single":
            age = r.randint(19, 45) if r.random() < 0.5 else r.randint(55, 92)
            return [("head", _sex(r), age, fam)]
        specs: list[Spec] = []
        if kind == "single_parent":
            sex = "female" if r.random() < 0.82 else "male"
            head_age = r.randint(19, 56)
            specs.append(("head", sex, head_age, fam))
            mother_age = head_age if sex == "female" else head_age - r.randint(0, 6)
            child_family = fam if sex == "male" or r.random() < 0.5 else family_name(r)
        else:
            lo, hi = {
                "couple": (21, 80),
                "nuclear": (21, 58),
                "extended": (24, 62),
                "large": (27, 56),
            }[kind]
            male_age = r.randint(lo, hi)
            female_age = max(18, male_age - round(r.triangular(-2, 10, 3)))
            female_family = fam if r.random() < 0.6 else family_name(r)
            male = ("head", "male", male_age, fam)
            female = ("spouse", "female", female_age, female_family)
            if r.random() < 0.82:
                specs += [male, female]
            else:
                specs += [
                    ("head", "female", female_age, female_family),
                    ("spouse", "male", male_age, fam),
                ]
            mother_age, child_family = female_age, fam
        head_age = specs[0][2]
        if kind != "couple":
            values, cum = _CHILDREN_CUM[kind]
            wanted = values[bisect(cum, r.random() * cum[-1])]
            age = max(0, mother_age - 44)
            age = r.randint(age, max(age, min(mother_age - 17, 12)))
            for _ in range(wanted):
                if mother_age - age < 16 or age > 30:
                    break
                specs.append(("child", _sex(r), age, child_family))
                age += r.randint(1, 4)
        if kind in ("extended", "large"):
            if r.random() < (0.85 if kind == "extended" else 0.7):
                for sex in ("male", "female") if r.random() < 0.35 else (_sex(r),):
                    age = min(98, head_age + r.randint(20, 34))
                    specs.append(("parent", sex, age, fam if sex == "male" else family_name(r)))
            if r.random() < (0.3 if kind == "extended" else 0.5):
                specs.append(("sibling", _sex(r), max(15, head_age + r.randint(-8, 8)), fam))
            for _ in range(r.randint(0, 1) if kind == "extended" else r.randint(1, 3)):
                specs.append(
                    (
                        "other_relative",
                        _sex(r),
                        r.randint(0, 24),
                        fam if r.random() < 0.5 else family_name(r),
                    )
                )
            if kind == "large" and r.random() < 0.15:
                specs.append(("non_relative", _sex(r), r.randint(16, 50), family_name(r)))
        return specs[:MAX_MEMBERS]

    def _person(
        self,
        r: random.Random,
        number: int,
        key: str,
        relationship: str,
        sex: str,
        age: int,
        fam: str,
        formal_share: float,
        poverty: float,
    ) -> tuple[Person, Income | None]:
        # Exactly ``age`` whole years old on the census date (birthday anywhere in the year).
        birth = date.fromordinal(self._as_of_ord - int(age * _YEAR) - 1 - r.randrange(364))
        nid_p = 0.3 if age < 5 else 0.65 if age < 18 else 0.93
        national_id = self._ids.national_id(number) if r.random() < nid_p else None
        brn_p = 0.92 if birth.year >= 2005 else 0.7 if birth.year >= 1985 else 0.3
        brn = None
        if r.random() < brn_p:
            year = min(self.as_of.year, birth.year + (0 if r.random() < 0.8 else r.randint(1, 5)))
            brn = self._ids.birth_registration_number(number, year)
        tax_id = income = None
        if 18 <= age < 65:
            works = r.random() < (0.82 if sex == "male" else 0.55)
            if works and r.random() < formal_share:
                tax_id = self._ids.tax_id(number)
                employer, employer_tin = self._employers[r.randrange(len(self._employers))]
                median = 7000 * (1.2 - poverty)
                amount = int(r.lognormvariate(math.log(median), 0.6))
                income = Income(
                    tax_id, national_id, employer, employer_tin, self.as_of.year - 1, amount
                )
        elif age >= 65 and r.random() < 0.15:
            tax_id = self._ids.tax_id(number)
            amount = int(r.lognormvariate(math.log(2500), 0.3))
            income = Income(tax_id, national_id, *PENSION_FUND, self.as_of.year - 1, amount)
        phone = f"+999 7{r.randrange(10**8):08d}" if age >= 16 and r.random() < 0.72 else None
        person = Person(
            key,
            given_name(r, sex),
            fam,
            sex,
            birth,
            national_id,
            brn,
            tax_id,
            relationship,
            None,
            phone,
        )
        return person, income

    def iter_households(self, people: int) -> Iterator[Household]:
        """Households until exactly ``people`` persons (the last one may be cut short)."""
        if people < 0:
            raise ValueError("people must be >= 0")
        total = index = 0
        while total < people:
            household = self._household(index, people - total)
            total += len(household.members)
            index += 1
            yield household

    # -- vital events -----------------------------------------------------------------------
    def iter_vital_events(
        self, people: int, start: date | None = None, days: int = 365
    ) -> Iterator[VitalEvent]:
        """Births and deaths in ``[start, start + days)``, ordered by registration date.

        Only events *registered* inside the period are yielded: a late registration falls after
        the period's end and stays unknown, as it would to the civil registry. Memory: one small
        tuple per event; households are rebuilt from their seed when the event is emitted.
        """
        start = start or self.as_of
        if start < self.as_of:
            raise ValueError("the event period cannot start before the census date (as_of)")
        if days < 1:
            raise ValueError("days must be >= 1")
        start_ord, end_ord = start.toordinal(), start.toordinal() + days
        plan: list[tuple[int, int, int, int, int, int, int]] = []
        r = random.Random()
        for index, household in enumerate(self.iter_households(people)):
            r.seed(self._base(1) + index)
            size = len(household.members)
            for m, person in enumerate(household.members):
                self._plan_person(r, plan, person, index, m, size, start_ord, end_ord)
        plan.sort()
        sequences: dict[tuple[int, int], int] = {}
        child_rng = random.Random()
        for reg_ord, event_ord, index, m, kind, j, size in plan:
            household = self.household(index, size)
            registered = date.fromordinal(reg_ord)
            counter = (kind, registered.year)
            sequences[counter] = seq = sequences.get(counter, 0) + 1
            subject = household.members[m]
            if kind == 1:
                drn = new_death_registration_number(registered.year, seq)
                yield VitalEvent(
                    "death",
                    date.fromordinal(event_ord),
                    registered,
                    drn,
                    replace(subject, death_date=date.fromordinal(event_ord)),
                    household.household_key,
                    place_locality_code=household.locality_code,
                )
                continue
            child_rng.seed(self._base(2) + (index * MAX_MEMBERS + m) * 1000 + j)
            father = None
            if subject.relationship in ("head", "spouse"):
                father = next(
                    (
                        p
                        for p in household.members
                        if p is not subject
                        and p.relationship in ("head", "spouse")
                        and p.sex == "male"
                    ),
                    None,
                )
            sex = _sex(child_rng)
            brn = new_birth_registration_number(registered.year, seq)
            child = Person(
                f"{household.household_key}-B{m:02d}{j:02d}",
                given_name(child_rng, sex),
                father.family_name if father else subject.family_name,
                sex,
                date.fromordinal(event_ord),
                None,
                brn,
                None,
                "child" if subject.relationship in ("head", "spouse") else "other_relative",
            )
            yield VitalEvent(
                "birth",
                child.birth_date,
                registered,
                brn,
                child,
                household.household_key,
                mother=subject,
                father=father,
                place_locality_code=household.locality_code,
            )

    @staticmethod
    def _plan_person(
        r: random.Random,
        plan: list[tuple[int, int, int, int, int, int, int]],
        person: Person,
        index: int,
        m: int,
        size: int,
        start_ord: int,
        end_ord: int,
    ) -> None:
        days = end_ord - start_ord
        age = (start_ord - person.birth_date.toordinal()) / _YEAR
        death_ord = None
        q = 1.0 - (1.0 - _annual_mortality(age)) ** (days / _YEAR)
        if r.random() < q:
            death_ord = start_ord + r.randrange(days)
            u = r.random()
            delay = (
                r.randint(0, 7)
                if u < 0.55
                else r.randint(8, 60)
                if u < 0.8
                else r.randint(61, 400)
                if u < 0.9
                else None
            )
            if delay is not None and death_ord + delay < end_ord:
                plan.append((death_ord + delay, death_ord, index, m, 1, 0, size))
        if person.sex != "female" or not 12 <= age < 50:
            return
        partnered = person.relationship in ("head", "spouse")
        last_birth = -(10**9)
        for j in range(math.ceil(days / 365)):
            chunk_start = start_ord + j * 365
            chunk_len = min(365, end_ord - chunk_start)
            rate = _annual_fertility(age + j) * (1.0 if partnered else 0.4) * chunk_len / 365
            if r.random() >= rate:
                continue
            birth_ord = chunk_start + r.randrange(chunk_len)
            if (death_ord is not None and birth_ord >= death_ord) or birth_ord - last_birth < 300:
                continue
            last_birth = birth_ord
            u = r.random()
            delay = (
                r.randint(0, 30)
                if u < 0.6
                else r.randint(31, 365)
                if u < 0.85
                else r.randint(366, 1500)
                if u < 0.95
                else None
            )
            if delay is not None and birth_ord + delay < end_ord:
                plan.append((birth_ord + delay, birth_ord, index, m, 0, j, size))
