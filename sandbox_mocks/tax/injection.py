"""Which faults a drop carries: the configurable mix, and the pure functions that apply it.

Two layers of fault exist. *Row* faults spoil single records inside an otherwise good file
(the hub must reject those rows with a reason and keep the rest). *File* faults spoil the whole
delivery (duplicate, truncated, wrong encoding) and must be caught by the manifest checks.
Each bad row gets exactly one fault, so a test can tell precisely which rows the hub rejects.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import jsonschema

from sandbox_mocks.tax.records import Row

BAD_ROW_KINDS: tuple[str, ...] = (
    "bad_date",
    "negative_amount",
    "non_numeric_amount",
    "missing_tax_id",
    "bad_check_digit",
)
FILE_FAULTS: tuple[str, ...] = ("duplicate", "truncated", "wrong_encoding")

_RATE = {"type": "number", "minimum": 0, "maximum": 1}

MIX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "bad_row_rate": _RATE,
        "bad_row_kinds": {
            "type": "array",
            "items": {"enum": list(BAD_ROW_KINDS)},
            "minItems": 1,
            "uniqueItems": True,
        },
        "duplicate_rate": _RATE,
        "truncated_rate": _RATE,
        "wrong_encoding_rate": _RATE,
    },
}


@dataclass(frozen=True)
class InjectionMix:
    """Probabilities applied to every drop that does not name its faults explicitly."""

    bad_row_rate: float = 0.0  # share of rows that get one row fault
    bad_row_kinds: tuple[str, ...] = BAD_ROW_KINDS
    duplicate_rate: float = 0.0  # chance the drop is delivered twice under two names
    truncated_rate: float = 0.0  # chance the data file is cut short
    wrong_encoding_rate: float = 0.0  # chance the file is latin-1 while claiming UTF-8

    @classmethod
    def from_json(cls, data: Any) -> InjectionMix:
        """Build from an API body; raises ``ValueError`` naming the offending field."""
        validate(data, MIX_SCHEMA)
        values = dict(data)
        if "bad_row_kinds" in values:
            values["bad_row_kinds"] = tuple(values["bad_row_kinds"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bad_row_kinds"] = list(self.bad_row_kinds)
        return data


def validate(data: Any, schema: dict[str, Any]) -> None:
    """jsonschema validation turned into a ``ValueError`` a person can act on."""
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(body)"
        raise ValueError(f"{where}: {exc.message}") from None


@dataclass
class FaultPlan:
    """The faults one drop will carry, decided before anything is written."""

    bad_rows: dict[str, int] = field(default_factory=dict)  # kind -> number of rows
    file_faults: list[str] = field(default_factory=list)


def plan_from_mix(mix: InjectionMix, row_count: int, rng: random.Random) -> FaultPlan:
    """Draw a drop's faults from the mix."""
    plan = FaultPlan()
    for _ in range(row_count):
        if mix.bad_row_rate and rng.random() < mix.bad_row_rate:
            kind = rng.choice(mix.bad_row_kinds)
            plan.bad_rows[kind] = plan.bad_rows.get(kind, 0) + 1
    for name, rate in (
        ("duplicate", mix.duplicate_rate),
        ("truncated", mix.truncated_rate),
        ("wrong_encoding", mix.wrong_encoding_rate),
    ):
        if rate and rng.random() < rate:
            plan.file_faults.append(name)
    return plan


_BAD_DATES = ("{y}-02-30", "{y}-13-01", "31/12/{y}", "not-a-date", "")
_NON_NUMERIC = ("N/A", "12,345.00", "1234O.00", "abc", "12.345,67")


def _bad_check_digit(national_id: str, rng: random.Random) -> str:
    """Replace the check digit by a different digit.

    The check digit is a function of the other nine digits, so any other last digit is wrong,
    whatever the checksum algorithm is.
    """
    last = int(national_id[-1])
    return national_id[:-1] + str((last + rng.randint(1, 9)) % 10)


def _eligible(kind: str, row: Row) -> bool:
    if kind == "bad_check_digit":
        nid = row.get("NATIONAL_ID", "")
        return len(nid) >= 2 and nid.isdigit()
    return True


def corrupt_rows(
    rows: list[Row], bad_rows: dict[str, int], rng: random.Random
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Return copies of ``rows`` with the planned row faults, and one record per fault applied.

    Each record names the 1-based row number (``RECORD_NO``), the fault kind, the field and the
    bad value, so a test can check the hub flagged exactly those rows. A kind that finds no
    eligible row (e.g. no row has a national ID) is reported with ``row: None``.
    """
    out = [dict(row) for row in rows]
    free = list(range(len(out)))
    rng.shuffle(free)
    applied: list[dict[str, Any]] = []
    for kind in sorted(bad_rows):
        for _ in range(bad_rows[kind]):
            index = next((i for i in free if _eligible(kind, out[i])), None)
            if index is None:
                applied.append({"row": None, "kind": kind, "reason": "no eligible row left"})
                continue
            free.remove(index)
            field_name, value = _apply(kind, out[index], rng)
            out[index][field_name] = value
            applied.append(
                {
                    "row": int(out[index]["RECORD_NO"]),
                    "kind": kind,
                    "field": field_name,
                    "value": value,
                }
            )
    applied.sort(key=lambda a: (a["row"] is None, a["row"] or 0))
    return out, applied


def _apply(kind: str, row: Row, rng: random.Random) -> tuple[str, str]:
    year = row.get("TAX_YEAR", "2000")
    if kind == "bad_date":
        field_name = rng.choice(("PERIOD_START", "PERIOD_END", "FILED_ON"))
        return field_name, rng.choice(_BAD_DATES).format(y=year)
    if kind == "negative_amount":
        return "GROSS_INCOME", "-" + row["GROSS_INCOME"].lstrip("-")
    if kind == "non_numeric_amount":
        return "GROSS_INCOME", rng.choice(_NON_NUMERIC)
    if kind == "missing_tax_id":
        return "TAXPAYER_TIN", ""
    if kind == "bad_check_digit":
        return "NATIONAL_ID", _bad_check_digit(row["NATIONAL_ID"], rng)
    raise ValueError(f"unknown row fault {kind!r}; expected one of {', '.join(BAD_ROW_KINDS)}")
