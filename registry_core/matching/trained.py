"""A Fellegi-Sunter model learnt from the data: m, u, the prior and name frequencies.

The arithmetic is splink's, term for term, so that a model exported to splink scores every pair
with the same match weight (see :mod:`registry_core.matching.splink_format`):

- a level's weight is ``log2(m / u)`` (each clamped below at 1e-300), the null level's is 0;
- an exact name agreement is adjusted by the name's frequency: ``w * (log2(u_exact) -
  log2(max(tf_a, tf_b, tf_min)))``, so sharing a rare name weighs more than sharing a common
  one, and a name the model has never seen is not adjusted;
- the match weight is ``log2(lambda / (1 - lambda))`` plus all of these, and the match
  probability is ``2^w / (1 + 2^w)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_core.matching.levels import COMPARISONS, ComparisonSpec, comparison_vector
from registry_core.matching.normalise import PersonRecord

_CLAMP = 1e-300

#: Record attribute holding each term-frequency column's value.
TF_ATTRIBUTES: dict[str, str] = {"given_name": "given", "family_name": "family"}


@dataclass(frozen=True)
class TrainedModel:
    """Parameters of one model, aligned with :data:`registry_core.matching.levels.COMPARISONS`.

    ``m`` and ``u`` hold one row per comparison and one probability per level, the null level
    included (its value is unused: a missing value carries no evidence). ``tf`` maps a
    term-frequency column to ``{value: share of records with it}``. ``threshold`` is the match
    probability from which a pair is a match; ``review_threshold`` where review starts.
    """

    m: tuple[tuple[float, ...], ...]
    u: tuple[tuple[float, ...], ...]
    probability_two_random_records_match: float
    tf: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    tf_adjustment_weight: float = 1.0
    tf_minimum_u_value: float = 0.0
    threshold: float = 0.5
    review_threshold: float = 0.1
    comparisons: tuple[ComparisonSpec, ...] = COMPARISONS

    def __post_init__(self) -> None:
        for spec, m_row, u_row in zip(self.comparisons, self.m, self.u, strict=True):
            if len(m_row) != len(spec.levels) or len(u_row) != len(spec.levels):
                raise ValueError(f"comparison {spec.name}: expected {len(spec.levels)} levels")
        if not 0 < self.probability_two_random_records_match < 1:
            raise ValueError("probability_two_random_records_match must be in (0, 1)")

    # -- weights ------------------------------------------------------------------------------

    def level_weights(self) -> tuple[tuple[float, ...], ...]:
        """``log2(m / u)`` per level, 0 for null levels (splink's clamping)."""
        table = []
        for spec, m_row, u_row in zip(self.comparisons, self.m, self.u, strict=True):
            table.append(
                tuple(
                    0.0 if level.is_null else math.log2(max(m, _CLAMP) / max(u, _CLAMP))
                    for level, m, u in zip(spec.levels, m_row, u_row, strict=True)
                )
            )
        return tuple(table)

    def prior_weight(self) -> float:
        p = self.probability_two_random_records_match
        return math.log2(p / (1 - p))

    def scorer(self) -> PairScorer:
        return PairScorer(self)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the model as splink settings JSON (name frequencies in a side file).

        See :func:`registry_core.matching.splink_format.to_splink_settings`.
        """
        from registry_core.matching.splink_format import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        from registry_core.matching.splink_format import load_model

        model: TrainedModel = load_model(path)
        return model

    def summary(self) -> dict[str, Any]:
        """Weights per level in bits, for logs and docs (no personal data)."""
        return {
            "probability_two_random_records_match": self.probability_two_random_records_match,
            "comparisons": {
                spec.name: {
                    level.label: round(weight, 2)
                    for level, weight in zip(spec.levels, row, strict=True)
                    if not level.is_null
                }
                for spec, row in zip(self.comparisons, self.level_weights(), strict=True)
            },
        }

    def to_json(self) -> str:
        from registry_core.matching.splink_format import to_splink_settings

        return json.dumps(to_splink_settings(self), indent=2)


class PairScorer:
    """Match weights of pairs under one model; weights and tf tables looked up once."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model
        self._weights = model.level_weights()
        self._prior = model.prior_weight()
        # (comparison index, level index) -> (record attribute, tf table, log2 u_exact)
        self._tf: dict[tuple[int, int], tuple[str, Mapping[str, float], float]] = {}
        for ci, spec in enumerate(model.comparisons):
            for li, level in enumerate(spec.levels):
                column = level.tf_column
                if column is None or model.tf_adjustment_weight == 0:
                    continue
                table = model.tf.get(column)
                if table is None:
                    continue
                u_exact = model.u[ci][li]
                self._tf[(ci, li)] = (TF_ATTRIBUTES[column], table, math.log2(u_exact))

    def weight(self, a: PersonRecord, b: PersonRecord, vector: Sequence[int]) -> float:
        """The match weight (bits, prior included) of a pair with comparison levels ``vector``."""
        total = self._prior
        for row, level in zip(self._weights, vector, strict=True):
            total += row[level]
        for (ci, li), (attribute, table, log2_u) in self._tf.items():
            if vector[ci] != li:
                continue
            found = [
                share
                for share in (table.get(getattr(a, attribute)), table.get(getattr(b, attribute)))
                if share is not None
            ]
            if not found:
                continue  # splink: coalesce(tf_l, tf_r) is null -> no adjustment
            tf = max(*found, self.model.tf_minimum_u_value)
            total += self.model.tf_adjustment_weight * (log2_u - math.log2(tf))
        return total

    def match_weight(self, a: PersonRecord, b: PersonRecord) -> float:
        return self.weight(a, b, comparison_vector(a, b))

    @staticmethod
    def probability(weight: float) -> float:
        """``2^w / (1 + 2^w)``, computed without overflow."""
        if weight > 0:
            return 1.0 / (1.0 + math.pow(2.0, -weight))
        bayes = math.pow(2.0, weight)
        return bayes / (1.0 + bayes)
