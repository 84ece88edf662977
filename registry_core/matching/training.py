"""Learning a :class:`TrainedModel` from unlabelled records, the way splink does.

Three estimates, each from the data being matched (no labels needed):

u, P(level | different people)
    from random pairs, as splink's ``estimate_u_using_random_sampling``: almost every random
    pair is two different people. The "exact" level of a name, date or identifier is a value
    collision, rare enough that sampling measures it poorly, so it is computed exactly from the
    value counts (``sum c(c-1) / n(n-1)``); the other levels share the rest in their sampled
    proportions (with a half-pair pseudo-count, so an unseen level is rare, not impossible).
m, P(level | same person), and the prior
    by expectation maximisation over the blocked candidate pairs, as splink's
    ``estimate_parameters_using_expectation_maximisation``, in splink's two training sessions:
    pairs with the same birth date give m of every other comparison, pairs with the same given
    and family name give m of the birth date (a session leaves out the fields its selection
    biases). The comparison vectors are counted by pattern first, so each EM iteration costs
    the number of distinct patterns (hundreds), not the number of pairs. Unlike splink's
    default, u is re-estimated inside EM for the selected pairs (and then discarded): pairs
    selected by blocking agree on many fields far more often than random pairs do, and holding
    u at the random-pair value would push such non-matches into the match class. The prior is
    the expected number of matches among all candidate pairs (one last EM pass, m held) over
    ``n(n-1)/2`` pairs (blocking is built to miss almost no true pair).
term frequencies
    the share of records carrying each given and family name, exactly as splink computes them
    (``count(value) / count(non-null)``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from registry_core.matching.blocking import candidate_pairs
from registry_core.matching.levels import COMPARISONS, comparison_vector
from registry_core.matching.normalise import PersonRecord
from registry_core.matching.trained import TF_ATTRIBUTES, TrainedModel

Table = tuple[tuple[float, ...], ...]
Vector = tuple[int, ...]

#: Exact-level value keys: the exact level's u is the collision probability of these values.
_EXACT_KEYS: dict[str, Callable[[PersonRecord], Hashable]] = {
    "given_name": lambda r: r.given,
    "family_name": lambda r: r.family,
    "birth_date": lambda r: r.birth,
    "national_id": lambda r: r.national_id,
    "residence": lambda r: r.address,  # its first level is "address equal"
}


@dataclass(frozen=True)
class TrainingOptions:
    """Knobs of :func:`train`; the defaults suit registries from a few thousand records up.

    ``u_samples``: random pairs compared for u. ``max_block_size``: as in blocking.
    ``em_max_iterations`` / ``em_tolerance``: stop EM after this many rounds or when no
    probability moves by more than the tolerance. ``seed``: fixes the random pairs.
    """

    u_samples: int = 200_000
    max_block_size: int = 50
    em_max_iterations: int = 100
    em_tolerance: float = 1e-6
    seed: int = 0
    threshold: float = 0.5
    review_threshold: float = 0.1


@dataclass(frozen=True)
class EmLimits:
    """When EM stops: after ``max_iterations`` rounds or when no probability moves by more
    than ``tolerance``."""

    max_iterations: int = 100
    tolerance: float = 1e-6


def term_frequencies(records: Sequence[PersonRecord]) -> dict[str, dict[str, float]]:
    """``{column: {value: count / non-null count}}`` for the term-frequency columns."""
    tables: dict[str, dict[str, float]] = {}
    for column, attribute in TF_ATTRIBUTES.items():
        counts = Counter(v for v in (getattr(r, attribute) for r in records) if v)
        total = sum(counts.values())
        tables[column] = {v: c / total for v, c in counts.items()} if total else {}
    return tables


def _collision(values: Iterable[Hashable]) -> float | None:
    """Chance that two different records drawn at random share a (non-empty) value."""
    counts = Counter(v for v in values if v)
    n = sum(counts.values())
    if n < 2:
        return None
    return sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))


def estimate_u(records: Sequence[PersonRecord], *, samples: int = 200_000, seed: int = 0) -> Table:
    """u per comparison level from ``samples`` random pairs (see the module docstring)."""
    n = len(records)
    counts = [[0] * len(spec.levels) for spec in COMPARISONS]
    if n >= 2:
        rng = random.Random(seed)
        for _ in range(samples):
            i = rng.randrange(n)
            j = rng.randrange(n - 1)
            j += j >= i
            for field_counts, level in zip(
                counts, comparison_vector(records[i], records[j]), strict=True
            ):
                field_counts[level] += 1
    table = []
    for spec, field_counts in zip(COMPARISONS, counts, strict=True):
        non_null = [c + 0.5 for c in field_counts[1:]]
        total = sum(non_null)
        row = [1.0] + [c / total for c in non_null]
        key = _EXACT_KEYS.get(spec.name)
        exact = _collision(map(key, records)) if key is not None else None
        if exact is not None:
            # A value no two records share (a clean identifier column) has collision 0, which
            # would make agreement infinitely strong: floor it well below what sampling sees.
            exact = max(exact, 0.05 / max(samples, 1))
            rest = sum(row[2:])
            row = [1.0, exact] + [x * (1 - exact) / rest for x in row[2:]]
        table.append(tuple(row))
    return tuple(table)


def _initial_m() -> Table:
    """Starting m: the strongest agreement likely, each weaker level half as likely."""
    table = []
    for spec in COMPARISONS:
        k = len(spec.levels) - 1
        raw = [0.5**level for level in range(k)]
        raw[-1] = 0.05  # the "else" level
        total = sum(raw)
        table.append((1.0, *(x / total for x in raw)))
    return tuple(table)


def expectation_maximisation(
    patterns: Counter[Vector],
    u_start: Table,
    *,
    m_start: Table | None = None,
    share_start: float = 0.05,
    limits: EmLimits | None = None,
    fix_m: bool = False,
    fix_u: bool = False,
) -> tuple[Table, Table, float]:
    """EM for a two-class mixture over comparison-vector patterns with their counts.

    Returns (m, u, share of matches among the pairs). Null levels (index 0) carry no
    evidence and are left out of the likelihoods and of the re-estimates.
    """
    limits = limits or EmLimits()
    m = [list(row) for row in (m_start or _initial_m())]
    u = [list(row) for row in u_start]
    share = share_start
    items = list(patterns.items())
    total_pairs = sum(patterns.values())
    for _ in range(limits.max_iterations):
        m_counts = [[0.0] * len(row) for row in m]
        u_counts = [[0.0] * len(row) for row in u]
        expected_matches = 0.0
        for vector, count in items:
            like_m = share
            like_u = 1.0 - share
            for field, level in enumerate(vector):
                if level:
                    like_m *= m[field][level]
                    like_u *= u[field][level]
            posterior = like_m / (like_m + like_u) if like_m + like_u > 0 else 0.0
            weighted_m = posterior * count
            weighted_u = count - weighted_m
            expected_matches += weighted_m
            for field, level in enumerate(vector):
                if level:
                    m_counts[field][level] += weighted_m
                    u_counts[field][level] += weighted_u
        change = 0.0
        for field in range(len(m)):
            for old, counts, fixed in ((m, m_counts, fix_m), (u, u_counts, fix_u)):
                if fixed:
                    continue
                levels = len(counts[field])
                # A hundredth of a pair per level: a level EM never sees keeps a small
                # probability (a finite weight) instead of zero.
                total = sum(counts[field][1:]) + 0.01 * (levels - 1)
                for level in range(1, levels):
                    new = (counts[field][level] + 0.01) / total
                    change = max(change, abs(new - old[field][level]))
                    old[field][level] = new
        new_share = min(max(expected_matches / total_pairs, 1e-9), 1 - 1e-9)
        change = max(change, abs(new_share - share))
        share = new_share
        if change < limits.tolerance:
            break
    return (
        tuple(tuple(row) for row in m),
        tuple(tuple(row) for row in u),
        share,
    )


def _session(
    patterns: Counter[Vector], keep: Callable[[Vector], bool], masked: frozenset[int]
) -> Counter[Vector]:
    """The patterns of the pairs ``keep`` admits, with the ``masked`` comparisons set to null.

    This is splink's training blocking rule: EM runs over pairs that agree on some fields, and
    those fields (biased by the selection) are left out of its estimates.
    """
    selected: Counter[Vector] = Counter()
    for vector, count in patterns.items():
        if keep(vector):
            selected[tuple(0 if f in masked else lv for f, lv in enumerate(vector))] += count
    return selected


_FIELD = {spec.name: index for index, spec in enumerate(COMPARISONS)}
_EXACT = 1  # level index of "exact" in the name and date comparisons


def train(records: Sequence[PersonRecord], options: TrainingOptions | None = None) -> TrainedModel:
    """Learn a model from ``records`` (at least two; a few thousand for stable estimates).

    m comes from two EM sessions, as splink's tutorials train it: one over candidate pairs
    with the same birth date (m of every comparison but the birth date), one over pairs with
    the same given and family name (m of the birth date). Pairs sharing a birth date are
    mostly strangers or the same person, rarely household members, so EM separates persons
    rather than households there. A last EM pass over all candidate pairs, m held, gives the
    share of matches and so the prior.
    """
    options = options or TrainingOptions()
    n = len(records)
    if n < 2:
        raise ValueError("training needs at least two records")
    u = estimate_u(records, samples=options.u_samples, seed=options.seed)
    patterns: Counter[Vector] = Counter(
        comparison_vector(records[i], records[j])
        for i, j in candidate_pairs(records, max_block_size=options.max_block_size)
    )
    if not patterns:
        raise ValueError("no candidate pairs: the records share no blocking key")
    birth, given, family = _FIELD["birth_date"], _FIELD["given_name"], _FIELD["family_name"]
    em = EmLimits(options.em_max_iterations, options.em_tolerance)
    m = [list(row) for row in _initial_m()]
    by_birth = _session(patterns, lambda v: v[birth] == _EXACT, frozenset({birth}))
    if by_birth:
        learnt, _, _ = expectation_maximisation(by_birth, u, m_start=_table(m), limits=em)
        m = [list(learnt[f]) if f != birth else m[f] for f in range(len(m))]
    by_name = _session(
        patterns,
        lambda v: v[given] == _EXACT and v[family] == _EXACT,
        frozenset({given, family}),
    )
    if by_name:
        learnt, _, _ = expectation_maximisation(by_name, u, m_start=_table(m), limits=em)
        m[birth] = list(learnt[birth])
    _, _, share = expectation_maximisation(patterns, u, m_start=_table(m), fix_m=True, limits=em)
    expected_matches = share * sum(patterns.values())
    prior = min(max(expected_matches / (n * (n - 1) / 2), 1e-12), 0.5)
    return TrainedModel(
        m=_table(m),
        u=u,
        probability_two_random_records_match=prior,
        tf=term_frequencies(records),
        threshold=options.threshold,
        review_threshold=options.review_threshold,
    )


def _table(rows: Sequence[Sequence[float]]) -> Table:
    return tuple(tuple(row) for row in rows)
