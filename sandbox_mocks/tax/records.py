"""Turn the synthetic population into the tax authority's income extract rows.

The rows use the tax authority's own column names (``TAXPAYER_TIN``, ``GROSS_INCOME``...), not
the hub's canonical names: the mock plays an outside system, and the hub's mapping layer is what
must bridge the two vocabularies.

Every row carries a ``TAX_OFFICE`` name with accented letters. Real extracts do (office and
employer names), and it is what makes a wrong-encoding fault detectable: a latin-1 file that
claims to be UTF-8 only fails to decode when it holds non-ASCII bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import date, timedelta

from sandbox_mocks.population.model import Household, Income, Person
from sandbox_mocks.population.noise import partner_view

CSV_COLUMNS: tuple[str, ...] = (
    "RECORD_NO",
    "TAXPAYER_TIN",
    "NATIONAL_ID",
    "TAXPAYER_NAME",
    "EMPLOYER_TIN",
    "EMPLOYER_NAME",
    "TAX_YEAR",
    "PERIOD_START",
    "PERIOD_END",
    "GROSS_INCOME",
    "CURRENCY",
    "FILED_ON",
    "TAX_OFFICE",
)

# Only latin-1-encodable accents, so the wrong-encoding fault can re-encode every file.
TAX_OFFICES: tuple[str, ...] = (
    "Recette des Impôts de Nordval",
    "Oficina Tributaria de Peñasco",
    "Centre Fiscal de Lérida-Sud",
    "Repartição de Finanças de São Vale",
    "Steueramt Südhafen",
)

Row = dict[str, str]


def _stable_hash(*parts: str) -> int:
    """A hash that is the same in every process (``hash()`` is salted per run)."""
    return zlib.crc32("|".join(parts).encode("utf-8"))


def tax_office_for(employer_tax_id: str) -> str:
    return TAX_OFFICES[_stable_hash(employer_tax_id) % len(TAX_OFFICES)]


def filed_on(income: Income) -> date:
    """When the return was filed: a stable day between 15 January and 30 April of year + 1."""
    start = date(income.year + 1, 1, 15)
    return start + timedelta(days=_stable_hash(income.tax_id, income.employer_tax_id) % 106)


PARTNER = "tax"


def taxpayers(
    households: Iterable[Household], seed: int = 0, noise_rate: float = 0.0
) -> dict[str, Person]:
    """Tax id -> the tax authority's (possibly noisy) copy of the person.

    The tax id itself is kept exact: it is the tax authority's own key.
    """
    people: dict[str, Person] = {}
    for household in households:
        for person in household.members:
            if person.tax_id:
                people[person.tax_id] = (
                    partner_view(person, PARTNER, seed, noise_rate, keep=frozenset({"tax_id"}))
                    if noise_rate
                    else person
                )
    return people


def _display_name(person: Person) -> str:
    return f"{person.family_name.upper()}, {person.given_name}"


def income_row(income: Income, person: Person | None, currency: str) -> Row:
    """One return as a row of strings; ``RECORD_NO`` is filled in when the file is cut."""
    national_id = income.national_id or ""
    if person is not None and person.national_id is None:
        national_id = ""  # the tax authority's copy lacks it (noise blanked the field)
    return {
        "RECORD_NO": "",
        "TAXPAYER_TIN": income.tax_id,
        "NATIONAL_ID": national_id,
        "TAXPAYER_NAME": _display_name(person) if person is not None else "",
        "EMPLOYER_TIN": income.employer_tax_id,
        "EMPLOYER_NAME": income.employer_name,
        "TAX_YEAR": str(income.year),
        "PERIOD_START": date(income.year, 1, 1).isoformat(),
        "PERIOD_END": date(income.year, 12, 31).isoformat(),
        "GROSS_INCOME": f"{income.amount}.00",
        "CURRENCY": currency,
        "FILED_ON": filed_on(income).isoformat(),
        "TAX_OFFICE": tax_office_for(income.employer_tax_id),
    }


def rows_by_period(
    households: Iterable[Household],
    currency: str = "XTS",
    seed: int = 0,
    noise_rate: float = 0.0,
) -> dict[str, list[Row]]:
    """All income rows grouped by tax year (as a string), in a stable order."""
    households = list(households)
    people = taxpayers(households, seed, noise_rate)
    periods: dict[str, list[Row]] = {}
    for household in households:
        for income in household.incomes:
            row = income_row(income, people.get(income.tax_id), currency)
            periods.setdefault(str(income.year), []).append(row)
    for rows in periods.values():
        rows.sort(key=lambda r: (r["TAXPAYER_TIN"], r["EMPLOYER_TIN"]))
    return dict(sorted(periods.items()))
