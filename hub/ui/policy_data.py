"""The numbers of the policy pages, all from the suppressed coverage reports
(``registry_core.reports``) and the GIS outlines (``registry_core.geography``).

Nothing here reads a household one by one: every figure is a cell of a coverage report,
suppressed by ``[srhub.reports] min_cell`` like the reports API, or a layer value the GIS
published for an area. A count the report hides stays hidden (None) on every page, in the map
(the area is drawn hatched), in the tables and in the budgets computed from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.settings.reports import ReportSettings
from hub.ui.maps import LegendClass, MapArea, classes
from registry_core.geography.service import admin_areas, area_levels
from registry_core.reports.coverage import ALL, NO_AREA, coverage_report
from registry_core.reports.snapshots import COMMON, snapshot_series
from registry_core.simulation.budget import budget
from registry_core.simulation.tables import BenefitSchedule

TREND_DAYS = 90


@dataclass(frozen=True)
class Layer:
    """A map layer: what it shows and how it is coloured."""

    title: str
    source: str  # "program": a measure of the coverage report; "gis": an area layer value
    share: bool  # a 0..1 share (classes over 0..100%) rather than a count
    palette: str
    unit: str


LAYERS: dict[str, Layer] = {
    "coverage_rate": Layer(
        "Coverage rate", "program", True, "green", "of eligible households enrolled"
    ),
    "gap": Layer("Eligible, not enrolled", "program", False, "orange", "households"),
    "eligible_rate": Layer("Eligible rate", "program", True, "blue", "of households eligible"),
    "poverty_rate": Layer("Poverty rate (GIS)", "gis", True, "purple", "of people poor"),
    "flood_risk": Layer("Flood risk (GIS)", "gis", True, "teal", "of the area in flood zones"),
}
PROGRAM_MEASURE = {
    "coverage_rate": "coverage_rate",
    "gap": "eligible_not_enrolled",
    "eligible_rate": "eligible_rate",
}
# The counts a rate of the map needs shown (hidden: the area is drawn as suppressed).
RATE_PARTS = {
    "coverage_rate": ("eligible", "eligible_not_enrolled"),
    "eligible_rate": ("eligible",),
    "gap": ("eligible_not_enrolled",),
}


def _total(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The whole registry's row; zeros when nobody is registered (a report without rows)."""
    empty = {"registered": 0, "scored": 0, "enrolled_several": 0, "programs": {}}
    return next((r for r in rows if r["area"] == ALL and r["segment"] in (ALL, "all")), empty)


def headline(session: Session, settings: ReportSettings, as_of: date) -> dict[str, Any]:
    """The whole registry: households (report by household) and people (the report of people
    by disability, whose totals count the current members), per program; hidden counts are
    None. Of the three segments of people, disability has the fewest values (two), so the
    fewest small cells for the suppression to protect: its totals are the ones most often
    shown (by sex or age band a total is hidden more often, to protect a small cell of one
    sex or band)."""
    facts = settings.facts()
    households = coverage_report(
        session,
        level=1,
        segment="none",
        programs=None,
        min_cell=settings.min_cell,
        as_of=as_of,
        facts=facts,
    )
    people = coverage_report(
        session,
        level=1,
        segment="disability",
        programs=households.programs,
        min_cell=settings.min_cell,
        as_of=as_of,
        facts=facts,
    )
    return {
        "programs": households.programs,
        "households": _total(households.rows),
        "persons": _total(people.rows),
        "min_cell": settings.min_cell,
    }


def _schedule(session: Session, program: str) -> dict[str, Any] | None:
    """The newest benefit schedule of ``program`` (its code compared without case, as the
    reports compare programs)."""
    row = session.scalar(
        select(BenefitSchedule)
        .where(func.upper(BenefitSchedule.program_code) == program.upper())
        .order_by(BenefitSchedule.version.desc())
        .limit(1)
    )
    return dict(row.definition) if row is not None else None


def _budget(schedule: dict[str, Any] | None, households: Any, persons: Any) -> Any:
    """What paying ``households`` (or their ``persons``) costs; None when a count is hidden
    or the schedule caps persons per household (that needs a simulation's per-household
    count, which an aggregate does not have)."""
    if schedule is None or households is None:
        return None
    if schedule.get("per") == "person" and (persons is None or schedule.get("max_persons")):
        return None
    return budget(schedule, int(households), int(persons or 0), int(persons or 0))


