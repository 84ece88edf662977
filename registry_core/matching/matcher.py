"""The matcher: blocking + comparison + Fellegi-Sunter score + a three-way decision.

Decisions are precision first. A pair is an automatic ``match`` only when its score reaches the
upper threshold; between the thresholds it is ``review`` (a person decides); below, ``no_match``.
On the ingest path a match must also be unambiguous: two strong candidates for one incoming
record means the registry itself may hold a duplicate, and merging into either would be a guess,
so that goes to review too.

The score is a probability-like number in [0, 1]: the logistic of the summed weights (bits)
plus the prior log-odds that a pair sharing a block is the same person. It orders pairs exactly
as the weights do; the prior only moves where 0.5 falls, so thresholds read as confidence.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from registry_core.matching.blocking import blocking_keys, candidate_pairs
from registry_core.matching.compare import COMPARED_FIELDS, Comparison, compare
from registry_core.matching.normalise import PersonRecord
from registry_core.matching.scoring import Model, Table, estimate_u, name_frequencies

_NATIONAL_ID = COMPARED_FIELDS.index("national_id")
_GIVEN = COMPARED_FIELDS.index("given_name")


class Outcome(enum.StrEnum):
    MATCH = "match"
    REVIEW = "review"
    NO_MATCH = "no_match"


@dataclass(frozen=True)
class MatcherConfig:
    """Tunable knobs; the defaults were chosen on FEBRL 1 and 2 (see bench/dedup.py).

    ``match_threshold`` / ``review_threshold``: score bounds of the three outcomes.
    ``prior_log2_odds``: log2 odds that a blocked candidate pair is a match; shifts the score.
    ``swap_penalty_bits``: evidence taken off when names only agree given<->family swapped,
    because a swap is rarer than a straight agreement.
    ``max_block_size``: blocks larger than this are not expanded into pairs.
    ``estimate_u``: measure u from the batch itself (needs ``min_records_to_fit`` records).
    ``cluster_max_size`` / ``cluster_min_bits``: transitive closure of batch matches (see
    :meth:`Matcher.pairs`); 0 turns it off.
    ``name_conflict_extra_bits``: when no name of one record agrees even loosely with a name of
    the other, an automatic match needs this much more evidence than the match threshold
    (10 bits: the other fields must be ~1000 times likelier again). Below that the pair goes to
    review. Twins, neighbours and recycled numbers share dates, addresses and identifiers;
    names are what tells them apart.
    ``tf_max_gain_bits``: the most a rare name's exact agreement may weigh above the average.
    ``distinct_given_needs_identifier``: two records whose given names differ (beyond typos and
    nicknames) are merged automatically only when an identifier agrees. This is the twin rule:
    twins share family name, birth date and address, so nothing else can tell them apart. It
    costs recall on data where a given name is sometimes replaced outright (FEBRL does that),
    which then goes to review instead.
    """

    match_threshold: float = 0.99
    review_threshold: float = 0.3
    prior_log2_odds: float = -10.0
    swap_penalty_bits: float = 1.0
    max_block_size: int = 50
    estimate_u: bool = True
    min_records_to_fit: int = 200
    u_samples: int = 20_000
    seed: int = 0
    cluster_max_size: int = 10
    cluster_min_bits: float = 0.0
    name_conflict_extra_bits: float = 10.0
    distinct_given_needs_identifier: bool = True
    tf_max_gain_bits: float = 2.0


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """Two record ids (``id_a < id_b``), their score and the decision it leads to.

    ``via_cluster`` marks a pair judged the same person because both are matched to the same
    others (transitive closure); its ``score`` is then the weakest direct match in the cluster.
    """

    id_a: str
    id_b: str
    score: float
    outcome: Outcome
    via_cluster: bool = False


@dataclass(frozen=True)
class MatchDecision:
    """What the ingest path should do with one incoming record.

    ``person_id`` is the existing record to merge into (set only for ``match``); ``candidates``
    lists the existing records worth showing a reviewer, best first, as (id, score).
    """

    outcome: Outcome
    person_id: str | None
    score: float
    reason: str
    candidates: tuple[tuple[str, float], ...] = field(default_factory=tuple)


class PersonMatcher(Protocol):
    """What the ingest path needs of a matcher: one decision for one incoming record.

    Both :class:`Matcher` (fixed priors, rules tuned on FEBRL 1 and 2) and
    :class:`registry_core.matching.trained_matcher.TrainedMatcher` (a model learnt from the
    registry's own records) provide it.
    """

    def match_one(
        self, candidate: PersonRecord, existing: Sequence[PersonRecord]
    ) -> MatchDecision: ...


class PairJudge(Protocol):
    """What a registry-wide pass over stored blocks needs of a matcher: a decision per pair
    and the largest block worth expanding. Both matchers provide it."""

    @property
    def max_block_size(self) -> int: ...

    def judge(self, a: PersonRecord, b: PersonRecord) -> tuple[float, Outcome]: ...


class Matcher:
    """Stateless apart from its model; safe to share between threads."""

    def __init__(self, config: MatcherConfig | None = None, model: Model | None = None) -> None:
        self.config = config or MatcherConfig()
        self.model = model or Model()
        self._weights: Table = self.model.weights()
        threshold = min(max(self.config.match_threshold, 1e-12), 1 - 1e-12)
        match_bits = math.log2(threshold / (1 - threshold)) - self.config.prior_log2_odds
        self._conflict_bits = match_bits + self.config.name_conflict_extra_bits

    # -- building blocks ---------------------------------------------------------------------

    @staticmethod
    def blocking_keys(record: PersonRecord) -> list[str]:
        """Keys under which the registry should index ``record`` (see :mod:`.blocking`)."""
        return blocking_keys(record)

    def fitted(self, records: Sequence[PersonRecord]) -> Matcher:
        """A matcher whose u probabilities are measured on ``records`` (see :func:`estimate_u`)."""
        u = estimate_u(
            records, samples=self.config.u_samples, seed=self.config.seed, prior=self.model.u
        )
        return Matcher(
            self.config,
            replace(
                self.model,
                u=u,
                given_freq=name_frequencies([r.given for r in records]),
                family_freq=name_frequencies([r.family for r in records]),
            ),
        )

    def weight(self, comparison: Comparison, a: PersonRecord | None = None) -> float:
        """Summed evidence in bits for one comparison of ``a`` with another record.

        With ``a`` given and name frequencies measured (batch), an exact name agreement weighs
        by how common that name is (term frequency): sharing a rare name is stronger evidence
        than sharing the commonest one. The adjustment is bounded: a rare name gains at most
        ``tf_max_gain_bits`` over the average, a common one may lose more (precision first).
        """
        total = 0.0
        for row, level in zip(self._weights, comparison.levels, strict=True):
            if level is not None:
                total += row[level]
        if a is not None:
            levels = comparison.levels
            if levels[0] == 0 and self.model.given_freq:
                total += self._tf_adjust(0, self.model.given_freq.get(a.given))
            if levels[1] == 0 and self.model.family_freq:
                total += self._tf_adjust(1, self.model.family_freq.get(a.family))
        if comparison.swapped:
            total -= self.config.swap_penalty_bits
        return total

    def _tf_adjust(self, field: int, share: float | None) -> float:
        """Bits to add to the average weight of exact agreement for a name with this share."""
        if not share:
            return 0.0
        average_u = self.model.u[field][0]
        u = max(share, average_u / 2.0**self.config.tf_max_gain_bits)
        return math.log2(average_u / u)

    def score(self, a: PersonRecord, b: PersonRecord) -> float:
        """Match score in [0, 1] for two records."""
        return self._to_score(self.weight(compare(a, b), a))

    def outcome(
        self, score: float, comparison: Comparison | None = None, bits: float | None = None
    ) -> Outcome:
        """The decision for a score (and its comparison, which may raise the match bar)."""
        if score >= self.config.match_threshold:
            if comparison is not None and self._names_conflict(comparison, bits):
                return Outcome.REVIEW
            return Outcome.MATCH
        if score >= self.config.review_threshold:
            return Outcome.REVIEW
        return Outcome.NO_MATCH

    @property
    def max_block_size(self) -> int:
        """Blocks larger than this are not expanded into pairs (as ``TrainedMatcher``'s)."""
        return self.config.max_block_size

    def judge(self, a: PersonRecord, b: PersonRecord) -> tuple[float, Outcome]:
        """Score and decision for one pair of records."""
        comparison = compare(a, b)
        bits = self.weight(comparison, a)
        score = self._to_score(bits)
        return score, self.outcome(score, comparison, bits)

    def _names_conflict(self, comparison: Comparison, bits: float | None = None) -> bool:
        """True when the names forbid an automatic match, whatever the score.

        Two cases: (1) no name agrees even loosely in any field, and the other fields are not
        overwhelming (``name_conflict_extra_bits``); (2) both records carry given names that
        differ and no identifier agrees. Case 2 is the twin or sibling in one household: same
        family name, birth date, address and place, which outweigh one given name in the sum,
        but are two people. Only an identifier can overrule a different given name.
        """
        if not comparison.names_support:
            if bits is None:
                bits = self.weight(comparison)
            if bits < self._conflict_bits:
                return True
        levels = comparison.levels
        return (
            self.config.distinct_given_needs_identifier
            and levels[_GIVEN] == 3
            and levels[_NATIONAL_ID] not in (0, 1)
        )

    def _to_score(self, bits: float) -> float:
        z = bits + self.config.prior_log2_odds
        if z > 60:
            return 1.0
        if z < -60:
            return 0.0
        return 1.0 / (1.0 + math.pow(2.0, -z))

    # -- batch --------------------------------------------------------------------------------

    def pairs(
        self, records: Sequence[PersonRecord], *, include_review: bool = True
    ) -> list[ScoredPair]:
        """Every pair judged a match (and, with ``include_review``, every possible match).

        Steps: measure u on the batch when configured and the batch is large enough; score each
        blocked candidate pair; then close clusters: records joined by direct matches into a
        group of at most ``cluster_max_size`` are all the same person, so each pair inside the
        group that was not matched directly becomes a match too, unless its own comparison
        speaks against it (weight below ``cluster_min_bits``), which guards against one wrong
        link chaining two different people together. Ids are ordered within each pair; the
        list is sorted by (id_a, id_b).
        """
        matcher = self
        if self.config.estimate_u and len(records) >= self.config.min_records_to_fit:
            matcher = self.fitted(records)
        floor = self.config.review_threshold if include_review else self.config.match_threshold
        found: dict[tuple[str, str], ScoredPair] = {}
        for i, j in candidate_pairs(records, max_block_size=self.config.max_block_size):
            a, b = records[i], records[j]
            comparison = compare(a, b)
            bits = matcher.weight(comparison, a)
            score = matcher._to_score(bits)
            if score >= floor:
                outcome = matcher.outcome(score, comparison, bits)
                if outcome is Outcome.REVIEW and not include_review:
                    continue
                key = (a.id, b.id) if a.id < b.id else (b.id, a.id)
                found[key] = ScoredPair(key[0], key[1], score, outcome)
        if self.config.cluster_max_size > 2:
            matcher._close_clusters(records, found)
        return [found[key] for key in sorted(found)]

    def _close_clusters(
        self, records: Sequence[PersonRecord], found: dict[tuple[str, str], ScoredPair]
    ) -> None:
        """Add the implied pairs of small match clusters to ``found`` (see :meth:`pairs`)."""
        parent: dict[str, str] = {}

        def root(x: str) -> str:
            while parent.get(x, x) != x:
                parent[x] = parent.get(parent[x], parent[x])
                x = parent[x]
            return x

        weakest: dict[str, float] = {}
        direct = [p for p in found.values() if p.outcome is Outcome.MATCH]
        for pair in direct:
            ra, rb = root(pair.id_a), root(pair.id_b)
            if ra != rb:
                parent[ra] = rb
        members: dict[str, list[str]] = {}
        for pair in direct:
            top = root(pair.id_a)
            weakest[top] = min(weakest.get(top, 1.0), pair.score)
        for record_id in parent.keys() | {r for p in direct for r in (p.id_a, p.id_b)}:
            members.setdefault(root(record_id), []).append(record_id)
        by_id = {r.id: r for r in records}
        for top, ids in members.items():
            if not 2 < len(ids) <= self.config.cluster_max_size:
                continue
            ids.sort()
            for x, id_a in enumerate(ids):
                for id_b in ids[x + 1 :]:
                    known = found.get((id_a, id_b))
                    if known is not None and known.outcome is Outcome.MATCH:
                        continue
                    comparison = compare(by_id[id_a], by_id[id_b])
                    bits = self.weight(comparison, by_id[id_a])
                    if bits >= self.config.cluster_min_bits and not self._names_conflict(
                        comparison, bits
                    ):
                        found[(id_a, id_b)] = ScoredPair(
                            id_a, id_b, weakest[top], Outcome.MATCH, via_cluster=True
                        )

    # -- ingest path --------------------------------------------------------------------------

    def match_one(self, candidate: PersonRecord, existing: Sequence[PersonRecord]) -> MatchDecision:
        """Decide what one incoming record is, given the registry's candidate block.

        Order: an exact national identifier first (one holder and no strong contradiction in the
        other fields -> match), then the probabilistic score (one clear winner -> match; two or
        more plausible -> review).
        """
        scored: list[tuple[float, PersonRecord, Comparison]] = []
        for other in existing:
            if other.id == candidate.id:
                continue
            comparison = compare(candidate, other)
            scored.append((self._to_score(self.weight(comparison, candidate)), other, comparison))
        scored.sort(key=lambda item: item[0], reverse=True)
        shown = tuple(
            (other.id, round(score, 4))
            for score, other, _ in scored
            if score >= self.config.review_threshold
        )
        if not scored:
            return MatchDecision(Outcome.NO_MATCH, None, 0.0, "no candidates")

        id_hits = [item for item in scored if item[2].levels[_NATIONAL_ID] == 0]
        if len(id_hits) > 1:
            return MatchDecision(
                Outcome.REVIEW,
                None,
                id_hits[0][0],
                "identifier held by several existing records",
                tuple((o.id, round(s, 4)) for s, o, _ in id_hits),
            )
        if len(id_hits) == 1:
            score, other, _ = id_hits[0]
            if score >= self.config.review_threshold:
                return MatchDecision(
                    Outcome.MATCH, other.id, score, "identifier match", ((other.id, score),)
                )
            return MatchDecision(
                Outcome.REVIEW,
                None,
                score,
                "identifier agrees but other fields contradict it",
                ((other.id, round(score, 4)),),
            )

        best_score, best, best_comparison = scored[0]
        second = scored[1][0] if len(scored) > 1 else 0.0
        if best_score >= self.config.match_threshold and self._names_conflict(
            best_comparison, self.weight(best_comparison, candidate)
        ):
            return MatchDecision(
                Outcome.REVIEW, None, best_score, "strong match but the names disagree", shown
            )
        if best_score >= self.config.match_threshold:
            if second >= self.config.review_threshold:
                return MatchDecision(
                    Outcome.REVIEW, None, best_score, "ambiguous: several plausible matches", shown
                )
            return MatchDecision(Outcome.MATCH, best.id, best_score, "probabilistic match", shown)
        if best_score >= self.config.review_threshold:
            return MatchDecision(Outcome.REVIEW, None, best_score, "possible match", shown)
        return MatchDecision(Outcome.NO_MATCH, None, best_score, "no candidate close enough")
