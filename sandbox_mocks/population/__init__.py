"""The synthetic population of a fictional country: what every sandbox mock serves.

Everything is a pure function of an integer ``seed`` (>= 0): same seed, same world; a different
seed, a different world. The population streams: a million people never sit in memory at once.

Public API
----------
Areas
    ``generate_areas(seed, regions=4, districts_per_region=4, localities_per_district=5)
    -> list[AdminArea]``: 4 + 16 + 80 areas by default, sorted by code (``R01``, ``R01-D01``,
    ``R01-D01-L001``), GeoJSON polygons (counter-clockwise, closed), ``flood_risk`` and
    ``poverty_rate`` in 0..1. ``AreaLocator(areas).locate(lon, lat)`` -> [region, district,
    locality] (empty outside the country); ``point_in_polygon(lon, lat, polygon)``.

People
    ``iter_households(seed, people, as_of=DEFAULT_AS_OF) -> Iterator[Household]``: households
    until exactly ``people`` persons, as on the census date ``as_of`` (2025-01-01). Household
    ``i`` is the same in every run and every population size (a 2,000-person sandbox is the
    start of the 1,000,000-person world). ``household_key`` ``HH00000042``; ``person_key``
    ``HH00000042-03`` (``-Bmmjj`` for babies born in the simulated period). Each household has a
    locality, an address and a point inside the locality; members with relationship head,
    spouse, child, parent, sibling, other_relative, non_relative; ``incomes`` of its formal
    workers and pensioners (informal workers have no ``tax_id`` and no income record).

Vital events
    ``iter_vital_events(seed, people, start=None, days=365, as_of=DEFAULT_AS_OF)
    -> Iterator[VitalEvent]``: births (to women of the population; ``mother``, ``father`` when
    the mother is head or spouse) and deaths that happened in ``[start, start + days)`` *and were
    registered* inside it, ordered by ``registration_date``. Registration delays are realistic
    (most within weeks, some after a year, some never). The dead person comes with
    ``death_date`` set; a newborn has a BRN and no national ID.

Identifiers (formats in ``ids.IdentifierFactory``)
    ``national_id_check_digit(body9) -> str`` and ``is_valid_national_id(nid) -> bool``: 10
    digits, the last a **Verhoeff** check digit (catches all single-digit errors and adjacent
    swaps), as the sandbox's country profile says (``sandbox_profile()``, the file
    ``identifier_profile.toml``). ``verhoeff_check_digit`` / ``verhoeff_is_valid`` for other
    lengths (16-digit VIDs).
    About a quarter of people have no national ID yet (mostly children); some have no BRN.

Noise
    ``apply_noise(person, rng, rate, keep=frozenset()) -> Person``: with probability ``rate``,
    one or two data-entry errors (typo, swapped given/family name, blanked optional field,
    day/month swap or off-by-one date, rarely a wrong sex). ``partner_view(person, partner,
    seed, rate, keep)`` is the same but stable per (partner, seed, person): use it so a mock
    shows the same noisy record on every request.

Index for mocks
    ``PopulationIndex.build(seed=42, people=2000, as_of=..., events_days=0)``: the sandbox
    population in dictionaries; ``by_national_id``, ``by_birth_registration_number``,
    ``by_tax_id``, ``person(key)``, ``household_of(key)``, ``households``, ``areas``,
    ``area_chain(locality_code)``, ``people()``; ``apply_event(event)`` adds babies and marks
    deaths; ``events`` lists the events applied.

``SyntheticCountry(seed, as_of)`` is the object behind these functions; build one and reuse it
when you need areas, households and events of the same world (it builds the areas once).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from sandbox_mocks.population.generator import DEFAULT_AS_OF, SyntheticCountry
from sandbox_mocks.population.geography import generate_areas
from sandbox_mocks.population.geometry import AreaLocator, point_in_polygon
from sandbox_mocks.population.ids import (
    is_valid_national_id,
    is_valid_vid,
    national_id_check_digit,
    sandbox_profile,
)
from sandbox_mocks.population.index import DEFAULT_SANDBOX_PEOPLE, PopulationIndex, age_on
from sandbox_mocks.population.model import AdminArea, Household, Income, Person, VitalEvent
from sandbox_mocks.population.noise import apply_noise, partner_view
from standards.identifiers import verhoeff_check_digit, verhoeff_is_valid


def iter_households(seed: int, people: int, as_of: date = DEFAULT_AS_OF) -> Iterator[Household]:
    """Stream the households of the world ``seed`` until exactly ``people`` persons."""
    return SyntheticCountry(seed, as_of).iter_households(people)


def iter_vital_events(
    seed: int,
    people: int,
    start: date | None = None,
    days: int = 365,
    as_of: date = DEFAULT_AS_OF,
) -> Iterator[VitalEvent]:
    """Births and deaths registered in ``[start, start + days)``, by registration date."""
    return SyntheticCountry(seed, as_of).iter_vital_events(people, start, days)


__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_SANDBOX_PEOPLE",
    "AdminArea",
    "AreaLocator",
    "Household",
    "Income",
    "Person",
    "PopulationIndex",
    "SyntheticCountry",
    "VitalEvent",
    "age_on",
    "apply_noise",
    "generate_areas",
    "is_valid_national_id",
    "is_valid_vid",
    "iter_households",
    "iter_vital_events",
    "national_id_check_digit",
    "partner_view",
    "point_in_polygon",
    "sandbox_profile",
    "verhoeff_check_digit",
    "verhoeff_is_valid",
]
