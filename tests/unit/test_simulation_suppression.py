"""A simulation's answer shown to policymakers: no count under k is shown, and none can be
worked out from what is shown — not from the totals, not from the other areas or segments,
not from the difference of the two sides (simulated = current + gaining - losing).

The attacker here is independent of the module: it writes down everything a reader knows
about the published figures (each count's rows sum to its total, by area and by segment;
per row and in total, current - losing and simulated - gaining are the same households) and
solves it with exact fractions; a hidden count it can pin down is a failure."""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import pytest

from registry_core.simulation.suppression import TOTALS, protect_program

K = 5
SIDES = {
    "current_households": ("current", "households"),
    "simulated_households": ("simulated", "households"),
    "current_people": ("current", "people"),
    "simulated_people": ("simulated", "people"),
    "gaining_households": ("gainers", "households"),
    "gaining_people": ("gainers", "people"),
    "losing_households": ("losers", "households"),
    "losing_people": ("losers", "people"),
}


def household_cell(rng: random.Random, small: float) -> dict[str, int]:
    """One area x segment cell: households eligible on both sides, gaining, losing, with
    their people (1 to 6 each)."""
    counts = {}
    for kind in ("stayed", "gaining", "losing"):
        roll = rng.random()
        counts[kind] = (
            0 if roll < 0.2 else rng.randint(1, 4) if roll < 0.2 + small else (rng.randint(5, 40))
        )
        counts[f"{kind}_people"] = sum(rng.randint(1, 6) for _ in range(counts[kind]))
    return counts


def as_row(cell: dict[str, int]) -> dict[str, int]:
    return {
        "current_households": cell["stayed"] + cell["losing"],
        "simulated_households": cell["stayed"] + cell["gaining"],
        "current_people": cell["stayed_people"] + cell["losing_people"],
        "simulated_people": cell["stayed_people"] + cell["gaining_people"],
        "gaining_households": cell["gaining"],
        "gaining_people": cell["gaining_people"],
        "losing_households": cell["losing"],
        "losing_people": cell["losing_people"],
    }


def random_program(seed: int, areas: int, segments: int, small: float) -> dict[str, Any]:
    """A program's answer as ``service._run_plan`` builds it, from random cells."""
    rng = random.Random(seed)
    grid = {
        (f"R{a:02d}", f"s{s}"): as_row(household_cell(rng, small))
        for a in range(areas)
        for s in range(segments)
    }

    def roll_up(index: int, label: str) -> list[dict[str, Any]]:
        names = sorted({key[index] for key in grid})
        return [
            {
                label: name,
                **{c: sum(v[c] for k, v in grid.items() if k[index] == name) for c in SIDES},
            }
            for name in names
        ]

    program: dict[str, Any] = {"program": "cct", "by_area": roll_up(0, "area")}
    program["by_segment"] = roll_up(1, "segment")
    for count, (side, measure) in SIDES.items():
        program.setdefault(side, {})[measure] = sum(v[count] for v in grid.values())
    for side in ("current", "simulated"):
        units = program[side]["households"]
        program[side]["budget"] = {
            "per_period": 40.0 * units,
            "total": 480.0 * units,
            "units": units,
        }
    return program


def published(program: dict[str, Any], shown: dict[str, Any]):
    """(known values, unknowns) as a reader of ``shown`` sees them; every count keyed."""
    known: dict[tuple, int] = {}
    unknown: set[tuple] = set()
    truth: dict[tuple, int] = {}
    for part, label in (("by_area", "area"), ("by_segment", "segment")):
        for real, seen in zip(program[part], shown[part], strict=True):
            for count in SIDES:
                key = (part, real[label], count)
                truth[key] = real[count]
                if seen[count] is None:
                    unknown.add(key)
                else:
                    assert seen[count] == real[count]  # what is shown is true
                    known[key] = seen[count]
    for count, (side, measure) in SIDES.items():
        key = ("*", "*", count)
        truth[key] = program[side][measure]
        if shown[side][measure] is None:
            unknown.add(key)
        else:
            assert shown[side][measure] == program[side][measure]
            known[key] = shown[side][measure]
    return known, unknown, truth


def equations(program: dict[str, Any]) -> list[dict[tuple, int]]:
    """Everything the reader knows relates the counts (Σ coefficient * count = 0)."""
    rows = [("*", "*")]
    found: list[dict[tuple, int]] = []
    for part, label in (("by_area", "area"), ("by_segment", "segment")):
        names = [row[label] for row in program[part]]
        rows.extend((part, name) for name in names)
        for count in SIDES:
            eq = {("*", "*", count): 1}
            eq.update({(part, name, count): -1 for name in names})
            found.append(eq)
    for part, name in rows:
        for measure in ("households", "people"):
            # current - losing = simulated - gaining (the households on both sides)
            found.append(
                {
                    (part, name, f"current_{measure}"): 1,
                    (part, name, f"losing_{measure}"): -1,
                    (part, name, f"simulated_{measure}"): -1,
                    (part, name, f"gaining_{measure}"): 1,
                }
            )
            # and that difference is itself a count: a new unknown per row
            found.append(
                {
                    (part, name, f"current_{measure}"): 1,
                    (part, name, f"losing_{measure}"): -1,
                    ("stayed", part, name, measure): -1,
                }
            )
    return found


