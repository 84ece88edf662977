"""Small-cell suppression: which counts of a table may be published.

A table is a set of cells (each a count of people or households) and the additive relations
between them, ``Σ coefficient * cell = 0`` (a total is the sum of its parts; eligible minus
eligible-not-enrolled equals enrolled minus enrolled-not-eligible). The rule:

1. **Primary**: a count from 1 to ``k - 1`` is hidden. Zero is shown (it names no one).
2. **Complementary**: a hidden small cell must not be recoverable from the published ones
   through the relations. The check is exact: with the published cells known, the relations
   restricted to the hidden cells are a linear system, and a hidden cell is recoverable exactly
   when its unit vector lies in the row space of that system (chains of relations with one
   unknown left first, then an echelon form modulo a large prime). For a recoverable small
   cell another published cell of a relation it is in is hidden (one per relation per round):
   the smallest, preferring inner cells to totals, so totals stay visible where they can.
   Repeat until no small cell is recoverable. A cell hidden only as a complement may itself be
   recoverable: it is not small, it only had to be unknown for the small ones' sake.

Cells a table never publishes (``unpublished``: e.g. households eligible *and* enrolled,
which is eligible minus eligible-not-enrolled) take part as unknowns: a small one must not be
recoverable either (registered 20, scored 19 would name one household not scored). Before the
elimination, a relation holding an unknown that appears in no other relation is set aside: it
only defines that unknown and says nothing about the rest (it keeps large reports fast).

What it does not claim: bounds. A hidden small cell is never *determined*, but published
cells can narrow it (a visible total of 7 and a visible part of 6 leave two hidden parts
summing to 1).
And it protects one table: figures published in two different tables (another level or
segment) are not checked against each other. docs/policy.md says so too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
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


# Arithmetic modulo a large prime: exact integers, no fractions growing. A relation system of
# +-1 coefficients has the same rank modulo this prime as over the rationals unless the prime
# divides one of its minors, which for a 61-bit prime does not happen in practice.
_PRIME = (1 << 61) - 1


def recoverable(
    hidden: Iterable[K],
    relations: Sequence[Relation[K]],
    targets: Set[K] | None = None,
    *,
    quick: bool = False,
) -> set[K]:
    """The hidden cells (of ``targets``, default all) the relations determine once every
    other cell is known.

    First peeling: a relation with one unknown left determines it, which may leave another
    relation with one unknown, and so on (cheap; finds most). Then elimination over what is
    left: a cell is determined exactly when its unit vector lies in the row space of the
    relations restricted to the unknowns. A relation holding an unknown (not a target) that
    appears in no other relation is set aside before: no combination that cancels it uses it.
    ``quick``: when peeling already finds targets, answer those without the elimination
    (``suppress`` fixes them and asks again; the last answer is always the full one).
    """
    wanted = set(hidden)
    goal = wanted if targets is None else wanted & set(targets)
    order = {key: index for index, key in enumerate(sorted(wanted, key=repr))}
    rows: list[dict[int, int]] = []
    for relation in relations:
        row: dict[int, int] = {}
        for key, coefficient in relation:
            if key in wanted and coefficient:
                column = order[key]
                row[column] = (row.get(column, 0) + coefficient) % _PRIME
        row = {c: v for c, v in row.items() if v}
        if row:
            rows.append(row)
    keys = {index: key for key, index in order.items()}
    peeled = _peel(rows)
    found = {keys[c] for c in peeled}
    if quick and found & goal:
        return found & goal
    rows = [{c: v for c, v in row.items() if c not in peeled} for row in rows]
    rows = [row for row in rows if row]
    rows = _prune(rows, {order[key] for key in goal})
    echelon = _echelon(rows)
    for key in goal - found:
        if _in_span({order[key]: 1}, echelon):
            found.add(key)
    return found & goal


def _peel(rows: list[dict[int, int]]) -> set[int]:
    """Unknowns determined by chains of relations with a single unknown left."""
    containing: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        for column in row:
            containing.setdefault(column, []).append(index)
    left = [len(row) for row in rows]
    known: set[int] = set()
    queue = [index for index, count in enumerate(left) if count == 1]
    while queue:
        index = queue.pop()
        if left[index] != 1:
            continue
        (column,) = (c for c in rows[index] if c not in known)
        known.add(column)
        for other in containing[column]:
            left[other] -= 1
            if left[other] == 1:
                queue.append(other)
    return known


def _echelon(rows: list[dict[int, int]]) -> dict[int, dict[int, int]]:
    """Row echelon form modulo the prime: pivot column -> its row (pivot 1, the smallest)."""
    pivots: dict[int, dict[int, int]] = {}
    for source in rows:
        row = dict(source)
        while row:
            lead = min(row)
            basis = pivots.get(lead)
            if basis is None:
                inverse = pow(row[lead], _PRIME - 2, _PRIME)
                pivots[lead] = {c: v * inverse % _PRIME for c, v in row.items()}
                break
            _subtract(row, basis, row[lead])
    return pivots


def _subtract(row: dict[int, int], basis: dict[int, int], factor: int) -> None:
    for column, value in basis.items():
        updated = (row.get(column, 0) - factor * value) % _PRIME
        if updated:
            row[column] = updated
        else:
            row.pop(column, None)


def _in_span(vector: dict[int, int], pivots: dict[int, dict[int, int]]) -> bool:
    row = dict(vector)
    while row:
        lead = min(row)
        basis = pivots.get(lead)
        if basis is None:
            return False
        _subtract(row, basis, row[lead])
    return True


def _prune(rows: list[dict[int, int]], targets: Set[int]) -> list[dict[int, int]]:
    """Drop, until none is left, each row holding a non-target unknown no other row holds."""
    alive = list(rows)
    while True:
        seen: dict[int, int] = {}
        for row in alive:
            for column in row:
                seen[column] = seen.get(column, 0) + 1
        kept = [row for row in alive if all(seen[c] > 1 or c in targets for c in row)]
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
    also_primary: Set[K] = frozenset(),
    companions: Callable[[K], Iterable[K]] = lambda key: (),
) -> Suppressed[K]:
    """Which published cells to hide so that no count under ``k`` (published or not) is
    shown or recoverable; ``also_primary``: cells protected as if they were small (e.g. the
    people of a small number of households); ``companions``: the cells hidden with a cell
    whenever it is (a count that would otherwise give it straight back, e.g. the other side
    of a difference)."""
    primary = (primary_cells(cells, k) | set(also_primary)) if k > 1 else set()
    hidden = set(primary) | set(unpublished)

    def hide(key: K) -> None:
        hidden.add(key)
        hidden.update(other for other in companions(key) if other in cells)

    for key in primary:
        hide(key)
    containing: dict[K, list[int]] = {}
    for index, relation in enumerate(relations):
        for key, _ in relation:
            containing.setdefault(key, []).append(index)

    while True:
        exposed = recoverable(hidden, relations, primary, quick=True) if primary else set()
        if not exposed:
            break
        # One complement per neighbourhood per round: a hidden cell often covers several
        # exposed ones near it, while exposed cells of unrelated rows are fixed together.
        used: set[int] = set()  # relations given a new hidden cell this round
        added = False
        for key in sorted(exposed, key=repr):
            if used.intersection(containing.get(key, ())):
                continue
            found = _nearest_partner(key, hidden, relations, containing, cells, is_total)
            if found is None:
                continue
            partner, taken_from = found
            hide(partner)
            added = True
            used.add(taken_from)
        if not added:  # every relation they reach is hidden whole: nothing left to hide
            break
    return Suppressed(
        hidden=frozenset(key for key in hidden if key not in unpublished),
        primary=frozenset(primary),
    )


def _nearest_partner(
    key: K,
    hidden: set[K],
    relations: Sequence[Relation[K]],
    containing: Mapping[K, list[int]],
    cells: Mapping[K, int],
    is_total: Callable[[K], bool],
) -> tuple[K, int] | None:
    """The partner (and the relation it is taken from) from ``key``'s own relations, else
    from those of the hidden cells nearest to it (breadth first through relations whose cells
    are all hidden already)."""
    seen = {key}
    frontier = [key]
    while frontier:
        for current in frontier:
            partner = _partner(current, hidden, relations, containing, cells, is_total)
            if partner is not None:
                return partner
        following: list[K] = []
        for current in frontier:
            for index in containing.get(current, ()):
                for other, _ in relations[index]:
                    if other in hidden and other not in seen:
                        seen.add(other)
                        following.append(other)
        frontier = sorted(following, key=repr)
    return None


def _partner(
    key: K,
    hidden: set[K],
    relations: Sequence[Relation[K]],
    containing: Mapping[K, list[int]],
    cells: Mapping[K, int],
    is_total: Callable[[K], bool],
) -> tuple[K, int] | None:
    """The published cell to hide beside ``key``: from a relation of ``key`` with the fewest
    hidden cells, an inner cell before a total, the smallest count, then a stable order."""
    best: tuple[tuple[int, bool, int, str], K, int] | None = None
    for index in containing.get(key, ()):
        relation = relations[index]
        hidden_here = sum(1 for other, _ in relation if other in hidden)
        for other, coefficient in relation:
            if other in hidden or not coefficient:
                continue
            rank = (hidden_here, is_total(other), cells.get(other, 0), repr(other))
            if best is None or rank < best[0]:
                best = (rank, other, index)
    return (best[1], best[2]) if best else None