def program_comparison(session: Session, top: dict[str, Any]) -> list[dict[str, Any]]:
    """Per program: eligible, enrolled, gap, overlap (households; eligible and enrolled also
    in people), coverage rate, and the budget of serving the eligible and the enrolled."""
    found = []
    households, persons = top["households"], top["persons"]
    for program in top["programs"]:
        hh = households["programs"].get(program, {})
        pp = persons["programs"].get(program, {})
        schedule = _schedule(session, program)
        found.append(
            {
                "program": program,
                **{k: hh.get(k) for k in ("eligible", "enrolled", "eligible_not_enrolled")},
                "enrolled_not_eligible": hh.get("enrolled_not_eligible"),
                "coverage_rate": hh.get("coverage_rate"),
                "eligible_people": pp.get("eligible"),
                "enrolled_people": pp.get("enrolled"),
                "schedule": schedule,
                "budget_eligible": _budget(schedule, hh.get("eligible"), pp.get("eligible")),
                "budget_enrolled": _budget(schedule, hh.get("enrolled"), pp.get("enrolled")),
            }
        )
    return found


@dataclass(frozen=True)
class MapView:
    """A map ready to draw, and what the page says about it."""

    areas: list[MapArea]
    legend: list[LegendClass]
    level: int
    levels: list[int]
    layer: str
    program: str | None
    not_drawn: int  # households' areas the GIS has no outline for (or no area at all)


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def map_view(
    session: Session,
    settings: ReportSettings,
    as_of: date,
    *,
    level: int | None,
    layer: str,
    program: str | None,
    programs: Sequence[str],
) -> MapView:
    """The areas of ``level`` (default: the coarsest drawn) coloured by ``layer``."""
    levels = area_levels(session)
    chosen = level if level in levels else (levels[0] if levels else 1)
    spec = LAYERS[layer]
    outlines = admin_areas(session, chosen) if levels else []
    program = program if program in programs else (programs[0] if programs else None)
    values: dict[str, tuple[float | None, bool, str]] = {}
    not_drawn = 0
    if spec.source == "gis":
        for area in outlines:
            value = area["layers"].get(layer)
            number = float(value) if isinstance(value, int | float) else None
            values[area["code"]] = (
                number,
                False,
                _percent(number) if number is not None else "no value",
            )
    elif program is not None:
        report = coverage_report(
            session,
            level=chosen,
            segment="none",
            programs=[program],
            min_cell=settings.min_cell,
            as_of=as_of,
            facts=settings.facts(),
        )
        drawn = {a["code"] for a in outlines}
        for row in report.rows:
            if row["area"] == ALL:
                continue
            if row["area"] == NO_AREA or row["area"] not in drawn:
                not_drawn += 1
                continue
            measures = row["programs"][program]
            hidden = any(measures[p] is None for p in RATE_PARTS[layer])
            value = measures[PROGRAM_MEASURE[layer]]
            if hidden:
                values[row["area"]] = (None, True, "")
            elif value is None:  # shown counts, but nothing to divide by (none eligible)
                values[row["area"]] = (None, False, "no eligible households")
            elif spec.share:
                parts = f"{measures['eligible']} eligible"
                values[row["area"]] = (float(value), False, f"{_percent(value)} ({parts})")
            else:
                values[row["area"]] = (float(value), False, f"{value} households")
    areas = []
    for area in outlines:
        value, suppressed, shown = values.get(area["code"], (None, False, "no households"))
        areas.append(
            MapArea(area["code"], area["name"], area["geometry"], value, suppressed, shown)
        )
    legend = classes(
        [a.value for a in areas if a.value is not None], spec.palette, share=spec.share
    )
    return MapView(areas, legend, chosen, levels, layer, program, not_drawn)


def trend(session: Session, today: date, days: int = TREND_DAYS) -> dict[str, Any]:
    """The snapshots of the last ``days`` days: day labels, registered households, and per
    program eligible, enrolled and the gap (None where a day's count was hidden or the
    program not yet known)."""
    series = snapshot_series(session, today - timedelta(days=days - 1))
    labels = sorted(series)
    programs = sorted({p for day in series.values() for p in day if p != COMMON})
    registered = [series[d].get(COMMON, {}).get("registered") for d in labels]
    per_program = {
        p: {
            measure: [series[d].get(p, {}).get(measure) for d in labels]
            for measure in ("eligible", "enrolled", "eligible_not_enrolled")
        }
        for p in programs
    }
    return {"days": labels, "registered": registered, "programs": per_program}
