"""A score row's named inputs and contributions, derived from its model version.

A model-computed score stores only its variables' values, as numbers in the version's
declared order (``HouseholdScore.input_values``). Names come from the version's definition
and each variable's contribution is its weight times its value, exactly as
``evaluate.score`` computes them; the previous score's contributions come the same way from
``previous_input_values`` and the previous version. Why derived, not stored: writing named
JSON and contributions for every household was half the cost of a full re-score, and the
version's definition never changes, so the derivation always gives what was computed.

A score recorded from outside (no version) has its ``inputs`` as given and no contributions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.scoring.definitions import ModelDefinition
from registry_core.scoring.tables import HouseholdScore, ScoringModel


class ModelVersions:
    """Parsed definitions by (code, version), read once per instance (one request or run)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[tuple[str, int], ModelDefinition | None] = {}

    def get(self, code: str, version: int | None) -> ModelDefinition | None:
        if version is None:
            return None
        key = (code, version)
        if key not in self._known:
            # Imported here: ``active`` imports ``eligibility``, which reads values by name.
            from registry_core.scoring.active import stored_model

            document = self._session.scalar(
                select(ScoringModel.definition).where(
                    ScoringModel.code == code, ScoringModel.version == version
                )
            )
            self._known[key] = stored_model(document) if document is not None else None
        return self._known[key]


@dataclass(frozen=True)
class Explained:
    """What a score came from: ``inputs`` by name, ``contributions`` (weight times value of a
    scorable linear score, else empty) and the previous score's (None: not kept)."""

    inputs: dict[str, Any]
    contributions: dict[str, float]
    previous_contributions: dict[str, float] | None


def named(model: ModelDefinition | None, values: Sequence[Any] | None) -> dict[str, Any]:
    """``values`` (declared order) by variable name; missing ones are None."""
    if model is None or values is None:
        return {}
    listed = list(values)
    return {
        name: (None if index >= len(listed) or listed[index] is None else float(listed[index]))
        for index, name in enumerate(model.names())
    }


def contributions(model: ModelDefinition | None, inputs: Mapping[str, Any]) -> dict[str, float]:
    """Each weighted variable's part of a linear score (``evaluate.score``'s rule): empty for
    a formula model or when a value is missing (the household was not scorable)."""
    if model is None or model.weights is None:
        return {}
    if any(inputs.get(name) is None for name in model.names()):
        return {}
    return {name: weight * float(inputs[name]) for name, weight in model.weights.items()}


def explain(row: HouseholdScore, versions: ModelVersions) -> Explained:
    """The row's inputs and contributions, and the previous score's contributions."""
    if row.model_version is None:
        inputs = dict(row.inputs or {})
        current: dict[str, float] = {}
    else:
        model = versions.get(row.model_code, row.model_version)
        inputs = named(model, row.input_values)
        current = contributions(model, inputs) if row.score is not None else {}
    previous: dict[str, float] | None = None
    if row.previous_input_values is not None:
        before = versions.get(row.model_code, row.previous_model_version)
        previous = (
            contributions(before, named(before, row.previous_input_values))
            if row.previous_score is not None
            else {}
        )
    return Explained(inputs, current, previous)
