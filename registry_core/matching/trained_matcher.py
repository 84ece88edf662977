"""The matcher driven by a learnt model: same blocking, splink's scoring, three-way decision.

It offers what :class:`registry_core.matching.Matcher` offers (``pairs`` for a batch,
``match_one`` for the ingest path, ``blocking_keys``), so callers can take either. The score of
a pair is splink's match probability; a pair is a match from ``model.threshold`` (0.5 unless
the model says otherwise: the point where the pair is likelier the same person than not) and
goes to review from ``model.review_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry_core.matching.blocking import blocking_keys, candidate_pairs
from registry_core.matching.levels import COMPARISONS, comparison_vector
from registry_core.matching.matcher import MatchDecision, Outcome, ScoredPair
from registry_core.matching.normalise import PersonRecord
from registry_core.matching.trained import PairScorer, TrainedModel
from registry_core.matching.training import TrainingOptions, train

_ID = [spec.name for spec in COMPARISONS].index("national_id")
_ID_EXACT = 1


class TrainedMatcher:
    """Stateless apart from its model; safe to share between threads."""

    def __init__(self, model: TrainedModel, *, max_block_size: int = 50) -> None:
        self.model = model
        self.max_block_size = max_block_size
        self._scorer = PairScorer(model)

    @classmethod
    def trained_on(
        cls, records: Sequence[PersonRecord], options: TrainingOptions | None = None
    ) -> TrainedMatcher:
        """A matcher whose model is learnt from ``records`` (see :func:`train`)."""
        options = options or TrainingOptions()
        return cls(train(records, options), max_block_size=options.max_block_size)

    @staticmethod
    def blocking_keys(record: PersonRecord) -> list[str]:
        return blocking_keys(record)

    def judge(self, a: PersonRecord, b: PersonRecord) -> tuple[float, Outcome]:
        """Match probability and decision for one pair."""
        score = self.score(a, b)
        return score, self._outcome(score)

    def score(self, a: PersonRecord, b: PersonRecord) -> float:
        return self._scorer.probability(self._scorer.match_weight(a, b))

    def match_weight(self, a: PersonRecord, b: PersonRecord) -> float:
        """splink's ``match_weight`` of the pair (bits, prior included)."""
        return self._scorer.match_weight(a, b)

    def _outcome(self, score: float) -> Outcome:
        if score >= self.model.threshold:
            return Outcome.MATCH
        if score >= self.model.review_threshold:
            return Outcome.REVIEW
        return Outcome.NO_MATCH

    def pairs(
        self, records: Sequence[PersonRecord], *, include_review: bool = True
    ) -> list[ScoredPair]:
        """Every blocked pair at or above the match (or, with ``include_review``, review)
        probability, ids ordered within a pair, sorted by (id_a, id_b)."""
        floor = self.model.review_threshold if include_review else self.model.threshold
        scorer = self._scorer
        found: list[ScoredPair] = []
        for i, j in candidate_pairs(records, max_block_size=self.max_block_size):
            a, b = records[i], records[j]
            score = scorer.probability(scorer.weight(a, b, comparison_vector(a, b)))
            if score >= floor:
                id_a, id_b = (a.id, b.id) if a.id < b.id else (b.id, a.id)
                found.append(ScoredPair(id_a, id_b, score, self._outcome(score)))
        found.sort(key=lambda p: (p.id_a, p.id_b))
        return found

    def match_one(self, candidate: PersonRecord, existing: Sequence[PersonRecord]) -> MatchDecision:
        """Decide what one incoming record is, given the registry's candidate block.

        A match must be unambiguous: two candidates above the review threshold (or two holders
        of the same identifier) go to review, since the registry itself may hold a duplicate.
        """
        scored: list[tuple[float, PersonRecord, tuple[int, ...]]] = []
        for other in existing:
            if other.id == candidate.id:
                continue
            vector = comparison_vector(candidate, other)
            weight = self._scorer.weight(candidate, other, vector)
            scored.append((self._scorer.probability(weight), other, vector))
        if not scored:
            return MatchDecision(Outcome.NO_MATCH, None, 0.0, "no candidates")
        scored.sort(key=lambda item: item[0], reverse=True)
        shown = tuple(
            (other.id, round(score, 4))
            for score, other, _ in scored
            if score >= self.model.review_threshold
        )
        id_hits = [item for item in scored if item[2][_ID] == _ID_EXACT]
        if len(id_hits) > 1:
            return MatchDecision(
                Outcome.REVIEW,
                None,
                id_hits[0][0],
                "identifier held by several existing records",
                tuple((o.id, round(s, 4)) for s, o, _ in id_hits),
            )
        best_score, best, _ = scored[0]
        second = scored[1][0] if len(scored) > 1 else 0.0
        if best_score >= self.model.threshold:
            if second >= self.model.review_threshold:
                return MatchDecision(
                    Outcome.REVIEW, None, best_score, "ambiguous: several plausible matches", shown
                )
            return MatchDecision(Outcome.MATCH, best.id, best_score, "probabilistic match", shown)
        if best_score >= self.model.review_threshold:
            return MatchDecision(Outcome.REVIEW, None, best_score, "possible match", shown)
        return MatchDecision(Outcome.NO_MATCH, None, best_score, "no candidate close enough")
