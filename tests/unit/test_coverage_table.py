"""The coverage table's pieces without a database: the relations the suppression reasons with
are true of the counts (else it would protect the wrong thing), area levels, and CSV cells a
spreadsheet will not run."""

from __future__ import annotations

import random

import pytest

from registry_core.reports import coverage as cov


def grouped_counts(seed: int) -> dict[tuple[str, str], dict[str, int]]:
    """Consistent counts of random households per (area, segment), two programs."""
    rng = random.Random(seed)
    grouped: dict[tuple[str, str], dict[str, int]] = {}
    for area in ("R01-D01", "R01-D02", "R02-D01"):
        for segment in ("female", "male", "unknown"):
            counts = grouped.setdefault((area, segment), {})
            for _ in range(rng.randint(1, 15)):
                flags = {p: (rng.random() < 0.4, rng.random() < 0.4) for p in ("A", "B")}
                several = sum(enrolled for _, enrolled in flags.values()) >= 2
                scored = rng.random() < 0.8
                add = {"|registered": 1, "|scored": scored, "|enrolled_several": several}
                for p, (eligible, enrolled) in flags.items():
                    add |= {
                        f"{p}|eligible": eligible,
                        f"{p}|enrolled": enrolled,
                        f"{p}|eligible_not_enrolled": eligible and not enrolled,
                        f"{p}|enrolled_not_eligible": enrolled and not eligible,
                    }
                for name, value in add.items():
                    counts[name] = counts.get(name, 0) + int(value)
    return grouped


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("segment_totals", [True, False])
@pytest.mark.parametrize("closed_pair", [True, False])
def test_every_relation_holds_on_the_counts(seed, segment_totals, closed_pair):
    grouped = grouped_counts(seed)
    if not segment_totals:  # one segment per area, as with segment=none
        grouped = {k: v for k, v in grouped.items() if k[1] == "female"}
    cells = cov._cells(grouped, segment_totals, ["A", "B"], closed_pair)
    relations = cov._relations(grouped, segment_totals, ["A", "B"], closed_pair)
    assert any(key[3] == "enrolled_none" for key in cells) is closed_pair
    assert relations
    for relation in relations:
        assert sum(coefficient * cells[key] for key, coefficient in relation) == 0, relation
    registered = sum(c["|registered"] for c in grouped.values())
    total_segment = cov.ALL if segment_totals else "female"
    assert cells[(cov.ALL, total_segment, "", "registered")] == registered
    assert all(value >= 0 for value in cells.values())


def test_areas_roll_up_by_hyphenated_parts():
    assert cov.area_at_level("R01-D02-L003", 2) == "R01-D02"
    assert cov.area_at_level("R01-D02-L003", 6) == "R01-D02-L003"
    assert cov.area_at_level("", 1) == cov.NO_AREA


def test_csv_cells_never_start_a_formula():
    items = [{"area": "=HYPERLINK(1)", "segment": "-1", "count": None, "rate": 0.5}]
    text = cov.flat_csv(items)
    assert text.splitlines() == ["area,segment,count,rate", "'=HYPERLINK(1),'-1,,0.5"]
