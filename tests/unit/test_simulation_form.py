"""The workbench form: only what the person changed becomes the scenario, subgroups are built
from presets and checked area prefixes (nothing can be injected into the CEL through them),
and each of the API's violation paths lands on the field it is about."""

from __future__ import annotations

import pytest

from hub.ui.simulation_form import (
    PREVIEW_NAME,
    ProgramPolicy,
    defaults,
    field_for,
    presets,
    scenario_from_form,
)
from standards.validation import Violation

POLICY = ProgramPolicy(
    program="cct",
    version=3,
    rule={"model_code": "pmt", "threshold": {"max_score": 45.0}},
    model_code="pmt",
    model={
        "variables": [{"name": "size", "source": "members"}, {"name": "disabled"}],
        "intercept": 60.0,
        "weights": {"size": -2.5, "disabled": -4.0},
    },
    schedule={"amount": 40.0, "per": "household", "period": "month", "periods": 12},
)


def test_an_untouched_form_simulates_the_rule_in_force() -> None:
    built = scenario_from_form(defaults(POLICY), POLICY)
    assert built.errors == {}
    assert built.scenario == {"name": PREVIEW_NAME, "rules": {"cct": {"version": 3}}}


def test_only_the_changes_go_into_the_scenario() -> None:
    form = defaults(POLICY) | {
        "name": " raise ",
        "max_score": "48",
        "weight_size": "-3",
        "benefit_amount": "50",
        "area_level": "2",
        "bands": "0, 1, 3",
        "segment_variable": "disabled",
    }
    scenario = scenario_from_form(form, POLICY).scenario
    assert scenario["name"] == "raise"
    assert scenario["rules"] == {"cct": {"threshold": {"max_score": 48.0}}}
    assert scenario["models"] == {"pmt": {"weights": {"size": -3.0}}}  # disabled unchanged
    assert scenario["benefits"]["cct"] == {
        "amount": 50.0,
        "per": "household",
        "period": "month",
        "periods": 12,
    }
    assert scenario["area_level"] == 2
    assert scenario["segment"] == {"variable": "disabled", "bands": [0.0, 1.0, 3.0]}


def test_a_subgroup_from_a_preset_an_area_and_a_condition() -> None:
    key = next(k for k, _, cel in presets(POLICY) if cel.startswith("disabled"))
    form = defaults(POLICY) | {"preset": key, "area_prefix": "R01-D02", "extend_cel": "size > 5.0"}
    built = scenario_from_form(form, POLICY)
    assert built.extend_to == ('(disabled >= 1.0) || (area.startsWith("R01-D02")) || (size > 5.0)')
    assert built.scenario["rules"]["cct"]["extend_to"] == built.extend_to
    both = scenario_from_form(form | {"combine": "and", "extend_cel": ""}, POLICY)
    assert both.extend_to == '(disabled >= 1.0) && (area.startsWith("R01-D02"))'


@pytest.mark.parametrize("prefix", ['R01") || true || ("', "R 01", "-R01", "x" * 65])
def test_an_area_prefix_is_a_plain_code(prefix: str) -> None:
    built = scenario_from_form(defaults(POLICY) | {"area_prefix": prefix}, POLICY)
    assert "area_prefix" in built.errors
    assert "extend_to" not in built.scenario.get("rules", {}).get("cct", {})


def test_numbers_that_are_not_numbers_are_refused_by_field() -> None:
    form = defaults(POLICY) | {"max_score": "abc", "weight_size": "nan", "benefit_periods": "1.5"}
    errors = scenario_from_form(form, POLICY).errors
    assert set(errors) == {"max_score", "weight_size", "benefit_periods"}
    unknown = scenario_from_form(defaults(POLICY) | {"preset": "atleast1:rm -rf"}, POLICY)
    assert "preset" in unknown.errors


@pytest.mark.parametrize(
    ("path", "extended", "field"),
    [
        ("$.name", False, "name"),
        ("$.rules.cct.threshold.max_score", False, "max_score"),
        ("$.rules.cct.threshold", False, "max_score"),
        ("$.rules.cct.extend_to", True, "extend_cel"),
        ("$.rules.cct", True, "extend_cel"),
        ("$.rules.cct", False, "program"),
        ("$.models.pmt.weights.size", False, "weight_size"),
        ("$.models.pmt", False, "weights"),
        ("$.benefits.cct.currency", False, "benefit_currency"),
        ("$.benefits.cct", False, "benefit_amount"),
        ("$.segment.bands", False, "bands"),
        ("$.segment.bands.2", False, "bands"),
        ("$.area_level", False, "area_level"),
        ("$.rules.other", False, ""),
    ],
)
def test_violations_land_on_their_fields(path: str, extended: bool, field: str) -> None:
    assert field_for(Violation(path, "x", "m").path, POLICY, extended) == field