def determined(eqs: list[dict[tuple, int]], known: dict[tuple, int], unknown: set[tuple]):
    """The unknowns pinned down by the equations once the known values are put in: exact
    Gauss-Jordan elimination over fractions."""
    order = sorted(unknown, key=repr)
    index = {key: i for i, key in enumerate(order)}
    matrix: list[list[Fraction]] = []
    for eq in eqs:
        row = [Fraction(0)] * (len(order) + 1)
        for key, coefficient in eq.items():
            if key in index:
                row[index[key]] += coefficient
            else:
                row[-1] -= coefficient * known[key]
        if any(row[:-1]):
            matrix.append(row)
    pivots: list[int] = []
    r = 0
    for c in range(len(order)):
        pivot = next((i for i in range(r, len(matrix)) if matrix[i][c] != 0), None)
        if pivot is None:
            continue
        matrix[r], matrix[pivot] = matrix[pivot], matrix[r]
        lead = matrix[r][c]
        matrix[r] = [v / lead for v in matrix[r]]
        for i in range(len(matrix)):
            if i != r and matrix[i][c] != 0:
                factor = matrix[i][c]
                matrix[i] = [a - factor * b for a, b in zip(matrix[i], matrix[r], strict=True)]
        pivots.append(c)
        r += 1
    found = {}
    for row_index, c in enumerate(pivots):
        row = matrix[row_index]
        if all(row[j] == 0 for j in range(len(order)) if j != c):
            found[order[c]] = row[-1]
    return found


def stayed_truth(program: dict[str, Any]) -> dict[tuple, int]:
    values = {}
    for part, label in (("by_area", "area"), ("by_segment", "segment")):
        for row in program[part]:
            for measure in ("households", "people"):
                values[("stayed", part, row[label], measure)] = (
                    row[f"current_{measure}"] - row[f"losing_{measure}"]
                )
    for measure in ("households", "people"):
        values[("stayed", "*", "*", measure)] = (
            program["current"][measure] - program["losers"][measure]
        )
    return values


def small(value: int) -> bool:
    return 0 < value < K


@pytest.mark.parametrize("seed", range(12))
def test_no_small_count_is_shown_or_can_be_worked_out(seed):
    rng = random.Random(seed)
    program = random_program(seed, rng.randint(2, 7), rng.randint(2, 4), rng.choice([0.1, 0.3]))
    shown = protect_program(program, K)
    known, unknown, truth = published(program, shown)
    assert not [key for key, value in known.items() if small(value)]  # none shown
    stayed = stayed_truth(program)
    unknown |= set(stayed)
    truth |= stayed
    found = determined(equations(program), known, unknown)
    for key, value in found.items():
        assert value == truth[key]  # the attacker's algebra is right...
        assert not small(truth[key]), key  # ...and never pins down a small count
    # the people of a small number of households are hidden with them
    for key, value in truth.items():
        if key[0] != "stayed" and key[-1].endswith("_households") and small(value):
            assert (*key[:-1], key[-1].replace("_households", "_people")) not in known
    assert shown["suppression"]["suppressed_cells"] == len([k for k in unknown if k[0] != "stayed"])


def test_a_small_area_is_not_given_away_by_the_total_or_the_two_sides():
    program = random_program(1, 3, 1, 0.0)
    area = program["by_area"][0]
    # make the first area gain 2 households of 5 people; keep the sums true
    delta_h, delta_p = 2 - area["gaining_households"], 5 - area["gaining_people"]
    for row in (area, program["by_segment"][0]):
        row["gaining_households"] += delta_h
        row["simulated_households"] += delta_h
        row["gaining_people"] += delta_p
        row["simulated_people"] += delta_p
    for side in ("gainers", "simulated"):
        program[side]["households"] += delta_h
        program[side]["people"] += delta_p
    shown = protect_program(program, K)
    row = shown["by_area"][0]
    assert row["gaining_households"] is None and row["gaining_people"] is None
    assert row["suppressed"] is True
    # simulated = current + gaining - losing would give it back: one of those is hidden too
    assert None in (
        row["simulated_households"],
        row["current_households"],
        row["losing_households"],
    )
    # and the total minus the other areas would: another area's gaining count is hidden too
    others = [r["gaining_households"] for r in shown["by_area"][1:]]
    assert None in others or shown["gainers"]["households"] is None


def test_nothing_is_hidden_without_min_cell_and_zero_is_shown():
    program = random_program(3, 3, 2, 0.3)
    assert protect_program(program, 0) == program
    assert protect_program(program, 1) == program
    program["by_area"][0]["losing_households"] = 0
    shown = protect_program(program, K)
    assert shown["by_area"][0]["losing_households"] in (0, None)  # 0 is hidden only as a complement
    assert program["by_area"][0]["losing_households"] == 0  # the input is not changed


def test_a_hidden_total_hides_the_budget_it_multiplies():
    program = random_program(4, 2, 1, 0.0)
    for row in program["by_area"] + program["by_segment"]:
        row["losing_households"], row["losing_people"] = 0, 0
    program["by_area"][0]["losing_households"] = 3
    program["by_area"][0]["losing_people"] = 7
    program["by_segment"][0]["losing_households"] = 3
    program["by_segment"][0]["losing_people"] = 7
    program["losers"] = {"households": 3, "people": 7}
    shown = protect_program(program, K)
    assert shown["losers"]["households"] is None  # a total of 3 is small itself
    assert set(TOTALS) >= {"losing_households"}
    for side in ("current", "simulated"):
        if shown[side]["households"] is None or shown[side]["people"] is None:
            assert shown[side]["budget"]["total"] is None
        else:
            assert shown[side]["budget"]["total"] == program[side]["budget"]["total"]
