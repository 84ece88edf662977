"""The simulation's small parts: CEL conditions written as SQL agree with CEL itself on
random values (run in SQLite), refusals name what is not translated, small cells are
suppressed whole, budgets multiply as documented, segment bands are labelled and bounded."""

from __future__ import annotations

import random
import sqlite3

import pytest

from registry_core.errors import InvalidRecord
from registry_core.scoring.expressions import compile_expression
from registry_core.simulation.budget import budget
from registry_core.simulation.cel_sql import Untranslatable, translate, translate_formula
from registry_core.simulation.query import band_labels
from registry_core.simulation.scenario import check_scenario

NAMES = ("size", "children", "income", "score")
CONDITIONS = (
    "children >= 1.0 || size > 5.0",
    "!(income > 1000.0) && score <= 40.0",
    'area.startsWith("R01") && children >= 1.0',
    'area.endsWith("D02") || area.contains("-D0")',
    "size * 2.0 - children > 3.0 ? income < 500.0 : score > 10.0",
    '-score + 2.0 * double(size) >= -30.0 && area == "R02-D01"',
    "(children > 0.0) == (size > 2.0)",
    "true && !false",
)
AREAS = ("R01-D01", "R01-D02", "R02-D01", "R1", "", "X-D02")


def sql_value(condition: str, values: dict) -> bool:
    columns = {name: f":v_{name}" for name in NAMES}
    columns["area"] = ":v_area"
    translation = translate(condition, columns, "sqlite")
    params = {f"v_{k}": v for k, v in values.items()} | translation.params
    with sqlite3.connect(":memory:") as conn:
        (result,) = conn.execute(
            f"SELECT CASE WHEN {translation.sql} THEN 1 ELSE 0 END", params
        ).fetchone()
    return bool(result)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_translated_conditions_agree_with_cel(condition):
    samples = {name: 1.0 for name in NAMES} | {"area": "R01-D01"}
    expression = compile_expression(condition, "condition", samples, result=bool)
    rng = random.Random(condition)
    for _ in range(200):
        values = {
            "size": float(rng.randint(1, 8)),
            "children": float(rng.randint(0, 4)),
            "income": float(rng.choice([0, 250, 999, 1000, 1001, 5000])),
            "score": rng.choice([-5.0, 9.5, 10.0, 35.0, 40.0, 40.5, 60.0]),
            "area": rng.choice(AREAS),
        }
        assert sql_value(condition, values) == bool(expression.evaluate(values)), values


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ("size / children > 1.0", "'/'"),
        ("size / 0.0 > 1.0", "'/'"),
        ("size / 2 > 1.0", "'/'"),
        ("size % 2.0 == 0.0", "'%'"),
        ("int(size) > 1", "int"),
        ('area.matches("R.*")', "matches"),
        ("[1.0, 2.0].exists(x, x > size)", "["),
        ('area.startsWith("R\\"01")', "escaped"),
    ],
)
def test_what_is_not_translated_is_named(condition, named):
    with pytest.raises(Untranslatable, match=None) as caught:
        translate(condition, {"size": "s", "children": "c", "area": "a"}, "postgresql")
    assert named in str(caught.value)


FORMULAS = (
    "size > 3.0 ? 10.0 - children : 20.0 - 2.0 * children",
    "60.0 - 2.5 * size - 3.0 * children + income / 1000.0 - (score > 40.0 ? 1.5 : 0.0)",
    "-income / 12.0 * 0.5 + double(size) * (children + 1.0)",
    "children >= 1.0 && size <= 4.0 ? income / 3.0 : income / 7.0",
    "1.0e1 - size",
)


def sql_number(formula: str, values: dict) -> float:
    columns = {name: f"CAST(:v_{name} AS DOUBLE PRECISION)" for name in NAMES}
    translation = translate_formula(formula, columns, "sqlite")
    params = {f"v_{k}": v for k, v in values.items()} | translation.params
    with sqlite3.connect(":memory:") as conn:
        (result,) = conn.execute(f"SELECT {translation.sql}", params).fetchone()
    return float(result)


@pytest.mark.parametrize("formula", FORMULAS)
def test_translated_formulas_give_the_numbers_cel_gives(formula):
    """The same double arithmetic in the same order: equal to the last bit, as the incremental
    path (CEL in Python) and a simulation (SQL) must decide a threshold alike."""
    samples = dict.fromkeys(NAMES, 1.0)
    expression = compile_expression(formula, "formula", samples, result=(float, int))
    rng = random.Random(formula)
    for _ in range(200):
        values = {
            "size": float(rng.randint(1, 8)),
            "children": float(rng.randint(0, 4)),
            "income": rng.choice([0.0, 250.0, 999.5, 1000.0, 1234.567, 5000.0]),
            "score": rng.choice([-5.0, 9.5, 40.0, 40.5, 60.0]),
        }
        assert sql_number(formula, values) == float(expression.evaluate(values)), values


@pytest.mark.parametrize(
    ("formula", "named", "line", "column"),
    [
        ("size % 2.0", "'%'", 1, 6),
        ("10.0 -\n  size / children", "'/'", 2, 8),
        ("size > 1.0 ?\n  int(size) : 2", "int", 2, 3),
        ("[1.0].size()", "'['", 1, 1),
    ],
)
def test_a_formula_refusal_names_the_line_and_column(formula, named, line, column):
    with pytest.raises(Untranslatable) as caught:
        translate_formula(formula, {"size": "s", "children": "c"}, "postgresql")
    assert named in str(caught.value)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert f"at line {line}, column {column}" in str(caught.value)


def test_strings_are_bound_never_written_into_the_sql():
    translation = translate('area.startsWith("R01\'; DROP TABLE x; --")', {"area": "a"}, "pg")
    assert "DROP" not in translation.sql
    assert list(translation.params.values()) == ["R01'; DROP TABLE x; --"]


def test_budgets_multiply_amount_beneficiaries_and_periods():
    monthly = {"amount": 12.5, "per": "household", "period": "month", "periods": 12}
    assert budget(monthly, 10, 37, 30)["total"] == 12.5 * 10 * 12
    assert budget(monthly, 10, 37, 30)["per_period"] == 125.0
    per_person = {"amount": 3.0, "per": "person", "periods": 4}
    assert budget(per_person, 10, 37, 30)["total"] == 3.0 * 37 * 4
    capped = {**per_person, "max_persons": 3}
    assert budget(capped, 10, 37, 30)["total"] == 3.0 * 30 * 4
    assert budget(None, 10, 37, 30) is None


def test_band_labels():
    assert band_labels([1, 2, 4, 6]) == ["1", "2-3", "4-5", "6+"]
    assert band_labels([0, 1, 3]) == ["0", "1-2", "3+"]
    assert band_labels([0.5, 1.5]) == ["0.5-<1.5", "1.5+"]


def test_scenario_shape_is_checked_with_paths():
    with pytest.raises(InvalidRecord) as caught:
        check_scenario({"name": "x", "segment": {"bands": [3, 1]}})
    assert caught.value.violations[0].path == "$.segment.bands"
    with pytest.raises(InvalidRecord) as caught:
        check_scenario({"name": "x", "as_of": "June"})
    assert caught.value.violations[0].path == "$.as_of"
    with pytest.raises(InvalidRecord):
        check_scenario({"rules": {"cct": {"threshold": {"max_score": 1}}}})  # no name
    with pytest.raises(InvalidRecord):
        check_scenario({"name": "x", "benefits": {"cct": {"amount": -1, "per": "x"}}})
