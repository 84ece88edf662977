"""A small in-memory index of one sandbox population, for mocks that answer look-ups.

Why in memory: a sandbox serves a few thousand people (default 2,000); dictionaries keyed by each
identifier answer in microseconds and need no files. The 1,000,000-person world is for the
streaming benchmark only and is never indexed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date

from sandbox_mocks.population.generator import DEFAULT_AS_OF, SyntheticCountry
from sandbox_mocks.population.model import AdminArea, Household, Person, VitalEvent

DEFAULT_SANDBOX_PEOPLE = 2000


class PopulationIndex:
    """Households and people of one sandbox, looked up by key or by any identifier.

    Holds its own copies of the households, so applying events never changes the generator's
    objects. ``events`` keeps the events applied, in registration order.
    """

    def __init__(self, households: Iterable[Household], areas: Iterable[AdminArea]) -> None:
        self.areas: dict[str, AdminArea] = {a.code: a for a in areas}
        self.households: dict[str, Household] = {}
        self.events: list[VitalEvent] = []
        self._people: dict[str, Person] = {}
        self._household_of: dict[str, str] = {}
        self._by_nid: dict[str, str] = {}
        self._by_brn: dict[str, str] = {}
        self._by_tin: dict[str, str] = {}
        for household in households:
            copy = replace(household, members=[], incomes=list(household.incomes))
            self.households[copy.household_key] = copy
            for person in household.members:
                self._add(person, copy)

    @classmethod
    def build(
        cls,
        seed: int = 42,
        people: int = DEFAULT_SANDBOX_PEOPLE,
        *,
        as_of: date = DEFAULT_AS_OF,
        events_days: int = 0,
    ) -> PopulationIndex:
        """The population on ``as_of``, then the births and deaths registered in the next
        ``events_days`` days applied (0: none)."""
        country = SyntheticCountry(seed, as_of)
        index = cls(country.iter_households(people), country.areas)
        if events_days > 0:
            for event in country.iter_vital_events(people, as_of, events_days):
                index.apply_event(event)
        return index

    def _add(self, person: Person, household: Household) -> None:
        household.members.append(person)
        self._put(person, household.household_key)

    def _put(self, person: Person, household_key: str) -> None:
        key = person.person_key
        self._people[key] = person
        self._household_of[key] = household_key
        if person.national_id:
            self._by_nid[person.national_id] = key
        if person.birth_registration_number:
            self._by_brn[person.birth_registration_number] = key
        if person.tax_id:
            self._by_tin[person.tax_id] = key

    def apply_event(self, event: VitalEvent) -> None:
        """A birth adds the child to its household; a death marks the person deceased."""
        household = self.households[event.household_key]
        if event.kind == "birth":
            if event.person.person_key not in self._people:
                self._add(event.person, household)
        elif event.kind == "death":
            members = household.members
            for i, member in enumerate(members):
                if member.person_key == event.person.person_key:
                    members[i] = replace(member, death_date=event.event_date)
                    self._put(members[i], household.household_key)
        else:
            raise ValueError(f"unknown vital event kind {event.kind!r}")
        self.events.append(event)

    def __len__(self) -> int:
        return len(self._people)

    def people(self) -> Iterator[Person]:
        return iter(self._people.values())

    def person(self, person_key: str) -> Person | None:
        return self._people.get(person_key)

    def household_of(self, person_key: str) -> Household | None:
        key = self._household_of.get(person_key)
        return self.households.get(key) if key else None

    def by_national_id(self, national_id: str) -> Person | None:
        key = self._by_nid.get(national_id)
        return self._people[key] if key else None

    def by_birth_registration_number(self, brn: str) -> Person | None:
        key = self._by_brn.get(brn)
        return self._people[key] if key else None

    def by_tax_id(self, tax_id: str) -> Person | None:
        key = self._by_tin.get(tax_id)
        return self._people[key] if key else None

    def area_chain(self, locality_code: str) -> list[AdminArea]:
        """Region, district, locality of a locality code."""
        chain = []
        code: str | None = locality_code
        while code:
            area = self.areas[code]
            chain.append(area)
            code = area.parent_code
        return chain[::-1]


def age_on(person: Person, day: date) -> int:
    """Whole years of age on ``day``."""
    born = person.birth_date
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
