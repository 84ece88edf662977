"""The coverage report: counts by area (at one level) and segment, totals, rates, suppressed.

``coverage_report`` runs the set-based counts (``counts``), rolls the full area codes up to
the asked level, adds the totals (per area over segments, per segment over areas, overall),
states every additive relation between the counts, hides what ``suppression`` says, and
computes rates only from counts that are shown. Every output path (JSON, CSV, the gaps and
overlaps views) reads the one suppressed table this module returns, so none can show more.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry_core.reports.counts import (
    COMMON_MEASURES,
    PROGRAM_MEASURES,
    Facts,
    count_rows,
    enrolled_programs,
    known_programs,
)
from registry_core.reports.enrolments import program_key
from registry_core.reports.suppression import Relation, suppress

ALL = "*"  # the area or segment of a total
NO_AREA = "(none)"
MAX_LEVEL = 6
# Counts never published, only guarded: a small one must not be recoverable.
UNPUBLISHED_COMMON = ("not_scored", "not_enrolled_several", "enrolled_none")
UNPUBLISHED_PROGRAM = ("eligible_enrolled", "not_eligible", "not_enrolled")
# name: (numerator, denominator); a program's measures are of that program.
RATES: dict[str, tuple[str, str]] = {
    "scored_rate": ("scored", "registered"),
    "eligible_rate": ("eligible", "registered"),
    "enrolled_rate": ("enrolled", "registered"),
    "coverage_rate": ("eligible_enrolled", "eligible"),
    "gap_rate": ("eligible_not_enrolled", "eligible"),
    "leakage_rate": ("enrolled_not_eligible", "enrolled"),
}

Key = tuple[str, str, str, str]  # (area, segment, program or "", measure)


def area_at_level(code: str, level: int) -> str:
    """The first ``level`` parts of a hyphenated area code (``R01-D02-L003`` at 2: ``R01-D02``);
    the rule of the data-quality summary and of the area prefixes of roles."""
    if not code:
        return NO_AREA
    return "-".join(code.split("-")[:level])


@dataclass
class CoverageReport:
    """A suppressed coverage table: ``rows`` in area then segment order, totals last."""

    level: int
    segment: str
    unit: str
    programs: list[str]
    min_cell: int
    as_of: date
    rows: list[dict[str, Any]] = field(default_factory=list)
    suppressed_cells: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "segment": self.segment,
            "unit": self.unit,
            "programs": self.programs,
            "as_of": self.as_of.isoformat(),
            "suppression": {
                "min_cell": self.min_cell,
                "suppressed_cells": self.suppressed_cells,
                "rule": "counts from 1 to min_cell - 1 are hidden (null), and so is every count "
                "from which a hidden one could be worked out; rates only from shown counts",
            },
            "rates": {name: {"numerator": n, "denominator": d} for name, (n, d) in RATES.items()},
            "rows": self.rows,
        }


def _relations(
    groups: Iterable[tuple[str, str]],
    segment_totals: bool,
    programs: list[str],
    closed_pair: bool = False,
) -> list[Relation[Key]]:
    """Totals are sums of their parts; within a row the counts are tied together.
    ``closed_pair``: the report's two programs are the only ones with enrolments, so the
    households in neither are registered - enrolled in one - enrolled in the other + enrolled
    in several (which then means both)."""
    groups = list(groups)
    areas = sorted({a for a, _ in groups})
    segments = sorted({s for _, s in groups})
    relations: list[Relation[Key]] = []
    measures = [("", m) for m in COMMON_MEASURES] + [
        (p, m) for p in programs for m in PROGRAM_MEASURES
    ]
    for program, measure in measures:
        for segment in segments:  # over areas
            relations.append(
                [((ALL, segment, program, measure), 1)]
                + [((a, segment, program, measure), -1) for a in areas if (a, segment) in groups]
            )
        if segment_totals:
            for area in areas:  # over segments
                relations.append(
                    [((area, ALL, program, measure), 1)]
                    + [((area, s, program, measure), -1) for s in segments if (area, s) in groups]
                )
            relations.append(
                [((ALL, ALL, program, measure), 1)]
                + [((a, ALL, program, measure), -1) for a in areas]
            )
    rows = set(groups) | {(ALL, s) for s in segments}
    if segment_totals:
        rows |= {(a, ALL) for a in areas} | {(ALL, ALL)}
    for area, segment in rows:

        def cell(program: str, measure: str, a: str = area, s: str = segment) -> Key:
            return (a, s, program, measure)

        relations.append(
            [(cell("", "registered"), 1), (cell("", "scored"), -1), (cell("", "not_scored"), -1)]
        )
        relations.append(
            [
                (cell("", "registered"), 1),
                (cell("", "enrolled_several"), -1),
                (cell("", "not_enrolled_several"), -1),
            ]
        )
        if closed_pair:
            first, second = programs
            relations.append(
                [
                    (cell("", "registered"), 1),
                    (cell(first, "enrolled"), -1),
                    (cell(second, "enrolled"), -1),
                    (cell("", "enrolled_several"), 1),
                    (cell("", "enrolled_none"), -1),
                ]
            )
        for p in programs:
            relations += [
                [
                    (cell(p, "eligible"), 1),
                    (cell(p, "eligible_not_enrolled"), -1),
                    (cell(p, "eligible_enrolled"), -1),
                ],
                [
                    (cell(p, "enrolled"), 1),
                    (cell(p, "enrolled_not_eligible"), -1),
                    (cell(p, "eligible_enrolled"), -1),
                ],
                [
                    (cell("", "registered"), 1),
                    (cell(p, "eligible"), -1),
                    (cell(p, "not_eligible"), -1),
                ],
                [
                    (cell("", "registered"), 1),
                    (cell(p, "enrolled"), -1),
                    (cell(p, "not_enrolled"), -1),
                ],
            ]
    return relations


def _cells(
    grouped: dict[tuple[str, str], dict[str, int]],
    segment_totals: bool,
    programs: list[str],
    closed_pair: bool = False,
) -> dict[Key, int]:
    """Every cell, published or not, with the totals summed from the inner cells."""
    cells: dict[Key, int] = {}
    for (area, segment), counts in grouped.items():
        targets = [(area, segment), (ALL, segment)]
        if segment_totals:
            targets += [(area, ALL), (ALL, ALL)]
        for target in targets:
            for name, value in counts.items():
                program, _, measure = name.rpartition("|")
                key = (*target, program, measure)
                cells[key] = cells.get(key, 0) + value
    for area, segment in {(a, s) for a, s, _, _ in cells}:
        registered = cells[(area, segment, "", "registered")]
        cells[(area, segment, "", "not_scored")] = registered - cells[(area, segment, "", "scored")]
        cells[(area, segment, "", "not_enrolled_several")] = (
            registered - cells[(area, segment, "", "enrolled_several")]
        )
        if closed_pair:
            first, second = programs
            cells[(area, segment, "", "enrolled_none")] = (
                registered
                - cells[(area, segment, first, "enrolled")]
                - cells[(area, segment, second, "enrolled")]
                + cells[(area, segment, "", "enrolled_several")]
            )
        for p in programs:
            eligible = cells[(area, segment, p, "eligible")]
            enrolled = cells[(area, segment, p, "enrolled")]
            cells[(area, segment, p, "eligible_enrolled")] = (
                eligible - cells[(area, segment, p, "eligible_not_enrolled")]
            )
            cells[(area, segment, p, "not_eligible")] = registered - eligible
            cells[(area, segment, p, "not_enrolled")] = registered - enrolled
    return cells


def _rate(numerator: int | None, denominator: int | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 4)


def coverage_report(
    session: Session,
    *,
    level: int,
    segment: str,
    programs: list[str] | None,
    min_cell: int,
    as_of: date,
    facts: Facts | None = None,
) -> CoverageReport:
    """The suppressed coverage table of ``programs`` (None: every known program)."""
    if not 1 <= level <= MAX_LEVEL:
        raise ValueError(f"level must be from 1 to {MAX_LEVEL}")
    codes = (
        sorted({program_key(p) for p in programs})
        if programs is not None
        else known_programs(session)
    )
    grouped: dict[tuple[str, str], dict[str, int]] = {}
    for counted in count_rows(session, segment, codes, as_of, facts or Facts()):
        counts = grouped.setdefault((area_at_level(counted.area, level), counted.segment), {})
        values = {f"|{m}": getattr(counted, m) for m in COMMON_MEASURES}
        for code, by_measure in zip(codes, counted.programs, strict=True):
            values |= {f"{code}|{m}": v for m, v in by_measure.items()}
        for name, value in values.items():
            counts[name] = counts.get(name, 0) + value
    segment_totals = segment != "none"
    closed_pair = len(codes) == 2 and set(enrolled_programs(session)) <= set(codes)
    cells = _cells(grouped, segment_totals, codes, closed_pair)
    unpublished = {key for key in cells if key[3] in UNPUBLISHED_COMMON + UNPUBLISHED_PROGRAM}
    result = suppress(
        cells,
        _relations(grouped, segment_totals, codes, closed_pair),
        min_cell,
        is_total=lambda key: ALL in key[:2],
        unpublished=unpublished,
    )
    unit = "persons" if segment in ("age_band", "sex", "disability") else "households"
    report = CoverageReport(level, segment, unit, codes, min_cell, as_of)
    report.suppressed_cells = len(result.hidden)

    def shown(area: str, seg: str, program: str, measure: str) -> int | None:
        key = (area, seg, program, measure)
        if key in result.hidden or key not in cells:
            return None
        return cells[key]

    order = sorted(
        {(a, s) for a, s, _, _ in cells}, key=lambda g: (g[0] == ALL, g[0], g[1] == ALL, g[1])
    )
    for area, seg in order:
        common = {m: shown(area, seg, "", m) for m in COMMON_MEASURES}
        row: dict[str, Any] = {"area": area, "segment": seg, **common}
        row["scored_rate"] = _rate(common["scored"], common["registered"])
        row["programs"] = {}
        for p in codes:
            measures: dict[str, Any] = {m: shown(area, seg, p, m) for m in PROGRAM_MEASURES}
            eligible, gap = measures["eligible"], measures["eligible_not_enrolled"]
            both = None if eligible is None or gap is None else eligible - gap
            measures["eligible_rate"] = _rate(measures["eligible"], common["registered"])
            measures["enrolled_rate"] = _rate(measures["enrolled"], common["registered"])
            measures["coverage_rate"] = _rate(both, eligible)
            measures["gap_rate"] = _rate(gap, eligible)
            measures["leakage_rate"] = _rate(
                measures["enrolled_not_eligible"], measures["enrolled"]
            )
            row["programs"][p] = measures
        report.rows.append(row)
    return report


CSV_COMMON = ("registered", "scored", "scored_rate", "enrolled_several")
CSV_PROGRAM = (
    *PROGRAM_MEASURES,
    "eligible_rate",
    "enrolled_rate",
    "coverage_rate",
    "gap_rate",
    "leakage_rate",
)


def report_csv(report: CoverageReport, rows: list[dict[str, Any]] | None = None) -> str:
    """The report (or some of its rows) as CSV: one line per area, segment and program;
    a hidden count is an empty field, as in JSON it is null."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["area", "segment", *CSV_COMMON, "program", *CSV_PROGRAM])
    for row in report.rows if rows is None else rows:
        common = [_field(row.get(name)) for name in CSV_COMMON]
        programs = row["programs"] or {"": {}}
        for code, measures in programs.items():
            writer.writerow(
                [
                    _safe(row["area"]),
                    _safe(row["segment"]),
                    *common,
                    _safe(code),
                    *(_field(measures.get(name)) for name in CSV_PROGRAM),
                ]
            )
    return out.getvalue()


