"""``srhub monitoring prune|health|alerts``: retention on demand and the health model in a
terminal, for operators without the dashboard (or when the API is what is broken)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import timedelta

import click

from hub.cli.database import hub_runtime
from hub.settings import load_settings


@click.group("monitoring")
def monitoring() -> None:
    """Message-log retention, health and alerts."""


@monitoring.command("prune")
@click.option(
    "--max-age-days",
    type=click.FloatRange(min=0),
    default=None,
    help="Override message_log_max_age_days.",
)
@click.option(
    "--max-rows", type=click.IntRange(min=0), default=None, help="Override message_log_max_rows."
)
@click.option(
    "--max-bytes", type=click.IntRange(min=0), default=None, help="Override message_log_max_bytes."
)
def prune(max_age_days: float | None, max_rows: int | None, max_bytes: int | None) -> None:
    """Delete message-log rows beyond the retention limits, and what every other retention
    job finds past its age (DCI transactions, delivery log, processed-message ids); print what
    was deleted as JSON."""
    from hub.assembly import retention_jobs
    from hub.monitoring.message_log import RetentionPolicy
    from hub.workers.retention import run_retention

    settings = load_settings()
    policy = RetentionPolicy.from_settings(settings.monitoring)
    if max_age_days is not None:
        policy = replace(policy, max_age=timedelta(days=max_age_days))
    if max_rows is not None:
        policy = replace(policy, max_rows=max_rows)
    if max_bytes is not None:
        policy = replace(policy, max_bytes=max_bytes)
    jobs = retention_jobs(settings, message_log=policy)
    with hub_runtime(settings) as runtime:
        results = run_retention(runtime.sessions, jobs)
    result = results.pop("message_log")
    click.echo(json.dumps({**asdict(result), "deleted": result.deleted, "other_logs": results}))


@monitoring.command("health")
def health() -> None:
    """Print this process's view of the health model as JSON (database, broker, queues,
    subscriptions, message log; connectors and workers only show in the running hub).

    It opens the database without the schema check of the other commands: a database that
    is down is what it reports (and exits 1), not a reason to stop."""
    from hub.monitoring.health import MonitoringContext, health_snapshot
    from hub.runtime import HubRuntime

    runtime = HubRuntime(load_settings())
    context = MonitoringContext(runtime.settings, runtime)
    try:
        snapshot = health_snapshot(context)
    finally:
        context.broker_probe().close()
        runtime.close()
    click.echo(json.dumps(snapshot, indent=2, default=str))
    if snapshot["status"] == "down":
        raise SystemExit(1)


@monitoring.command("alerts")
@click.option("--state", type=click.Choice(["firing", "resolved"]), default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
def alerts(state: str | None, limit: int) -> None:
    """Print alerts as JSON lines, firing first."""
    from hub.monitoring.alerts import list_alerts

    with hub_runtime() as runtime, runtime.sessions() as session:
        for alert in list_alerts(session, state=state, limit=limit):
            click.echo(json.dumps(alert))
