"""The synthetic population: determinism, streaming shape and plausible distributions."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import date

import pytest

from sandbox_mocks.population import (
    DEFAULT_AS_OF,
    AreaLocator,
    PopulationIndex,
    SyntheticCountry,
    age_on,
    is_valid_national_id,
    iter_households,
    iter_vital_events,
)

PEOPLE = 30_000


@pytest.fixture(scope="module")
def country() -> SyntheticCountry:
    return SyntheticCountry(11)


@pytest.fixture(scope="module")
def households(country: SyntheticCountry):
    return list(country.iter_households(PEOPLE))


@pytest.fixture(scope="module")
def people(households):
    return [p for h in households for p in h.members]


def test_same_seed_same_world_different_seed_different_world() -> None:
    first = list(iter_households(5, 3000))
    again = list(iter_households(5, 3000))
    other = list(iter_households(6, 3000))
    assert first == again
    names = [(p.given_name, p.family_name, p.birth_date) for h in first for p in h.members]
    other_names = [(p.given_name, p.family_name, p.birth_date) for h in other for p in h.members]
    assert names != other_names
    assert len(set(names) & set(other_names)) < len(names) // 10


def test_exact_head_count_and_small_world_is_prefix_of_large() -> None:
    small = list(iter_households(5, 1000))
    large = list(iter_households(5, 5000))
    assert sum(len(h.members) for h in small) == 1000
    assert sum(len(h.members) for h in large) == 5000
    # Every household but the (possibly truncated) last one is identical in both worlds.
    assert small[:-1] == large[: len(small) - 1]
    assert small[-1].members == large[len(small) - 1].members[: len(small[-1].members)]


def test_household_sizes_are_plausible(households) -> None:
    sizes = [len(h.members) for h in households]
    assert 3.0 <= statistics.mean(sizes) <= 5.0
    assert sizes.count(1) / len(sizes) > 0.05  # people living alone
    assert sum(s >= 8 for s in sizes) / len(sizes) > 0.02  # large households
    assert max(sizes) <= 16


def test_every_household_has_one_head_and_children_younger_than_parents(households) -> None:
    for household in households[:-1]:  # the last one may be cut short
        relationships = Counter(p.relationship for p in household.members)
        assert relationships["head"] == 1
        assert relationships["spouse"] <= 1
        couple = [p for p in household.members if p.relationship in ("head", "spouse")]
        youngest_parent = max(p.birth_date for p in couple)
        for child in (p for p in household.members if p.relationship == "child"):
            assert child.birth_date > youngest_parent


def test_sex_ratio_and_age_pyramid(people) -> None:
    female = sum(p.sex == "female" for p in people) / len(people)
    assert 0.45 <= female <= 0.55
    ages = Counter(age_on(p, DEFAULT_AS_OF) // 10 for p in people)
    # A young population: each decade of life holds fewer people than the one before.
    assert ages[0] > ages[2] > ages[4] > ages[6] > ages[8]
    assert all(0 <= age_on(p, DEFAULT_AS_OF) <= 100 for p in people)


def test_identifiers_are_valid_unique_and_partly_missing(people) -> None:
    nids = [p.national_id for p in people if p.national_id]
    assert all(is_valid_national_id(n) for n in nids)
    assert len(set(nids)) == len(nids)
    missing = 1 - len(nids) / len(people)
    assert 0.05 < missing < 0.4
    under_five = [p for p in people if age_on(p, DEFAULT_AS_OF) < 5]
    adults = [p for p in people if age_on(p, DEFAULT_AS_OF) >= 18]
    share = lambda group: sum(p.national_id is None for p in group) / len(group)  # noqa: E731
    assert share(under_five) > share(adults)  # enrolment lags for small children
    brns = [p.birth_registration_number for p in people if p.birth_registration_number]
    assert len(set(brns)) == len(brns)
    assert 0.3 < len(brns) / len(people) < 0.95
    tins = [p.tax_id for p in people if p.tax_id]
    assert len(set(tins)) == len(tins)


def test_informal_workers_have_no_tax_record(households, people) -> None:
    working_age = [p for p in people if 18 <= age_on(p, DEFAULT_AS_OF) < 65]
    informal_or_idle = sum(p.tax_id is None for p in working_age) / len(working_age)
    assert 0.3 < informal_or_idle < 0.9
    for household in households:
        tins = {p.tax_id for p in household.members if p.tax_id}
        assert {i.tax_id for i in household.incomes} == tins
        for income in household.incomes:
            assert income.amount > 0
            assert income.year == DEFAULT_AS_OF.year - 1
    children = [p for p in people if age_on(p, DEFAULT_AS_OF) < 18]
    assert all(p.tax_id is None for p in children)


def test_households_are_placed_inside_their_locality(country, households) -> None:
    locator = AreaLocator(country.areas)
    localities = {a.code for a in country.areas if a.level == 3}
    for household in households[:400]:
        assert household.locality_code in localities
        chain = locator.locate(household.longitude, household.latitude)
        assert [a.level for a in chain] == [1, 2, 3]
        assert chain[-1].code == household.locality_code
        assert household.address.endswith(chain[-1].name)


def test_vital_events_are_ordered_plausible_and_deterministic(country, households) -> None:
    start, days = date(2025, 1, 1), 365
    events = list(country.iter_vital_events(PEOPLE, start, days))
    assert events == list(iter_vital_events(11, PEOPLE, start, days))
    assert [e.registration_date for e in events] == sorted(e.registration_date for e in events)
    births = [e for e in events if e.kind == "birth"]
    deaths = [e for e in events if e.kind == "death"]
    assert 8 <= 1000 * len(births) / PEOPLE <= 45
    assert 2 <= 1000 * len(deaths) / PEOPLE <= 20
    numbers = [e.registration_number for e in events]
    assert len(set(numbers)) == len(numbers)
    keys = {p.person_key for h in households for p in h.members}
    delays = []
    for event in events:
        assert start <= event.event_date <= event.registration_date
        assert event.registration_date.toordinal() < start.toordinal() + days
        delays.append((event.registration_date - event.event_date).days)
    assert max(delays) > 60 and statistics.median(delays) < 60  # most prompt, some late
    for birth in births:
        assert birth.mother is not None and birth.mother.person_key in keys
        assert birth.mother.sex == "female"
        assert 12 <= age_on(birth.mother, birth.event_date) <= 50
        assert birth.person.birth_date == birth.event_date
        assert birth.person.national_id is None
        assert birth.person.birth_registration_number == birth.registration_number
        if birth.father is not None:
            assert birth.father.sex == "male"
            assert birth.person.family_name == birth.father.family_name
    for death in deaths:
        assert death.person.person_key in keys
        assert death.person.death_date == death.event_date
        assert death.registration_number.startswith(f"DR{death.registration_date.year}")
    dead = {d.person.person_key: d.event_date for d in deaths}
    for birth in births:  # no mother gives birth after her own death
        assert birth.mother is not None
        died = dead.get(birth.mother.person_key)
        assert died is None or birth.event_date < died
    other = list(iter_vital_events(12, PEOPLE, start, days))
    assert [e.registration_number for e in other] != numbers or [
        e.person.given_name for e in other
    ] != [e.person.given_name for e in events]


def test_events_reject_bad_periods(country) -> None:
    with pytest.raises(ValueError, match="census date"):
        next(country.iter_vital_events(100, date(2020, 1, 1), 10))
    with pytest.raises(ValueError, match="days"):
        next(country.iter_vital_events(100, DEFAULT_AS_OF, 0))
    with pytest.raises(ValueError, match="seed"):
        SyntheticCountry(-1)


def test_population_index_applies_births_and_deaths() -> None:
    index = PopulationIndex.build(3, 2000, events_days=365)
    base = PopulationIndex.build(3, 2000)
    births = [e for e in index.events if e.kind == "birth"]
    deaths = [e for e in index.events if e.kind == "death"]
    assert births and deaths
    assert len(index) == len(base) + len(births) == 2000 + len(births)
    for death in deaths:
        person = index.person(death.person.person_key)
        assert person is not None and person.death_date == death.event_date
        if person.national_id:
            assert index.by_national_id(person.national_id) == person
    for birth in births:
        household = index.household_of(birth.person.person_key)
        assert household is not None and household.household_key == birth.household_key
        assert index.by_birth_registration_number(birth.registration_number) == birth.person
    with_tin = next(p for p in base.people() if p.tax_id)
    assert with_tin.tax_id is not None and base.by_tax_id(with_tin.tax_id) == with_tin
    assert base.by_national_id("0000000000") is None
    someone = next(base.people())
    household = base.household_of(someone.person_key)
    assert household is not None
    assert [a.level for a in base.area_chain(household.locality_code)] == [1, 2, 3]