def flat_csv(items: list[dict[str, Any]]) -> str:
    """Flat items (a view's) as CSV, the columns of the first; hidden counts empty."""
    if not items:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(items[0]))
    for item in items:
        writer.writerow([_safe(v) if isinstance(v, str) else _field(v) for v in item.values()])
    return out.getvalue()


def _field(value: Any) -> str:
    return "" if value is None else str(value)


def _safe(text: str) -> str:
    """A text field a spreadsheet will not run as a formula (area codes come from partners)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _gap_order(item: tuple[dict[str, Any], str]) -> tuple[bool, int, str, str]:
    """Largest shown gap first; hidden ones after, by area (a rank would hint at them)."""
    row, program = item
    gap = row["programs"][program]["eligible_not_enrolled"]
    return (gap is None, -(gap or 0), row["area"], row["segment"])


def gaps_view(report: CoverageReport) -> list[dict[str, Any]]:
    """Eligible but not enrolled, per area, segment and program, largest first (totals out)."""
    items = [
        (row, program)
        for row in report.rows
        if ALL not in (row["area"], row["segment"])
        for program in row["programs"]
    ]
    return [
        {
            "area": row["area"],
            "segment": row["segment"],
            "program": program,
            **{
                name: row["programs"][program][name]
                for name in ("eligible", "enrolled", "eligible_not_enrolled", "gap_rate")
            },
        }
        for row, program in sorted(items, key=_gap_order)
    ]


def overlaps_view(report: CoverageReport) -> list[dict[str, Any]]:
    """Enrolled but not eligible per program, and enrolled in several programs, per row."""
    return [
        {
            "area": row["area"],
            "segment": row["segment"],
            "registered": row["registered"],
            "enrolled_several": row["enrolled_several"],
            "programs": {
                program: {
                    name: measures[name]
                    for name in ("enrolled", "enrolled_not_eligible", "leakage_rate")
                }
                for program, measures in row["programs"].items()
            },
        }
        for row in report.rows
    ]


def flat_overlaps(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The overlaps view with one item per program (for CSV)."""
    return [
        {k: v for k, v in item.items() if k != "programs"} | {"program": program, **measures}
        for item in items
        for program, measures in (item["programs"] or {"": {}}).items()
    ]
