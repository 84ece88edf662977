"""Small-cell suppression: no count under k is shown, and none can be worked out from what is
shown. The recovery check of the random tables is independent of the module's elimination
with fractions: numpy's matrix rank says which hidden columns are determined."""

from __future__ import annotations

import itertools
import random

import pytest

from registry_core.reports.suppression import primary_cells, recoverable, suppress


def table(rows: int, cols: int, rng: random.Random, high: int):
    """A rows x cols table with row, column and grand totals and their relations."""
    cells: dict[tuple, int] = {}
    for r, c in itertools.product(range(rows), range(cols)):
        small = rng.random() < 0.2
        cells[(r, c)] = rng.randint(0, 4) if small else rng.randint(5, high)
    relations = []
    for r in range(rows):
        cells[(r, "T")] = sum(cells[(r, c)] for c in range(cols))
        relations.append([((r, "T"), 1)] + [((r, c), -1) for c in range(cols)])
    for c in range(cols):
        cells[("T", c)] = sum(cells[(r, c)] for r in range(rows))
        relations.append([(("T", c), 1)] + [((r, c), -1) for r in range(rows)])
    cells[("T", "T")] = sum(cells[(r, "T")] for r in range(rows))
    relations.append([(("T", "T"), 1)] + [((r, "T"), -1) for r in range(rows)])
    return cells, relations


def determined_by_rank(relations, hidden):
    """The hidden cells the relations determine, by numpy's matrix rank: a cell is determined
    when its column of the relations (restricted to hidden cells) is independent of the
    others (every solution of the homogeneous system has it 0)."""
    numpy = pytest.importorskip("numpy")
    order = sorted(hidden, key=repr)
    if not order:
        return set()
    matrix = numpy.array(
        [[sum(c for k, c in rel if k == key) for key in order] for rel in relations], dtype=float
    )
    rank = numpy.linalg.matrix_rank(matrix)
    return {
        key
        for i, key in enumerate(order)
        if numpy.linalg.matrix_rank(numpy.delete(matrix, i, axis=1)) < rank
    }


def test_a_single_small_cell_in_a_row_takes_a_partner():
    cells = {"a": 3, "b": 10, "c": 12, "t": 25}
    relations = [[("t", 1), ("a", -1), ("b", -1), ("c", -1)]]
    result = suppress(cells, relations, 5, is_total=lambda k: k == "t")
    assert result.primary == {"a"}
    assert result.hidden == {"a", "b"}  # the smaller inner cell, not the total


def test_zero_is_shown_and_k_itself_is_shown():
    assert primary_cells({"zero": 0, "one": 1, "four": 4, "five": 5}, 5) == {"one", "four"}


def test_recoverable_finds_cells_determined_through_several_relations():
    # a + b = t1, b + c = t2, with a, b, c hidden: nothing is determined ...
    relations = [[("t1", 1), ("a", -1), ("b", -1)], [("t2", 1), ("b", -1), ("c", -1)]]
    assert recoverable({"a", "b", "c"}, relations) == set()
    # ... but add a + c = t3 and all three are (a = (t1 - t2 + t3) / 2)
    relations.append([("t3", 1), ("a", -1), ("c", -1)])
    assert recoverable({"a", "b", "c"}, relations) == {"a", "b", "c"}


def test_an_unpublished_small_difference_is_protected():
    # registered 20 and scored 19 would say one household is not scored
    cells = {"registered": 20, "scored": 19, "not_scored": 1}
    relations = [[("registered", 1), ("scored", -1), ("not_scored", -1)]]
    result = suppress(cells, relations, 5, unpublished={"not_scored"})
    assert result.primary == {"not_scored"}
    assert result.hidden == {"scored"}  # the unpublished cell is never listed as hidden


@pytest.mark.parametrize("seed", range(60))
def test_no_cell_under_k_is_shown_or_recoverable_in_random_tables(seed):
    rng = random.Random(seed)
    cells, relations = table(rng.randint(2, 5), rng.randint(2, 5), rng, high=30)
    k = rng.choice([3, 5])
    result = suppress(cells, relations, k, is_total=lambda key: "T" in key)
    shown = {key: v for key, v in cells.items() if key not in result.hidden}
    assert all(not 0 < v < k for v in shown.values())
    assert result.primary <= result.hidden
    assert not determined_by_rank(relations, result.hidden) & result.primary


def test_without_small_cells_nothing_is_hidden():
    cells = {"a": 6, "b": 0, "t": 6}
    relations = [[("t", 1), ("a", -1), ("b", -1)]]
    assert suppress(cells, relations, 5).hidden == frozenset()


def test_the_rank_check_catches_primary_suppression_alone():
    """The independent check is not vacuous: hiding only the small cell leaves it recoverable."""
    relations = [[("t", 1), ("a", -1), ("b", -1), ("c", -1)]]
    assert determined_by_rank(relations, {"a"}) == {"a"}
    assert determined_by_rank(relations, {"a", "b"}) == set()
