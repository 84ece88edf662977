"""``srhub worker relay|ingest|dispatch|crosscheck|quality|scoring``: one worker per process.

Start as many ``ingest`` and ``dispatch`` processes as the load needs: they compete for the
same queues. Relays may run several at once too (they do not double-publish in the normal
case), one is usually enough. Each process waits for an unreachable broker instead of
exiting, logging its status, and stops gracefully on SIGTERM.

A worker never migrates: when the database answers at start and its schema is not at head,
it stops with what to run (``srhub db upgrade``) rather than fail every message it takes.
A database that does not answer yet is waited for like the broker.
"""

from __future__ import annotations

import contextlib
import logging

import click

from hub.cli.database import check_schema
from hub.logging_setup import configure_logging
from hub.settings import load_settings


def _run(kind: str, batch_size: int | None, prefetch: int | None = None) -> None:
    from hub.assembly import run_worker_process
    from hub.dbschema import DatabaseUnavailable

    settings = load_settings()
    with contextlib.suppress(DatabaseUnavailable):  # waited for, like the broker
        check_schema(settings)
    configure_logging(settings.log_level)
    if settings.log_level.upper() != "DEBUG":
        # pika logs every failed connection attempt as an ERROR with a traceback; the worker
        # reports the same thing once per attempt in one line (hub.workers.connect).
        logging.getLogger("pika").setLevel(logging.CRITICAL)
    broker = "embedded queue in the database" if settings.uses_embedded_broker else "RabbitMQ"
    click.echo(f"srhub worker {kind}: broker {broker}; SIGTERM or Ctrl-C stops it", err=True)
    status = run_worker_process(kind, settings, batch_size=batch_size, prefetch=prefetch)
    snapshot = status.snapshot()
    click.echo(
        f"srhub worker {kind}: stopped; processed={snapshot['processed']} "
        f"duplicates={snapshot['duplicates']} failed={snapshot['failed']} "
        f"dead_lettered={snapshot['dead_lettered']} requeued={snapshot['requeued']}",
        err=True,
    )


@click.group()
def worker() -> None:
    """Run one pipeline worker in this process (relay, ingest, dispatch, crosscheck, quality
    or scoring)."""


@worker.command()
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Outbox events published per confirmed batch.",
)
def relay(batch_size: int) -> None:
    """Publish outbox events to sr.events (at least once, in order per subject)."""
    _run("relay", batch_size)


_batch = click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Messages handled per database transaction (default 100).",
)
_prefetch = click.option(
    "--prefetch",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Unacknowledged deliveries in flight (default 200).",
)


@worker.command()
@_batch
@_prefetch
def ingest(batch_size: int | None, prefetch: int | None) -> None:
    """Consume sr.ingest: map partner records into the registry."""
    _run("ingest", batch_size, prefetch)


@worker.command()
@_batch
@_prefetch
def dispatch(batch_size: int | None, prefetch: int | None) -> None:
    """Consume sr.dispatch: deliver change events to subscriptions."""
    _run("dispatch", batch_size, prefetch)


@worker.command()
@_batch
@_prefetch
def crosscheck(batch_size: int | None, prefetch: int | None) -> None:
    """Consume sr.crosscheck: queue national ID checks of registrations, by policy."""
    _run("crosscheck", batch_size, prefetch)


@worker.command()
@_batch
@_prefetch
def quality(batch_size: int | None, prefetch: int | None) -> None:
    """Consume sr.quality: re-check changed households and persons for data-quality issues."""
    _run("quality", batch_size, prefetch)


@worker.command()
@_batch
@_prefetch
def scoring(batch_size: int | None, prefetch: int | None) -> None:
    """Consume sr.scoring: re-score households after their events, decide eligibility."""
    _run("scoring", batch_size, prefetch)
