"""Versions, scores and decisions as the API and the CLI show them (JSON-ready dicts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry_core.scoring.explain import ModelVersions, explain
from registry_core.scoring.tables import (
    EligibilityRule,
    HouseholdEligibility,
    HouseholdScore,
    ScoringModel,
)
from standards.timeutil import iso, rfc3339


def model_view(row: ScoringModel) -> dict[str, Any]:
    return {
        "code": row.code,
        "version": row.version,
        "status": row.status,
        "form": "linear" if "weights" in row.definition else "formula",
        "definition": row.definition,
        "valid_from": iso(row.valid_from) if row.valid_from else None,
        "valid_to": iso(row.valid_to) if row.valid_to else None,
        "created_by": row.created_by,
        "created_at": rfc3339(row.created_at),
        "activated_at": rfc3339(row.activated_at) if row.activated_at else None,
    }


def rule_view(row: EligibilityRule) -> dict[str, Any]:
    return {
        "program_code": row.program_code,
        "version": row.version,
        "status": row.status,
        "model_code": row.model_code,
        "definition": row.definition,
        "created_by": row.created_by,
        "created_at": rfc3339(row.created_at),
        "activated_at": rfc3339(row.activated_at) if row.activated_at else None,
    }


def moved_by(now: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    """Each variable's change of contribution since the previous score (largest first)."""
    moves = {
        name: float(now.get(name, 0.0)) - float(before.get(name, 0.0))
        for name in sorted(set(now) | set(before))
    }
    return dict(sorted(((k, v) for k, v in moves.items() if v), key=lambda kv: -abs(kv[1])))


def score_view(row: HouseholdScore, versions: ModelVersions) -> dict[str, Any]:
    explained = explain(row, versions)
    before = explained.previous_contributions
    return {
        "model": row.model_code,
        "model_version": row.model_version,
        "score": row.score,
        "scorable": bool(row.scorable),
        "inputs": explained.inputs,
        "contributions": explained.contributions,
        "previous_score": row.previous_score,
        "previous_model_version": row.previous_model_version,
        "moved_by": moved_by(explained.contributions, before) if before is not None else {},
        "computed_at": rfc3339(row.computed_at),
    }


def eligibility_view(row: HouseholdEligibility) -> dict[str, Any]:
    return {
        "program_code": row.program_code,
        "eligible": bool(row.eligible),
        "rule_version": row.rule_version,
        "model": row.model_code,
        "model_version": row.model_version,
        "score": row.score,
        "reasons": row.reasons,
        "decided_at": rfc3339(row.decided_at),
        "changed_at": rfc3339(row.changed_at),
    }
