"""The synthetic country's records, as the partner systems would know them.

These dataclasses are the contract between the population generator and every mock that serves
it (national ID, civil registry, tax, GIS, program MIS). They describe the *truth*; each mock
applies its own data-entry noise (see ``noise.py``) when it shows a record to the hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class AdminArea:
    """One administrative area. ``level`` is 1 region, 2 district, 3 locality."""

    code: str  # e.g. "R01", "R01-D02", "R01-D02-L003"
    name: str
    level: int
    parent_code: str | None
    # Polygon ring(s) as GeoJSON coordinates [[[lon, lat], ...]], closed.
    polygon: list[list[list[float]]]
    flood_risk: float  # 0..1 share of the area in a flood zone
    poverty_rate: float  # 0..1 share of people below the national poverty line


@dataclass(frozen=True)
class Person:
    person_key: str  # stable internal key of the synthetic world, never shown to the hub
    given_name: str
    family_name: str
    sex: str  # "male" | "female"
    birth_date: date
    national_id: str | None  # 10 digits, last one a check digit; None: not enrolled yet
    birth_registration_number: str | None
    tax_id: str | None  # None: informal worker or dependant
    relationship: str  # head, spouse, child, parent, sibling, other_relative, non_relative
    death_date: date | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Income:
    tax_id: str
    national_id: str | None
    employer_name: str
    employer_tax_id: str
    year: int
    amount: int  # annual gross income in whole currency units


@dataclass(frozen=True)
class Household:
    household_key: str
    locality_code: str
    address: str
    latitude: float
    longitude: float
    members: list[Person] = field(default_factory=list)
    incomes: list[Income] = field(default_factory=list)


@dataclass(frozen=True)
class VitalEvent:
    """A birth or death that happened in the simulated period and when it was registered."""

    kind: str  # "birth" | "death"
    event_date: date
    registration_date: date  # event_date plus a registration delay
    registration_number: str  # BRN for births, DRN for deaths
    person: Person  # the child (birth) or the deceased (death)
    household_key: str
    mother: Person | None = None  # births only
    father: Person | None = None  # births only, may be unknown
    place_locality_code: str | None = None
