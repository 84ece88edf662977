"""What an administrator uploads: a scoring model version or a program's eligibility rule.

Both are JSON documents checked here, at upload, in two steps: the shape (JSON Schema: every
violation with its path) and the meaning (names unique, weights only of declared variables,
every CEL expression compiled and checked by ``expressions.compile_expression``). What passes
is turned into the frozen classes below, which the evaluators and the SQL compiler read; a
stored definition is parsed the same way when it is used.

A model's variables come from four sources (``Variable.source``):

- ``household_attribute``: a socio-economic fact of the household (``domain``, ``attribute``,
  ``period``), the largest value when several sources report it;
- ``members``: an aggregate over the current, living members (``count``, ``sum``, ``min``,
  ``max``, ``avg``), optionally only those of an age range or sex, optionally of a fact each
  member has (``domain``/``attribute``: ``count`` then counts members whose value is above 0);
- ``tax_income``: the sum of the household's income facts of one tax ``period``
  (``income.gross_income`` by default, as the tax connector writes them);
- ``gis_layer``: a GIS layer's value for the household's locality (facts of domain
  ``other``, the layer's name, as the GIS connector writes them).

Values become numbers one way everywhere (SQL and Python): a JSON number as it is, true/false
as 1/0, a string through the variable's ``value_map`` (unmapped: missing). A missing value is
either replaced (``{"rule": "default", "value": 0}``) or makes the household not scorable
(``{"rule": "not_scorable"}``, the default: a model should say so when it guesses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator

from registry_core.errors import InvalidRecord
from registry_core.scoring.expressions import Expression, ExpressionError, compile_expression
from standards.validation import Violation, violation_of

SOURCES = ("household_attribute", "members", "tax_income", "gis_layer")
AGGREGATES = ("count", "sum", "min", "max", "avg")
NAME = r"^[a-z][a-z0-9_]{0,47}$"
CODE = r"^[a-z0-9][a-z0-9_-]{1,63}$"
RESERVED_NAMES = frozenset({"score", "area", "intercept"})
SAMPLE_NUMBER = 1.0

_MISSING = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rule"],
    "properties": {
        "rule": {"enum": ["default", "not_scorable"]},
        "value": {"type": "number"},
    },
    "if": {"properties": {"rule": {"const": "default"}}},
    "then": {"required": ["rule", "value"]},
}
_VARIABLE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "source"],
    "properties": {
        "name": {"type": "string", "pattern": NAME},
        "description": {"type": "string", "maxLength": 500},
        "source": {"enum": list(SOURCES)},
        "domain": {"type": "string", "minLength": 1, "maxLength": 32},
        "attribute": {"type": "string", "minLength": 1, "maxLength": 64},
        "period": {"type": "string", "maxLength": 16},
        "layer": {"type": "string", "minLength": 1, "maxLength": 64},
        "aggregate": {"enum": list(AGGREGATES)},
        "age_min": {"type": "integer", "minimum": 0, "maximum": 150},
        "age_max": {"type": "integer", "minimum": 0, "maximum": 150},
        "sex": {"type": "string", "maxLength": 16},
        "source_systems": {
            "type": "array",
            "items": {"type": "string", "maxLength": 64},
            "maxItems": 20,
        },
        "value_map": {
            "type": "object",
            "maxProperties": 50,
            "additionalProperties": {"type": "number"},
        },
        "missing": _MISSING,
    },
    "allOf": [
        {
            "if": {"properties": {"source": {"const": "household_attribute"}}},
            "then": {"required": ["domain", "attribute"]},
        },
        {
            "if": {"properties": {"source": {"const": "tax_income"}}},
            "then": {"required": ["period"]},
        },
        {
            "if": {"properties": {"source": {"const": "gis_layer"}}},
            "then": {"required": ["layer"]},
        },
    ],
}
MODEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["variables"],
    "properties": {
        "description": {"type": "string", "maxLength": 2000},
        "valid_from": {"type": "string", "format": "date"},
        "valid_to": {"type": ["string", "null"], "format": "date"},
        "variables": {"type": "array", "minItems": 1, "maxItems": 40, "items": _VARIABLE},
        "intercept": {"type": "number"},
        "weights": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 40,
            "additionalProperties": {"type": "number"},
        },
        "formula": {"type": "string", "minLength": 1, "maxLength": 2000},
    },
    "oneOf": [{"required": ["weights"]}, {"required": ["formula"]}],
}
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["model_code"],
    "properties": {
        "description": {"type": "string", "maxLength": 2000},
        "model_code": {"type": "string", "pattern": CODE},
        "threshold": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {"max_score": {"type": "number"}, "min_score": {"type": "number"}},
        },
        "condition": {"type": "string", "minLength": 1, "maxLength": 2000},
        "quota": {
            "type": "object",
            "additionalProperties": False,
            "required": ["max_households"],
            "properties": {
                "max_households": {"type": "integer", "minimum": 0},
                "order": {"enum": ["score_asc", "score_desc"]},
            },
        },
    },
}
_MODEL_VALIDATOR = Draft202012Validator(MODEL_SCHEMA)
_RULE_VALIDATOR = Draft202012Validator(RULE_SCHEMA)


@dataclass(frozen=True)
class Missing:
    """What a missing value becomes: ``default`` (then ``value``) or ``not_scorable``."""

    rule: str = "not_scorable"
    value: float = 0.0


@dataclass(frozen=True)
class Variable:
    """One input of a model; see the module docstring for the sources."""

    name: str
    source: str
    domain: str = ""
    attribute: str = ""
    period: str = ""
    aggregate: str = "count"
    age_min: int | None = None
    age_max: int | None = None
    sex: str | None = None
    source_systems: tuple[str, ...] = ()
    value_map: Mapping[str, float] = field(default_factory=dict)
    missing: Missing = Missing()

    @property
    def fact(self) -> tuple[str, str] | None:
        """(domain, name) of the socio-economic fact it reads, if any."""
        if self.source == "gis_layer":
            return (self.domain or "other", self.attribute)
        if self.source == "tax_income":
            return (self.domain or "income", self.attribute or "gross_income")
        if self.source == "household_attribute" or self.attribute:
            return (self.domain, self.attribute)
        return None


@dataclass(frozen=True)
class ModelDefinition:
    """A parsed, checked model version: linear (``weights``) or a CEL ``formula``."""

    variables: tuple[Variable, ...]
    intercept: float = 0.0
    weights: Mapping[str, float] | None = None
    formula: Expression | None = None
    valid_from: date | None = None
    valid_to: date | None = None

    @property
    def linear(self) -> bool:
        """Linear models re-score set-based in the database; formula models in Python."""
        return self.weights is not None

    def names(self) -> list[str]:
        return [v.name for v in self.variables]


@dataclass(frozen=True)
class RuleDefinition:
    """A parsed, checked eligibility rule version of one program."""

    model_code: str
    max_score: float | None = None
    min_score: float | None = None
    condition: Expression | None = None
    quota: int | None = None
    quota_order: str = "score_asc"


def _schema_errors(validator: Draft202012Validator, document: Any) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidRecord([violation_of(e) for e in errors])


def _refuse(path: str, rule: str, message: str) -> InvalidRecord:
    return InvalidRecord([Violation(path, rule, message)])


def _date(text: Any) -> date | None:
    return date.fromisoformat(text) if isinstance(text, str) else None


def _variable(raw: Mapping[str, Any]) -> Variable:
    missing = raw.get("missing") or {}
    source = raw["source"]
    attribute = raw.get("layer") if source == "gis_layer" else raw.get("attribute")
    return Variable(
        name=raw["name"],
        source=source,
        domain=raw.get("domain", ""),
        attribute=attribute or "",
        period=raw.get("period", ""),
        aggregate=raw.get("aggregate", "count" if source == "members" else "max"),
        age_min=raw.get("age_min"),
        age_max=raw.get("age_max"),
        sex=raw.get("sex"),
        source_systems=tuple(raw.get("source_systems") or ()),
        value_map={str(k): float(v) for k, v in (raw.get("value_map") or {}).items()},
        missing=Missing(missing.get("rule", "not_scorable"), float(missing.get("value", 0.0))),
    )


def parse_model(document: Any) -> ModelDefinition:
    """Check and parse a model version; raises ``InvalidRecord`` with every problem found
    (an ``ExpressionError`` becomes one at ``$.formula`` naming the line and column)."""
    _schema_errors(_MODEL_VALIDATOR, document)
    variables = tuple(_variable(v) for v in document["variables"])
    seen: set[str] = set()
    for index, variable in enumerate(variables):
        where = f"$.variables[{index}]"
        if variable.name in seen or variable.name in RESERVED_NAMES:
            raise _refuse(where + ".name", "unique", f"{variable.name!r} is used twice or reserved")
        seen.add(variable.name)
        if variable.source == "members" and variable.aggregate != "count" and not variable.fact:
            raise _refuse(where, "attribute", f"{variable.aggregate} of members needs an attribute")
        if variable.source == "members" and variable.attribute and not variable.domain:
            raise _refuse(where + ".domain", "required", "a member attribute needs its domain")
        if (
            variable.age_min is not None
            and variable.age_max is not None
            and variable.age_min > variable.age_max
        ):
            raise _refuse(where, "age", "age_min is above age_max")
    valid_from, valid_to = _date(document.get("valid_from")), _date(document.get("valid_to"))
    if valid_from and valid_to and valid_to < valid_from:
        raise _refuse("$.valid_to", "dates", "valid_to is before valid_from")
    weights = document.get("weights")
    if weights is not None:
        unknown = sorted(set(weights) - seen)
        if unknown:
            raise _refuse(
                f"$.weights.{unknown[0]}", "declared", f"{unknown[0]!r} is not a declared variable"
            )
        return ModelDefinition(
            variables,
            float(document.get("intercept", 0.0)),
            weights={k: float(v) for k, v in weights.items()},
            valid_from=valid_from,
            valid_to=valid_to,
        )
    samples = {name: SAMPLE_NUMBER for name in seen}
    try:
        formula = compile_expression(document["formula"], "formula", samples, result=(float, int))
    except ExpressionError as exc:
        raise _refuse("$.formula", "cel", str(exc)) from None
    return ModelDefinition(
        variables,
        float(document.get("intercept", 0.0)),
        formula=formula,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def condition_samples(model: ModelDefinition) -> dict[str, Any]:
    """What a rule's condition may read, with sample values: the model's variables, the
    household's ``score`` and its ``area`` code."""
    samples: dict[str, Any] = {name: SAMPLE_NUMBER for name in model.names()}
    samples.update(score=SAMPLE_NUMBER, area="R01-D01")
    return samples


def parse_rule(document: Any, model: ModelDefinition | None) -> RuleDefinition:
    """Check and parse a rule version against the model it scores with (``model`` None: the
    model code has no version yet, refused)."""
    _schema_errors(_RULE_VALIDATOR, document)
    if model is None:
        raise _refuse(
            "$.model_code",
            "exists",
            f"no scoring model {document['model_code']!r}: upload it first",
        )
    condition = None
    if "condition" in document:
        try:
            condition = compile_expression(
                document["condition"], "condition", condition_samples(model), result=bool
            )
        except ExpressionError as exc:
            raise _refuse("$.condition", "cel", str(exc)) from None
    threshold = document.get("threshold") or {}
    quota = document.get("quota") or {}
    return RuleDefinition(
        model_code=document["model_code"],
        max_score=threshold.get("max_score"),
        min_score=threshold.get("min_score"),
        condition=condition,
        quota=quota.get("max_households"),
        quota_order=quota.get("order", "score_asc"),
    )
