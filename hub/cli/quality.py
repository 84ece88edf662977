"""``srhub quality scan|summary``: the full data-quality scan and the counts, from a terminal.

    srhub quality scan [--batch-size N]   # check every household and person; progress on stderr
    srhub quality summary [--level N]     # live issues by kind and area, by state (JSON)

``scan`` carries on a scan that is already running (started by the API, the dashboard, the
schedule or a command that stopped) rather than starting a second one, and prints the scan's
final figures as JSON. It needs no keys: the checks read dates, memberships, incomes and the
delivery log, never identifier values.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from hub.settings import Settings, load_settings


@contextmanager
def _sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    from hub.dbschema import require_current_schema
    from registry_core.db import make_engine, make_session_factory

    engine = make_engine(settings.effective_database_url)
    try:
        require_current_schema(engine)
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@click.group("quality")
def quality() -> None:
    """Data-quality checks: the full scan and the issue counts."""


@quality.command("scan")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Households (then persons) per transaction (default: settings.quality).",
)
def scan(batch_size: int | None) -> None:
    """Check every household and person and keep the issue table in step (a fixed problem's
    issue is resolved, a new one opened); progress on stderr, the result as JSON."""
    from hub.quality import scan as scans

    settings = load_settings()
    config = settings.quality
    if batch_size:
        config = replace(config, scan_batch_size=batch_size)
    with _sessions(settings) as sessions:
        with sessions.begin() as session:
            running = scans.running_scan(session)
            if running is not None:
                scan_id = running.id
                click.echo(f"srhub quality: carrying on the running scan {scan_id}", err=True)
            else:
                scan_id = scans.start_scan(session, "cli").id
                click.echo(f"srhub quality: scan {scan_id} started", err=True)
        result = scans.run_to_end(sessions, uuid.UUID(str(scan_id)), config, report=_reporter())
    click.echo(json.dumps(result))
    if result["state"] != "finished":
        raise SystemExit(1)


def _reporter() -> Any:
    """Print progress at most once a second, and at the end."""
    last = [0.0]

    def report(state: dict[str, Any]) -> None:
        now = time.monotonic()
        if state["state"] == "running" and now - last[0] < 1.0:
            return
        last[0] = now
        click.echo(
            f"srhub quality: {state['percent']}% households "
            f"{state['households_checked']}/{state['households_total']} persons "
            f"{state['persons_checked']}/{state['persons_total']} opened {state['opened']} "
            f"resolved {state['resolved']}",
            err=True,
        )

    return report


@quality.command("summary")
@click.option("--level", type=click.IntRange(1, 6), default=1, help="Area code parts to group by.")
@click.option("--days", type=click.IntRange(1, 366), default=30, help="Days of trend.")
def summary(level: int, days: int) -> None:
    """Live issues by kind and area, issues by state, and the daily trend, as JSON."""
    from hub.quality import service
    from standards.timeutil import utcnow

    settings = load_settings()
    with _sessions(settings) as sessions, sessions() as session:
        found = service.summary(
            session, service.IssueFilter(), level=level, days=days, today=utcnow().date()
        )
    click.echo(json.dumps(found))
