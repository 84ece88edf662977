"""The flat plan (``mappings.flat_plan``) gives exactly what the general run gives.

``Spec.apply`` takes the plan's output when the plan takes a record; these tests compare that
output with the general run's (``Spec.map``) on real rows of the sandbox partners and on
every kind of damage a column can carry, and check that the plan leaves the damaged rows to
the general run (which alone reports problems).
"""

from __future__ import annotations

import csv
from typing import Any

import pytest

from bench.bulk import write_files
from mappings.engine import IdentifierReview, MappingError, load_spec
from mappings.flat_plan import plan_for
from mappings.loader import available_specs
from standards.identifiers import default_profile

DAMAGE: tuple[Any, ...] = (
    "",
    "   ",
    None,
    "x",
    "31/02/2020",
    "2999-01-01",
    "-1",
    "1e400",
    "NaN",
    "  padded  value  ",
    "ÉLODIE",
    "0" * 40,
    12,
    True,
    ["a"],
    {"a": 1},
)


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("flat")
    export, tax = folder / "export.csv", folder / "tax.csv"
    write_files(60, 11, export, tax)
    with export.open(encoding="utf-8") as a, tax.open(encoding="utf-8") as b:
        return {
            "partner_household_row": list(csv.DictReader(a)),
            "tax_income_row": list(csv.DictReader(b, delimiter=";")),
        }


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "ok", run()
    except IdentifierReview as exc:
        return "review", (exc.as_dict(), exc.record)
    except MappingError as exc:
        return "error", exc.as_dict()


def _same(spec_name: str, record: Any) -> bool:
    """Compare apply (plan first) with the general run; True when the plan took it."""
    spec = load_spec(spec_name)
    profile = default_profile()
    plan = plan_for(spec)
    assert plan is not None
    taken = plan.apply(record, profile) is not None
    fast = _outcome(lambda: spec.apply(record, profile))
    general = _outcome(lambda: spec.map(record, profile).record)
    assert fast == general, (spec_name, record)
    return taken


def test_the_bulk_specs_are_flat_and_hooked_specs_are_not() -> None:
    assert plan_for(load_spec("partner_household_row")) is not None
    assert plan_for(load_spec("tax_income_row")) is not None
    # A FHIR bundle is read through bindings and filters: the general run only.
    assert plan_for(load_spec("civil_registry_birth")) is None


@pytest.mark.parametrize("spec_name", ["partner_household_row", "tax_income_row"])
def test_clean_rows_are_taken_by_the_plan_with_the_general_runs_output(
    rows: dict[str, list[dict[str, Any]]], spec_name: str
) -> None:
    taken = [_same(spec_name, row) for row in rows[spec_name]]
    assert all(taken), "a clean sandbox row was left to the general run"


@pytest.mark.parametrize("spec_name", ["partner_household_row", "tax_income_row"])
def test_every_damaged_column_gives_the_general_runs_outcome(
    rows: dict[str, list[dict[str, Any]]], spec_name: str
) -> None:
    base = rows[spec_name][0]
    left = 0
    for column in base:
        for damage in DAMAGE:
            record = {**base, column: damage}
            left += not _same(spec_name, record)
        missing = {k: v for k, v in base.items() if k != column}
        left += not _same(spec_name, missing)
    # Damage the plan cannot take as it is went to the general run (which reported it).
    assert left > len(base)


def test_a_refused_subject_identifier_still_goes_to_review(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    row = {**rows["partner_household_row"][0], "NATIONAL_ID": "abc!"}
    spec = load_spec("partner_household_row")
    assert plan_for(spec).apply(row, default_profile()) is None  # type: ignore[union-attr]
    with pytest.raises(IdentifierReview):
        spec.apply(row)


def test_every_built_in_flat_spec_agrees_on_an_empty_and_a_foreign_record() -> None:
    for name in available_specs():
        spec = load_spec(name)
        if plan_for(spec) is None:
            continue
        for record in ({}, {"unrelated": "value"}, ["not", "an", "object"]):
            fast = _outcome(lambda s=spec, r=record: s.apply(r))  # type: ignore[misc]
            general = _outcome(lambda s=spec, r=record: s.map(r).record)  # type: ignore[misc]
            assert fast == general, name


def test_json_lines_objects_with_nested_keys_map_like_csv() -> None:
    """The tax spec's XML-shaped paths (``GrossIncome.#text``) are key chains too."""
    record = {
        "@recordNo": "7",
        "TaxpayerTIN": "123456789",
        "TaxpayerName": "DOE, John",
        "TaxYear": "2025",
        "GrossIncome": {"#text": "1200.50", "@currency": "xts"},
    }
    spec = load_spec("tax_income_row")
    assert _same("tax_income_row", record)
    out = spec.apply(record)
    assert out["attributes"][0]["value"] == 1200.5
    assert out["attributes"][0]["unit"] == "XTS"
