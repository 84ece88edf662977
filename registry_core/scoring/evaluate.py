"""A model's score from its variables' values, in Python: the reference the SQL must match.

Used for one household at a time (the incremental re-score after an event), for every
household of a formula model (CEL cannot run inside the database), and by the tests that hold
the set-based SQL to the same answers. The rules — how a fact becomes a number, what a missing
value becomes — live here once; ``sql.py`` writes the same rules in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry_core.scoring.definitions import ModelDefinition, RuleDefinition, Variable


def as_number(value: Any, value_map: Mapping[str, float]) -> float | None:
    """A fact's JSON value as a number: numbers as they are, true/false as 1/0, strings
    through ``value_map`` (unmapped: None, i.e. missing), anything else None."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return value_map.get(value)
    return None


@dataclass(frozen=True)
class ScoreResult:
    """One household's score: None when not scorable (``missing`` names why)."""

    score: float | None
    inputs: dict[str, float | None]
    contributions: dict[str, float] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def scorable(self) -> bool:
        return self.score is not None


def resolve(variable: Variable, value: float | None) -> float | None:
    """The value after the variable's missing-value rule (None: the household is not
    scorable by this variable)."""
    if value is not None:
        return float(value)
    return variable.missing.value if variable.missing.rule == "default" else None


def score(model: ModelDefinition, raw: Mapping[str, float | None]) -> ScoreResult:
    """Score one household from its raw variable values (``None``: missing)."""
    inputs = {v.name: resolve(v, raw.get(v.name)) for v in model.variables}
    missing = tuple(name for name, value in inputs.items() if value is None)
    if missing:
        return ScoreResult(None, inputs, {}, missing)
    values = {k: float(v) for k, v in inputs.items() if v is not None}
    if model.weights is not None:
        contributions = {name: weight * values[name] for name, weight in model.weights.items()}
        total = model.intercept
        for name in model.names():  # the SQL's order of additions: declared order
            if name in contributions:
                total += contributions[name]
        return ScoreResult(total, inputs, contributions)
    assert model.formula is not None
    return ScoreResult(float(model.formula.evaluate(values)), inputs)


@dataclass(frozen=True)
class Decision:
    """A household's eligibility for one program and the reasons, in the rule's order."""

    eligible: bool
    reasons: list[dict[str, Any]]


def decide(
    rule: RuleDefinition, result_score: float | None, inputs: Mapping[str, Any], area: str
) -> Decision:
    """Threshold and condition (the quota is applied over all households, ``eligibility``)."""
    reasons: list[dict[str, Any]] = []
    if result_score is None:
        missing = sorted(k for k, v in inputs.items() if v is None)
        reasons.append({"check": "scorable", "passed": False, "missing": missing})
        return Decision(False, reasons)
    passed = True
    if rule.max_score is not None:
        ok = result_score <= rule.max_score
        reasons.append({"check": "max_score", "passed": ok, "limit": rule.max_score})
        passed = passed and ok
    if rule.min_score is not None:
        ok = result_score >= rule.min_score
        reasons.append({"check": "min_score", "passed": ok, "limit": rule.min_score})
        passed = passed and ok
    if rule.condition is not None:
        values: dict[str, Any] = {k: float(v) for k, v in inputs.items() if v is not None}
        values.update(score=float(result_score), area=area or "")
        try:
            ok = bool(rule.condition.evaluate(values)) is True
            reasons.append({"check": "condition", "passed": ok})
        except Exception as exc:
            ok = False
            reasons.append({"check": "condition", "passed": False, "error": str(exc)[:200]})
        passed = passed and ok
    return Decision(passed, reasons)
