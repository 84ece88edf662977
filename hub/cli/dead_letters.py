"""``srhub dead-letters list|replay|discard``: the operator's hands on ``sr.dead.letters``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hub.cli.database import check_schema
from hub.settings import load_settings

if TYPE_CHECKING:
    from hub.broker.base import Broker

F = TypeVar("F", bound=Callable[..., None])


def _broker(wait: float) -> Broker:
    """The hub's broker with the worker queues declared. On the embedded queue the broker is
    the database, so its schema must be at head (``hub.cli.database``)."""
    from hub.broker import connect
    from hub.workers.topology import WORKER_QUEUES

    settings = load_settings()
    if settings.uses_embedded_broker:
        check_schema(settings)
    broker = connect(settings, wait_for=wait)
    broker.declare_topology(list(WORKER_QUEUES))
    return broker


_wait = click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to keep trying an unreachable broker.",
)
_filters = [
    click.option("--id", "message_ids", multiple=True, help="Only these message ids."),
    click.option("--error-class", default=None, help="Only dead letters of this error class."),
    click.option("--routing-key", default=None, help="Only this original routing key."),
    click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000)),
    _wait,
]


def _with_filters(func: F) -> F:
    for option in reversed(_filters):
        func = option(func)
    return func


@click.group("dead-letters")
def dead_letters() -> None:
    """List, replay or discard dead-lettered messages."""


def _act(
    action: Any,
    done: str,
    message_ids: tuple[str, ...],
    error_class: str | None,
    routing_key: str | None,
    limit: int,
    wait: float,
) -> None:
    """Run ``action`` (replay or discard) on the selected dead letters and say what it did."""
    from hub.deadletters import select

    chosen = select(message_ids=message_ids, error_class=error_class, routing_key=routing_key)
    with _broker(wait) as broker:
        outcome = action(broker, chosen, limit)
    click.echo(f"{done} {len(outcome.selected)}; kept {outcome.kept}")


@dead_letters.command("list")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@_wait
def list_command(limit: int, wait: float) -> None:
    """Print dead letters as JSON lines: id, routing key, error class, reason, attempts."""
    from hub.deadletters import list_dead_letters

    with _broker(wait) as broker:
        for letter in list_dead_letters(broker, limit):
            click.echo(json.dumps(asdict(letter)))


@dead_letters.command("replay")
@_with_filters
def replay_command(
    message_ids: tuple[str, ...],
    error_class: str | None,
    routing_key: str | None,
    limit: int,
    wait: float,
) -> None:
    """Send selected dead letters back to where they came from."""
    from hub.deadletters import replay

    _act(replay, "replayed", message_ids, error_class, routing_key, limit, wait)


@dead_letters.command("discard")
@_with_filters
@click.confirmation_option(prompt="Discard the selected dead letters for good?")
def discard_command(
    message_ids: tuple[str, ...],
    error_class: str | None,
    routing_key: str | None,
    limit: int,
    wait: float,
) -> None:
    """Drop selected dead letters for good."""
    from hub.deadletters import discard

    _act(discard, "discarded", message_ids, error_class, routing_key, limit, wait)
