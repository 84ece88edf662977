"""Small-cell suppression: which counts of a table may be published.

A table is a set of cells (each a count of people or households) and the additive relations
between them, ``Σ coefficient * cell = 0`` (a total is the sum of its parts; eligible minus
eligible-not-enrolled equals enrolled minus enrolled-not-eligible). The rule:

1. **Primary**: a count from 1 to ``k - 1`` is hidden. Zero is shown (it names no one).
2. **Complementary**: a hidden cell must not be recoverable from the published ones through
   the relations. The check is exact: with the published cells known, the relations restricted
   to the hidden cells are a linear system, and a hidden cell is recoverable exactly when its
   unit vector lies in the row space of that system (one reduced row echelon form, with
   fractions, gives every such cell at once). For each recoverable cell another published cell
   of a relation it is in is hidden: the smallest, preferring inner cells to totals, so totals
   stay visible where they can. Repeat until no hidden cell is recoverable.

Cells a table never publishes (``unpublished``: e.g. households eligible *and* enrolled,
which is eligible minus eligible-not-enrolled) take part as unknowns: a small one must not be
recoverable either (registered 20, scored 19 would name one household not scored). Before the
elimination, a relation holding an unknown that appears in no other relation is set aside: it
only defines that unknown and says nothing about the rest (it keeps large reports fast).

What it does not claim: bounds. A hidden cell is never *determined*, but published cells can
narrow it (a visible total of 7 and a visible part of 6 leave two hidden parts summing to 1).
And it protects one table: figures published in two different tables (another level or
segment) are not checked against each other. docs/policy.md says so too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from fractions import Fraction
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

Relation = Sequence[tuple[K, int]]  # Σ coefficient * cell = 0


@dataclass(frozen=True)
class Suppressed(Generic[K]):
    """The outcome: the cells hidden and why (``primary``: small; the rest complementary)."""

    hidden: frozenset[K]  # published cells to hide (never an unpublished one)
    primary: frozenset[K]  # cells under k, published or not

    def visible(self, key: K) -> bool:
        return key not in self.hidden


def primary_cells(cells: Mapping[K, int], k: int) -> set[K]:
    """Cells counting from 1 to k - 1 people or households."""
    return {key for key, value in cells.items() if 0 < value < k}


def recoverable(
    hidden: Iterable[K], relations: Sequence[Relation[K]], targets: Set[K] | None = None
) -> set[K]:
    """The hidden cells (of ``targets``, default all) the relations determine once every
    other cell is known.

    Gauss-Jordan elimination over the relations restricted to hidden cells; a hidden cell is
    determined exactly when a row of the reduced form is its unit vector. A relation with a
    hidden cell (not a target) found in no other relation is dropped first, repeatedly: no
    combination that cancels that cell can use it.
    """
    wanted = set(hidden)
    rows: list[dict[K, Fraction]] = []
    for relation in relations:
        row: dict[K, Fraction] = {}
        for key, coefficient in relation:
            if key in wanted and coefficient:
                row[key] = row.get(key, Fraction(0)) + coefficient
        row = {key: value for key, value in row.items() if value}
        if row:
            rows.append(row)
    rows = _prune(rows, targets)
    pivots: list[tuple[K, dict[K, Fraction]]] = []
    for row in rows:
        for pivot, reduced in pivots:  # reduce the new row by the pivots found so far
            factor = row.get(pivot)
            if factor:
                for key, value in reduced.items():
                    updated = row.get(key, Fraction(0)) - factor * value
                    if updated:
                        row[key] = updated
                    else:
                        row.pop(key, None)
        if not row:
            continue
        pivot = min(row, key=repr)
        scale = row[pivot]
        row = {key: value / scale for key, value in row.items()}
        for index, (other_pivot, other) in enumerate(pivots):  # keep the earlier rows reduced
            factor = other.get(pivot)
            if factor:
                updated_row = dict(other)
                for key, value in row.items():
                    new = updated_row.get(key, Fraction(0)) - factor * value
                    if new:
                        updated_row[key] = new
                    else:
                        updated_row.pop(key, None)
                pivots[index] = (other_pivot, updated_row)
        pivots.append((pivot, row))
    found = {pivot for pivot, row in pivots if len(row) == 1}
    return found if targets is None else found & set(targets)


def _prune(rows: list[dict[K, Fraction]], targets: Set[K] | None) -> list[dict[K, Fraction]]:
    """Drop, until none is left, each row holding a non-target cell no other row holds."""
    if targets is None:
        return rows
    alive = list(rows)
    while True:
        seen: dict[K, int] = {}
        for row in alive:
            for key in row:
                seen[key] = seen.get(key, 0) + 1
        kept = [row for row in alive if all(seen[key] > 1 or key in targets for key in row)]
        if len(kept) == len(alive):
            return kept
        alive = kept


def suppress(
    cells: Mapping[K, int],
    relations: Sequence[Relation[K]],
    k: int,
    *,
    is_total: Callable[[K], bool] = lambda key: False,
    unpublished: Set[K] = frozenset(),
) -> Suppressed[K]:
    """Which published cells to hide so that no count under ``k`` (published or not) is
    shown or recoverable."""
    primary = primary_cells(cells, k) if k > 1 else set()
    hidden = set(primary) | set(unpublished)
    containing: dict[K, list[int]] = {}
    for index, relation in enumerate(relations):
        for key, _ in relation:
            containing.setdefault(key, []).append(index)

    def choose(key: K) -> K | None:
        return _partner(key, hidden, relations, containing, cells, is_total)

    while True:
        exposed = recoverable(hidden, relations, primary) if primary else set()
        if not exposed:
            break
        added = False
        for key in sorted(exposed, key=repr):
            partner = choose(key)
            if partner is None:  # its own relations are hidden whole: widen to its neighbours
                for neighbour in sorted(hidden, key=repr):
                    partner = choose(neighbour)
                    if partner is not None:
                        break
            if partner is not None:
                hidden.add(partner)
                added = True
        if not added:  # every relation is hidden whole: nothing left to hide
            break
    return Suppressed(
        hidden=frozenset(key for key in hidden if key not in unpublished),
        primary=frozenset(primary),
    )


def _partner(
    key: K,
    hidden: set[K],
    relations: Sequence[Relation[K]],
    containing: Mapping[K, list[int]],
    cells: Mapping[K, int],
    is_total: Callable[[K], bool],
) -> K | None:
    """The published cell to hide beside ``key``: from a relation of ``key`` with the fewest
    hidden cells, an inner cell before a total, the smallest count, then a stable order."""
    best: tuple[tuple[int, bool, int, str], K] | None = None
    for index in containing.get(key, ()):
        relation = relations[index]
        hidden_here = sum(1 for other, _ in relation if other in hidden)
        for other, coefficient in relation:
            if other in hidden or not coefficient:
                continue
            rank = (hidden_here, is_total(other), cells.get(other, 0), repr(other))
            if best is None or rank < best[0]:
                best = (rank, other)
    return best[1] if best else None
