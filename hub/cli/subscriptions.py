"""``srhub subscriptions``: operator commands for subscriptions (list, re-drive)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from hub.cli.database import hub_runtime
from hub.cli.errors import CommandError
from hub.settings import load_settings


@click.group()
def subscriptions() -> None:
    """Subscriptions of programs to registry events."""


@subscriptions.command("list")
def list_command() -> None:
    """Show every subscription with its channel and status."""
    from hub.subscriptions import service

    with hub_runtime() as runtime, runtime.sessions() as session:
        for s in service.list_for(session, None):
            click.echo(
                f"{s.code}\t{s.program_code}\t{s.channel}\t{s.status}\t{','.join(s.event_types)}"
            )


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@subscriptions.command("redrive")
@click.argument("code")
@click.option("--from-sequence", type=click.IntRange(min=1), help="First outbox sequence to send.")
@click.option("--since", help="Send events from this time on (ISO 8601).")
def redrive_command(code: str, from_sequence: int | None, since: str | None) -> None:
    """Queue the events subscription CODE matches again, from a sequence or a time."""
    from hub.broker import connect
    from hub.subscriptions.redrive import redrive
    from registry_core.errors import NotFound

    if (from_sequence is None) == (since is None):
        raise click.UsageError("give exactly one of --from-sequence N or --since ISO-TIME")
    moment = _parse_since(since)
    settings = load_settings()
    with hub_runtime(settings) as runtime:
        try:
            with connect(settings, wait_for=10) as broker:
                examined, queued = redrive(
                    runtime, broker, code, from_sequence=from_sequence, since=moment
                )
        except NotFound:
            raise CommandError(
                f"no subscription with code {code!r}; see `srhub subscriptions list`"
            ) from None
    click.echo(f"examined {examined} event(s); queued {queued} for subscription {code}")


@subscriptions.command("deliver")
def deliver_command() -> None:
    """Run the webhook / DCI delivery workers (and the AMQP forwarders when the hub is on the
    embedded queue with SRHUB_DELIVERY_AMQP_URL) in this process until SIGTERM or Ctrl-C."""
    import signal
    import threading

    from hub.subscriptions.delivery import start_delivery_workers

    settings = load_settings()
    with hub_runtime(settings) as runtime:
        done = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: done.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        workers = start_delivery_workers(settings, runtime)
        amqp = " and AMQP subscription" if settings.forwards_amqp_deliveries else ""
        click.echo(f"srhub: delivery workers running (one per webhook / DCI{amqp} subscription)")
        try:
            done.wait()
        finally:
            workers.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
