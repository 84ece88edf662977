"""``srhub dead-letters list|replay|discard``: the operator's hands on ``sr.dead.letters``."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from hub.settings import load_settings


def _broker():  # type: ignore[no-untyped-def]
    from hub.broker import connect
    from hub.workers.topology import WORKER_QUEUES

    broker = connect(load_settings(), wait_for=10)
    broker.declare_topology(list(WORKER_QUEUES))
    return broker


_filters = [
    click.option("--id", "message_ids", multiple=True, help="Only these message ids."),
    click.option("--error-class", default=None, help="Only dead letters of this error class."),
    click.option("--routing-key", default=None, help="Only this original routing key."),
    click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000)),
]


def _with_filters(func):  # type: ignore[no-untyped-def]
    for option in reversed(_filters):
        func = option(func)
    return func


@click.group("dead-letters")
def dead_letters() -> None:
    """List, replay or discard dead-lettered messages."""


@dead_letters.command("list")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
def list_command(limit: int) -> None:
    """Print dead letters as JSON lines: id, routing key, error class, reason, attempts."""
    from hub.deadletters import list_dead_letters

    with _broker() as broker:
        for letter in list_dead_letters(broker, limit):
            click.echo(json.dumps(asdict(letter)))


@dead_letters.command("replay")
@_with_filters
def replay_command(message_ids, error_class, routing_key, limit) -> None:  # type: ignore[no-untyped-def]
    """Send selected dead letters back to where they came from."""
    from hub.deadletters import replay, select

    with _broker() as broker:
        outcome = replay(
            broker,
            select(message_ids=message_ids, error_class=error_class, routing_key=routing_key),
            limit,
        )
    click.echo(f"replayed {len(outcome.selected)}; kept {outcome.kept}")


@dead_letters.command("discard")
@_with_filters
@click.confirmation_option(prompt="Discard the selected dead letters for good?")
def discard_command(message_ids, error_class, routing_key, limit) -> None:  # type: ignore[no-untyped-def]
    """Drop selected dead letters for good."""
    from hub.deadletters import discard, select

    with _broker() as broker:
        outcome = discard(
            broker,
            select(message_ids=message_ids, error_class=error_class, routing_key=routing_key),
            limit,
        )
    click.echo(f"discarded {len(outcome.selected)}; kept {outcome.kept}")
