"""Row checks at the edge: which income rows the tax connector refuses to pass on, and why.

Why at the edge and not only in the mapping: a tax extract is the partner's statement of who
earned what. A row with a mistyped national ID or a negative amount would be attached to the
wrong person or distort a means test, and the tax authority is the one who must fix it, so
the rejection belongs in the per-file report it receives back, row by row. Mapping failures
later are the ingest's business; these are the partner's published rules (its XSD and the
national ID's rule in the country profile, e.g. its Verhoeff check digit) applied to every row,
CSV or XML alike.

Problems name the row and the column, never the value: reports and logs must not carry
identifiers or incomes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from standards.identifiers import IdentifierProfile, default_profile

# The CSV header the tax authority publishes; XML elements are read into the same names.
COLUMNS: tuple[str, ...] = (
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
REQUIRED: tuple[str, ...] = (
    "RECORD_NO",
    "TAXPAYER_TIN",
    "TAX_YEAR",
    "PERIOD_START",
    "PERIOD_END",
    "GROSS_INCOME",
    "CURRENCY",
    "FILED_ON",
)
# Columns a file must have in its header; NATIONAL_ID may be empty (not everyone has one
# yet) but the column must exist, or the file is not this extract.
HEADER_REQUIRED: tuple[str, ...] = (*REQUIRED, "NATIONAL_ID")

TIN_RE = re.compile(r"^[0-9]{9}$")
YEAR_RE = re.compile(r"^[0-9]{4}$")
AMOUNT_RE = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,2})?$")  # the XSD: decimal >= 0, 2 places
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
RECORD_NO_RE = re.compile(r"^[1-9][0-9]{0,9}$")
MAX_TEXT = 200  # the XSD's TextType


@dataclass(frozen=True)
class Problem:
    """One reason a row is refused: the column at fault and a sentence for the tax authority."""

    column: str
    reason: str


@lru_cache(maxsize=4096)  # a file repeats the same few hundred dates: parse each once
def _date(value: str) -> date | None:
    if not DATE_RE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def check_row(
    row: Mapping[str, str],
    period: str | None = None,
    identifiers: IdentifierProfile | None = None,
) -> list[Problem]:
    """Every problem of one row (CSV column names), in column order; empty when it is good.

    ``period`` is the tax year the manifest announces: a row of another year is in the wrong
    file. ``identifiers`` is the country profile whose ``national_id`` rule the NATIONAL_ID
    column must follow (default: the built-in profile).
    """
    problems: list[Problem] = []
    values = {name: (row.get(name) or "").strip() for name in COLUMNS}
    missing = {name for name in REQUIRED if not values[name]}
    if missing:
        problems.extend(
            Problem(name, "required value is missing") for name in REQUIRED if name in missing
        )

    record_no = values["RECORD_NO"]
    if record_no and not RECORD_NO_RE.match(record_no):
        problems.append(Problem("RECORD_NO", "record number must be a positive whole number"))
    if "TAXPAYER_TIN" not in missing and not TIN_RE.match(values["TAXPAYER_TIN"]):
        problems.append(Problem("TAXPAYER_TIN", "tax ID must be exactly 9 digits"))
    if values["NATIONAL_ID"]:
        problem = (identifiers or default_profile()).problem("national_id", values["NATIONAL_ID"])
        if problem:
            problems.append(Problem("NATIONAL_ID", problem.reason))
    if values["EMPLOYER_TIN"] and not TIN_RE.match(values["EMPLOYER_TIN"]):
        problems.append(Problem("EMPLOYER_TIN", "employer tax ID must be exactly 9 digits"))
    for name in ("TAXPAYER_NAME", "EMPLOYER_NAME", "TAX_OFFICE"):
        if len(values[name]) > MAX_TEXT:
            problems.append(Problem(name, f"text longer than {MAX_TEXT} characters"))

    year = values["TAX_YEAR"]
    if "TAX_YEAR" not in missing:
        if not YEAR_RE.match(year) or not 1900 <= int(year) <= 2999:
            problems.append(Problem("TAX_YEAR", "tax year must be a four-digit year"))
        elif period is not None and year != period:
            problems.append(
                Problem("TAX_YEAR", "tax year differs from the period the manifest announces")
            )

    dates: dict[str, date] = {}
    for name in ("PERIOD_START", "PERIOD_END", "FILED_ON"):
        if name in missing:
            continue
        parsed = _date(values[name])
        if parsed is None:
            problems.append(Problem(name, "not a valid calendar date in the form YYYY-MM-DD"))
        else:
            dates[name] = parsed
    start, end = dates.get("PERIOD_START"), dates.get("PERIOD_END")
    if start and end and start > end:
        problems.append(Problem("PERIOD_END", "period ends before it starts"))

    if "GROSS_INCOME" not in missing:
        amount = values["GROSS_INCOME"]
        if amount.startswith("-") and AMOUNT_RE.match(amount[1:]):
            problems.append(Problem("GROSS_INCOME", "amount must not be negative"))
        elif not AMOUNT_RE.match(amount):
            problems.append(
                Problem(
                    "GROSS_INCOME",
                    "amount must be a number >= 0 with at most 2 decimals and a '.' separator",
                )
            )
    if "CURRENCY" not in missing and not CURRENCY_RE.match(values["CURRENCY"]):
        problems.append(Problem("CURRENCY", "currency must be a three-letter ISO 4217 code"))
    return problems
