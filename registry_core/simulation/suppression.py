"""Small-cell suppression of a simulation's answer, with complementary suppression.

A simulation's answer per program is two one-way tables over the same households — by area
and by segment — and their totals, for each count: households and people eligible now
(``current_*``), under the scenario (``simulated_*``), gaining and losing. Hiding a small
cell on its own is not enough: the total minus the other areas gives it back, and so do the
two sides of the comparison (``simulated = current + gaining - losing`` in every row). So the
answer is protected with the coverage reports' rule (``registry_core.reports.suppression``,
exact linear algebra over the relations):

- **cells**: every row's counts and the totals; and, never published but worked out from
  them, the households (and people) eligible on *both* sides of each row (``stayed`` =
  current - losing = simulated - gaining): a small one is protected like a shown one;
- **relations**: each count's areas sum to its total, and so do its segments; in every row
  and in the totals ``current = stayed + losing`` and ``simulated = stayed + gaining``, for
  households and for people;
- **primary**: a count from 1 to k - 1 is hidden, and so is the people count beside a
  households count that is (the people of two households describe those two households);
- **complementary**: until no primary cell can be worked out from what is shown, another
  cell of a relation that reveals one is hidden (an inner cell before a total, the smallest
  first).

A budget is a count times the schedule's amount, so a side whose households or people count
is hidden (in a row's ``current_budget`` / ``simulated_budget``, or in the program's totals)
shows no budget figure either. Only the published answer is protected: the saved
result keeps every count, and staff (who may list the households anyway) read it whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry_core.reports.suppression import Relation, suppress

# A row's count -> where its total is in the answer (side, measure).
TOTALS: dict[str, tuple[str, str]] = {
    "current_households": ("current", "households"),
    "simulated_households": ("simulated", "households"),
    "current_people": ("current", "people"),
    "simulated_people": ("simulated", "people"),
    "gaining_households": ("gainers", "households"),
    "gaining_people": ("gainers", "people"),
    "losing_households": ("losers", "households"),
    "losing_people": ("losers", "people"),
}
PARTS = (("by_area", "area"), ("by_segment", "segment"))
MEASURES = ("households", "people")
RULE = (
    "counts from 1 to min_cell - 1 are hidden (with the people of those households), and so"
    " are other counts wherever the totals, the other rows or the difference of the two"
    " sides would reveal a hidden one"
)
Key = tuple[str, ...]


def _total(program: Mapping[str, Any], count: str) -> int:
    side, measure = TOTALS[count]
    return int((program.get(side) or {}).get(measure) or 0)


def _cells_and_relations(
    program: Mapping[str, Any],
) -> tuple[dict[Key, int], list[Relation[Key]], set[Key]]:
    """Every count of the answer (keys ``(part, label, count)``, totals ``("*", "*",
    count)``), the unpublished ``stayed`` counts, and the relations between them."""
    cells: dict[Key, int] = {("*", "*", count): _total(program, count) for count in TOTALS}
    relations: list[Relation[Key]] = []
    rows: list[tuple[str, str, Mapping[str, Any]]] = [("*", "*", {})]
    for part, label in PARTS:
        members = [(part, str(row[label]), row) for row in program.get(part) or []]
        if len(members) == 1:  # one row: the totals themselves (``_key``), no relation
            continue
        for _, name, row in members:
            for count in TOTALS:
                cells[(part, name, count)] = int(row.get(count) or 0)
        rows.extend(members)
        for count in TOTALS:
            relations.append(
                [(("*", "*", count), 1), *(((part, name, count), -1) for _, name, _ in members)]
            )
    unpublished: set[Key] = set()
    for part, name, _ in rows:
        for measure in MEASURES:
            stayed = (part, name, f"stayed_{measure}")
            current = cells[(part, name, f"current_{measure}")]
            cells[stayed] = current - cells[(part, name, f"losing_{measure}")]
            unpublished.add(stayed)
            relations.append(
                [
                    ((part, name, f"current_{measure}"), 1),
                    (stayed, -1),
                    ((part, name, f"losing_{measure}"), -1),
                ]
            )
            relations.append(
                [
                    ((part, name, f"simulated_{measure}"), 1),
                    (stayed, -1),
                    ((part, name, f"gaining_{measure}"), -1),
                ]
            )
    return cells, relations, unpublished


# In a row, simulated = current - losing + gaining: a hidden gaining count is hidden with the
# row's simulated count, a hidden losing count with its current count (else the row itself
# gives it back, and hiding cells of other rows for it would hide far more than needed).
_PAIRED = {"gaining": "simulated", "simulated": "gaining", "losing": "current", "current": "losing"}


def _companions(key: Key) -> tuple[Key, ...]:
    part, name, count = key
    side, _, measure = count.partition("_")
    other = _PAIRED.get(side)
    return ((part, name, f"{other}_{measure}"),) if other else ()


def _people_of_small(cells: Mapping[Key, int], k: int) -> set[Key]:
    """People counts whose households count is small: primary too."""
    found: set[Key] = set()
    for (part, name, count), value in cells.items():
        if count.endswith("_households") and 0 < value < k:
            found.add((part, name, count.replace("_households", "_people")))
    return found


def protect_program(program: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """A copy of one program's answer as a policymaker may see it: hidden counts are
    ``None``, a row with one gets ``"suppressed": true``, and ``suppression`` says how many
    counts were hidden. ``min_cell`` 0 or 1: the answer as it is."""
    shown: dict[str, Any] = dict(program)
    if min_cell <= 1:
        return shown
    cells, relations, unpublished = _cells_and_relations(program)
    people = _people_of_small(cells, min_cell)
    outcome = suppress(
        cells,
        relations,
        min_cell,
        is_total=lambda key: key[0] == "*",
        unpublished=frozenset(unpublished),
        also_primary=frozenset(people),
        companions=_companions,
    )
    hidden = outcome.hidden
    for part, _ in PARTS:
        shown[part] = [_row(program, part, row, hidden) for row in program.get(part) or []]
    for side in ("current", "simulated", "gainers", "losers"):
        shown[side] = dict(program.get(side) or {})
    for count, (side, measure) in TOTALS.items():
        if ("*", "*", count) in hidden:
            shown[side][measure] = None
    for side in ("current", "simulated"):
        budget = shown[side].get("budget")
        if budget and (shown[side]["households"] is None or shown[side]["people"] is None):
            shown[side]["budget"] = {
                **budget,
                "per_period": None,
                "total": None,
                "units": None,
            }
    shown["suppression"] = {"min_cell": min_cell, "suppressed_cells": len(hidden), "rule": RULE}
    return shown


def _key(program: Mapping[str, Any], part: str, name: str, count: str) -> Key:
    """A row's cell; the only row of its part is the totals (the same counts: hiding one
    and showing the other would protect nothing)."""
    if len(program.get(part) or []) == 1:
        return ("*", "*", count)
    return (part, name, count)


def _row(
    program: Mapping[str, Any], part: str, row: Mapping[str, Any], hidden: frozenset[Key]
) -> dict[str, Any]:
    label = "area" if part == "by_area" else "segment"
    copy = dict(row)
    for count in TOTALS:
        if _key(program, part, str(row[label]), count) in hidden:
            copy[count] = None
            copy["suppressed"] = True
    for side in ("current", "simulated"):  # a budget is a count times an amount
        if copy.get(f"{side}_budget") is not None and (
            copy[f"{side}_households"] is None or copy[f"{side}_people"] is None
        ):
            copy[f"{side}_budget"] = None
    return copy


def protect_programs(programs: Sequence[Mapping[str, Any]], min_cell: int) -> list[dict[str, Any]]:
    """``protect_program`` over every program of a simulation's answer."""
    return [protect_program(program, min_cell) for program in programs]
