"""``srhub reports``: the aggregate coverage reports from the command line.

    srhub reports coverage [--level N] [--segment S] [--program CODE ...]
                           [--view table|gaps|overlaps] [--format json|csv] [--as-of DATE]
    srhub reports snapshot

The same suppressed table as ``GET /api/v1/reports/coverage`` (``[srhub.reports] min_cell``
applies here too: an operator's export is no more detailed than the API's), without an HTTP
timeout for a report over many small areas. docs/policy.md, "Coverage reports".
"""

from __future__ import annotations

import json
from datetime import date

import click

from hub.cli.database import hub_runtime
from registry_core.reports.counts import SEGMENTS
from registry_core.reports.coverage import (
    MAX_LEVEL,
    coverage_report,
    flat_csv,
    flat_overlaps,
    gaps_view,
    overlaps_view,
    report_csv,
)
from standards.timeutil import utcnow


@click.group()
def reports() -> None:
    """Aggregate coverage reports, small-cell suppressed (docs/policy.md)."""


@reports.command("coverage")
@click.option("--level", type=click.IntRange(1, MAX_LEVEL), default=1, show_default=True)
@click.option("--segment", type=click.Choice(SEGMENTS), default="none", show_default=True)
@click.option("--program", "programs", multiple=True, help="Program code (repeat); default all.")
@click.option(
    "--view", type=click.Choice(["table", "gaps", "overlaps"]), default="table", show_default=True
)
@click.option("--format", "form", type=click.Choice(["json", "csv"]), default="json")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
def coverage_command(
    level: int,
    segment: str,
    programs: tuple[str, ...],
    view: str,
    form: str,
    as_of: object,
) -> None:
    """Registered, scored, eligible and enrolled per program by area and segment."""
    day = as_of.date() if hasattr(as_of, "date") else utcnow().date()
    assert isinstance(day, date)
    with hub_runtime() as runtime:
        settings = runtime.settings.reports
        facts = settings.facts()
        with runtime.sessions() as session:
            report = coverage_report(
                session,
                level=level,
                segment=segment,
                programs=list(programs) or None,
                min_cell=settings.min_cell,
                as_of=day,
                facts=facts,
            )
    if view == "table":
        text = report_csv(report) if form == "csv" else json.dumps(report.as_dict(), indent=2)
    else:
        items = gaps_view(report) if view == "gaps" else overlaps_view(report)
        if form == "csv":
            text = flat_csv(flat_overlaps(items) if view == "overlaps" else items)
        else:
            text = json.dumps(items, indent=2)
    click.echo(text, nl=not text.endswith("\n"))


@reports.command("snapshot")
def snapshot_command() -> None:
    """Take (or retake) today's snapshot of the policy headline counts (the policy page's
    trends; the scheduled jobs take one a day)."""
    from registry_core.reports.snapshots import take_snapshot

    day = utcnow().date()
    with hub_runtime() as runtime:
        settings = runtime.settings.reports
        with runtime.sessions.begin() as session:
            rows = take_snapshot(
                session, day=day, min_cell=settings.min_cell, facts=settings.facts()
            )
    click.echo(f"snapshot {day.isoformat()}: {rows} rows")
