"""Scoring definitions without a database: what is refused at upload (shape, names, CEL
sandbox, positions), how facts become numbers, missing-value rules, linear and formula scores,
eligibility decisions, and the program filter of eligibility events."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hub.subscriptions.matching import program_matches
from registry_core.errors import InvalidRecord
from registry_core.scoring.definitions import MODEL_SCHEMA, RULE_SCHEMA, parse_model, parse_rule
from registry_core.scoring.evaluate import as_number, decide, score
from registry_core.scoring.expressions import ExpressionError, compile_expression

VARIABLES = [
    {"name": "size", "source": "members"},
    {
        "name": "rooms",
        "source": "household_attribute",
        "domain": "dwelling",
        "attribute": "rooms",
        "missing": {"rule": "default", "value": 2},
    },
    {"name": "income", "source": "tax_income", "period": "2025"},
]
LINEAR = {"variables": VARIABLES, "intercept": 5.0, "weights": {"size": -1.5, "rooms": 0.5}}


def refusal(document: dict) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRecord) as caught:
        parse_model(document)
    return [(v.path, v.message) for v in caught.value.violations]


def test_a_linear_model_scores_with_contributions_and_missing_rules():
    model = parse_model(LINEAR)
    assert model.linear and model.names() == ["size", "rooms", "income"]
    result = score(model, {"size": 4.0, "rooms": None, "income": 1000.0})
    assert result.inputs == {"size": 4.0, "rooms": 2.0, "income": 1000.0}  # rooms defaulted
    assert result.contributions == {"size": -6.0, "rooms": 1.0}
    assert result.score == pytest.approx(5.0 - 6.0 + 1.0)
    unscorable = score(model, {"size": 4.0, "rooms": 3.0, "income": None})
    assert unscorable.score is None and unscorable.missing == ("income",)
    assert unscorable.contributions == {}


def test_random_linear_models_equal_their_arithmetic():
    rng = random.Random(3)
    for _ in range(50):
        weights = {v["name"]: rng.uniform(-10, 10) for v in VARIABLES}
        model = parse_model({"variables": VARIABLES, "intercept": 1.0, "weights": weights})
        values = {"size": float(rng.randint(1, 9)), "rooms": 3.0, "income": rng.uniform(0, 1e5)}
        expected = 1.0 + sum(weights[k] * values[k] for k in values)
        assert score(model, values).score == pytest.approx(expected)


def test_a_formula_model_runs_cel():
    model = parse_model(
        {"variables": VARIABLES, "formula": "size > 3.0 ? rooms * 2.0 : income / 1000.0"}
    )
    assert not model.linear
    assert score(model, {"size": 5.0, "rooms": 3.0, "income": 0.0}).score == 6.0
    assert score(model, {"size": 1.0, "rooms": 3.0, "income": 2500.0}).score == 2.5


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("size +", "syntax error"),
        ('size + double(open("/etc/passwd"))', "'open' is not allowed"),
        ('__import__("os")', "is not allowed"),
        ("size * 2", "does not evaluate"),  # CEL does not mix int and double
        ("wealth * 2.0", "unknown variable 'wealth'"),
        ("size > 2.0", "true/false where a number is expected"),
        ('size > 1.0 ? "a" : "b"', "gives str"),
        ('matches("x", ".*") ? 1.0 : 0.0', "'matches' is not allowed"),
        ("x" * 2001, "maxLength 2000"),
    ],
)
def test_formulas_outside_the_sandbox_are_refused(formula: str, expected: str):
    ((path, message),) = refusal({"variables": VARIABLES, "formula": formula})
    assert path == "$.formula" and expected in message
    assert "xxxxxxxx" not in message  # the refusal never echoes the expression back


def test_an_error_names_line_and_column():
    with pytest.raises(ExpressionError) as caught:
        compile_expression("size > 1.0 &&\n  (rooms <", "condition", {"size": 1.0, "rooms": 1.0})
    assert caught.value.where == "condition" and caught.value.line == 2
    assert caught.value.column is not None and caught.value.column > 1
    with pytest.raises(ExpressionError) as caught:
        compile_expression("size + wealth", "formula", {"size": 1.0})
    assert (caught.value.line, caught.value.column) == (1, 8)


def test_comprehension_variables_are_not_taken_for_undeclared_ones():
    expression = compile_expression(
        "[size, rooms].exists(v, v > 3.0)", "condition", {"size": 1.0, "rooms": 1.0}, result=bool
    )
    assert expression.variables == {"size", "rooms"}
    assert expression.evaluate({"size": 1.0, "rooms": 4.0}) is True


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"variables": VARIABLES}, "$"),  # neither weights nor formula
        ({**LINEAR, "weights": {"wealth": 1}}, "$.weights.wealth"),
        ({**LINEAR, "variables": [*VARIABLES, VARIABLES[0]]}, "$.variables[3].name"),
        ({**LINEAR, "variables": [{"name": "score", "source": "members"}]}, "$.variables[0].name"),
        (
            {**LINEAR, "variables": [{"name": "x", "source": "tax_income"}]},
            "$.variables[0].period",
        ),
        (
            {**LINEAR, "variables": [{"name": "x", "source": "members", "aggregate": "sum"}]},
            "$.variables[0]",
        ),
        ({**LINEAR, "valid_from": "2026-05-01", "valid_to": "2026-01-01"}, "$.valid_to"),
        ({**LINEAR, "extra": 1}, "$"),
    ],
)
def test_malformed_models_are_refused_at_their_path(document: dict, path: str):
    assert path in [p for p, _ in refusal(document)]


def test_facts_become_numbers_one_way():
    mapping = {"tin": 1.0}
    assert as_number(3, mapping) == 3.0 and as_number(2.5, mapping) == 2.5
    assert as_number(True, mapping) == 1.0 and as_number(False, mapping) == 0.0
    assert as_number("tin", mapping) == 1.0
    assert as_number("straw", mapping) is None and as_number(None, mapping) is None
    assert as_number([1], mapping) is None


def test_eligibility_threshold_condition_and_reasons():
    model = parse_model(LINEAR)
    rule = parse_rule(
        {
            "model_code": "pmt",
            "threshold": {"max_score": 10.0},
            "condition": 'size >= 3.0 && area.startsWith("R01")',
        },
        model,
    )
    inputs = {"size": 4.0, "rooms": 2.0, "income": 0.0}
    assert decide(rule, 9.5, inputs, "R01-D02").eligible
    poor_elsewhere = decide(rule, 9.5, inputs, "R02")
    assert not poor_elsewhere.eligible
    assert poor_elsewhere.reasons == [
        {"check": "max_score", "passed": True, "limit": 10.0},
        {"check": "condition", "passed": False},
    ]
    assert not decide(rule, 10.5, inputs, "R01").eligible
    unscorable = decide(rule, None, {**inputs, "income": None}, "R01")
    assert unscorable.reasons == [{"check": "scorable", "passed": False, "missing": ["income"]}]


def test_a_rule_needs_its_model_and_a_boolean_condition():
    model = parse_model(LINEAR)
    with pytest.raises(InvalidRecord, match="no scoring model"):
        parse_rule({"model_code": "pmt"}, None)
    with pytest.raises(InvalidRecord, match="not true/false"):
        parse_rule({"model_code": "pmt", "condition": "score + 1.0"}, model)
    with pytest.raises(InvalidRecord, match="unknown variable 'age'"):
        parse_rule({"model_code": "pmt", "condition": "age < 5.0"}, model)


def test_eligibility_events_go_to_their_program_only():
    data = {"program_code": "cct", "household_id": "x"}
    assert program_matches("cct", "household.eligibility_changed", data)
    assert not program_matches("school-meals", "household.eligibility_changed", data)
    assert not program_matches("cct", "household.eligibility_changed", {})
    assert program_matches("school-meals", "household.updated", data)


def test_the_openapi_fragment_documents_the_schemas_the_server_checks():
    fragment = Path(__file__).parents[2] / "hub/api/specs/scoring.json"
    schemas = json.loads(fragment.read_text())["components"]["schemas"]
    assert schemas["ScoringModelDefinition"] == json.loads(json.dumps(MODEL_SCHEMA))
    assert schemas["EligibilityRuleDefinition"] == json.loads(json.dumps(RULE_SCHEMA))
