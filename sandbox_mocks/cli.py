"""``srhub sandbox``: run every partner mock locally, offline.

``srhub sandbox up`` starts the five mocks on fixed loopback ports (overridable; 0 picks a free
port), writes the connector configuration the hub reads, prints what runs where, and blocks
until Ctrl-C or SIGTERM, then stops every server and thread cleanly.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click
from click.decorators import FC

from sandbox_mocks.launcher import DEFAULT_PORTS, MOCK_NAMES, SandboxConfig, SandboxError


@click.group()
def sandbox() -> None:
    """Sandbox mocks of every partner system."""


def _port_option(name: str) -> Callable[[FC], FC]:
    flag = "--" + name.replace("_", "-") + "-port"
    return click.option(
        flag,
        name + "_port",
        type=click.IntRange(0, 65535),
        default=DEFAULT_PORTS[name],
        show_default=True,
        help=f"Port of the {name.replace('_', ' ')} mock (0: any free port).",
    )


def _with_port_options(func: FC) -> FC:
    for name in reversed(MOCK_NAMES):
        func = _port_option(name)(func)
    return func


@sandbox.command()
@click.option(
    "--people",
    type=click.IntRange(1, 5_000_000),
    default=2000,
    show_default=True,
    help="Size of the synthetic population.",
)
@click.option(
    "--seed",
    type=click.IntRange(0),
    default=42,
    show_default=True,
    help="Seed of the synthetic world (same seed, same people).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@_with_port_options
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/sandbox"),
    show_default=True,
    help="Where the drop folder and the connectors file go.",
)
@click.option(
    "--connectors-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Connector configuration to write [<work-dir>/connectors.toml].",
)
@click.option(
    "--drop-folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Tax authority drop folder [<work-dir>/tax-drops].",
)
@click.option(
    "--tax-interval",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="Seconds between tax file drops (0: only on demand).",
)
@click.option(
    "--amqp-url",
    envvar="SRHUB_AMQP_URL",
    default=None,
    help="RabbitMQ the program MIS consumes notifications from [$SRHUB_AMQP_URL].",
)
@click.option(
    "--amqp-queue",
    default="sr.deliver.program-mis",
    show_default=True,
    help="Queue the program MIS consumes.",
)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(MOCK_NAMES),
    help="Start only these mocks (repeatable).",
)
@click.option("--verbose", is_flag=True, help="Log at INFO level.")
def up(
    people: int,
    seed: int,
    host: str,
    work_dir: Path,
    connectors_file: Path | None,
    drop_folder: Path | None,
    tax_interval: float,
    amqp_url: str | None,
    amqp_queue: str,
    only: tuple[str, ...],
    verbose: bool,
    **ports: int,
) -> None:
    """Start all mocks and block until Ctrl-C / SIGTERM."""
    from sandbox_mocks.launcher import start_sandbox

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = SandboxConfig(
        people=people,
        seed=seed,
        host=host,
        ports={name: ports[f"{name}_port"] for name in MOCK_NAMES},
        work_dir=work_dir,
        connectors_file=connectors_file,
        drop_folder=drop_folder,
        tax_interval_seconds=tax_interval,
        amqp_url=amqp_url or None,
        amqp_queue=amqp_queue,
        only=only or None,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            running = start_sandbox(config)
        except SandboxError as exc:
            raise click.ClickException(str(exc)) from None
        with running:
            click.echo(running.table())
            click.echo("sandbox running; press Ctrl-C to stop")
            while not stop.wait(0.5):
                pass
            click.echo("stopping sandbox ...")
        click.echo("sandbox stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
