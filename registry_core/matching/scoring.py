"""Fellegi-Sunter scoring: each agreement level adds log2(m / u) bits of evidence.

m is the chance of a level among true matches, u among random pairs. Why this model: the weights
have a meaning (bits of evidence), a missing field adds exactly nothing, and u can be measured
from the very data being matched by comparing random pairs, so a population where everybody is
called "Nguyen" automatically gives name agreement less weight than one with varied names.

m cannot be measured without labelled pairs, so it comes from priors describing typical
registry noise (a few percent typos per field, some missing values, rare swaps); these were set
by reasoning about data-entry error rates and checked on FEBRL 1 and 2, not fitted to one set.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from registry_core.matching.compare import COMPARED_FIELDS, LEVEL_COUNTS, compare
from registry_core.matching.normalise import PersonRecord

Table = tuple[tuple[float, ...], ...]

#: P(level | same person), per field, level 0 (agree) ... last (disagree).
DEFAULT_M: Table = (
    (0.86, 0.07, 0.04, 0.03),  # given_name
    (0.86, 0.07, 0.04, 0.03),  # family_name
    (0.88, 0.02, 0.08, 0.02),  # birth_date
    (0.97, 0.03),  # sex
    (0.88, 0.08, 0.04),  # national_id
    (0.75, 0.10, 0.08, 0.07),  # address
    (0.80, 0.12, 0.04, 0.04),  # place (locality + postcode)
)

#: P(level | different people): a fallback when there are too few records to measure it.
DEFAULT_U: Table = (
    (0.005, 0.004, 0.03, 0.961),
    (0.002, 0.003, 0.02, 0.975),
    (0.0001, 0.0001, 0.003, 0.9968),
    (0.5, 0.5),
    (0.00001, 0.0001, 0.99989),
    (0.0005, 0.002, 0.02, 0.9775),
    (0.001, 0.002, 0.005, 0.992),
)

# A u below this would give one agreeing field unbounded weight; 1e-6 caps a level at ~20 bits.
_U_FLOOR = 1e-6


@dataclass(frozen=True)
class Model:
    """m and u tables and the per-level weights in bits derived from them."""

    m: Table = DEFAULT_M
    u: Table = DEFAULT_U
    #: Share of records carrying each given / family name (term frequencies), when measured.
    given_freq: Mapping[str, float] | None = None
    family_freq: Mapping[str, float] | None = None

    def weights(self) -> Table:
        """log2(m / u) per level, made non-increasing from level 0 down.

        Levels are ordered (exact > close > loose > differ), so a weaker agreement must never
        weigh more than a stronger one. Measured u can break that order for rare levels: a few
        true duplicates caught among the random pairs inflate u of "exact". Clamping each level
        to the weight of the level above restores the order without discarding the measurement.
        """
        table = []
        for mf, uf in zip(self.m, self.u, strict=True):
            row: list[float] = []
            for mi, ui in zip(mf, uf, strict=True):
                weight = math.log2(mi / max(ui, _U_FLOOR))
                row.append(min(weight, row[-1]) if row else weight)
            table.append(tuple(row))
        return tuple(table)


def collision_probability(values: Sequence[Hashable]) -> float | None:
    """Chance that two different records drawn at random share a value (None if < 2 values).

    ``sum_v c_v (c_v - 1) / (n (n - 1))`` over value counts ``c_v``: the exact u of the
    "equal" level, which random sampling estimates poorly for rare agreements (two random
    people share a birth date about once in 30,000 pairs).
    """
    n = len(values)
    if n < 2:
        return None
    counts = Counter(values)
    return sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))


def name_frequencies(names: Sequence[str]) -> dict[str, float]:
    """Share of the named records carrying each name."""
    counts = Counter(name for name in names if name)
    total = sum(counts.values())
    return {name: c / total for name, c in counts.items()} if total else {}


_EXACT_KEYS: tuple[Callable[[PersonRecord], Hashable] | None, ...] = (
    lambda r: r.given,
    lambda r: r.family,
    lambda r: r.birth,
    None,  # sex: two values, sampling measures it well
    lambda r: r.national_id,
    lambda r: r.address,
    lambda r: (r.locality, r.postcode) if r.locality and r.postcode else None,
)


def estimate_u(
    records: Sequence[PersonRecord],
    *,
    samples: int = 20_000,
    seed: int = 0,
    prior: Table = DEFAULT_U,
    prior_weight: float = 200.0,
) -> Table:
    """Measure u on ``records``: level 0 exactly from value counts, other levels by sampling.

    Random pairs are almost all different people (duplicates are rare among n^2 pairs), so level
    frequencies among them estimate u. Levels other than 0 are Dirichlet-smoothed sample
    frequencies, ``(count + prior * prior_weight) / (seen + prior_weight)``; level 0 ("equal")
    is the collision probability of the field's values (see :func:`collision_probability`),
    and the other levels share the rest in their sampled proportions.
    """
    n = len(records)
    counts = [[0] * k for k in LEVEL_COUNTS]
    if n >= 2:
        rng = random.Random(seed)
        for _ in range(samples):
            i = rng.randrange(n)
            j = rng.randrange(n - 1)
            j += j >= i
            for field, level in enumerate(compare(records[i], records[j]).levels):
                if level is not None:
                    counts[field][level] += 1
    table = []
    for field, (field_counts, field_prior) in enumerate(zip(counts, prior, strict=True)):
        seen = sum(field_counts)
        row = [
            (c + p * prior_weight) / (seen + prior_weight)
            for c, p in zip(field_counts, field_prior, strict=True)
        ]
        key = _EXACT_KEYS[field]
        exact = None
        if key is not None:
            exact = collision_probability([v for v in map(key, records) if v])
        if exact is not None:
            exact = max(exact, _U_FLOOR)
            rest = sum(row[1:])
            row = [exact] + [x * (1 - exact) / rest for x in row[1:]]
        table.append(tuple(row))
    return tuple(table)


def describe(weights: Table) -> str:
    """A readable weight table (for logs and the benchmark), no personal data involved."""
    lines = []
    for name, row in zip(COMPARED_FIELDS, weights, strict=True):
        lines.append(f"{name:12s} " + " ".join(f"{w:+6.1f}" for w in row))
    return "\n".join(lines)
