"""What ``srhub run`` starts beside the API in the embedded setup: the sandbox partner systems,
the registry's initial households, the connectors and the workers — each stopped cleanly by the
run command's ExitStack."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from typing import Any

import click

from hub.runtime import HubRuntime
from hub.settings import Settings

log = logging.getLogger("srhub.run")


def start_sandbox_for(settings: Settings, stack: ExitStack) -> Any:
    """Start every sandbox mock on its fixed port and print what runs where."""
    from sandbox_mocks.launcher import SandboxConfig, start_sandbox

    config = SandboxConfig(
        work_dir=settings.data_dir / "sandbox",
        amqp_url=settings.amqp_url or None,
        tax_interval_seconds=float(settings.extra.get("sandbox_tax_interval_seconds", 20)),
        civil_registry_rate_days_per_second=float(
            settings.extra.get("sandbox_days_per_second", 2.0)
        ),
    )
    sandbox = start_sandbox(config)
    stack.callback(sandbox.stop)
    click.echo("srhub: sandbox partner systems")
    click.echo(sandbox.table())
    return sandbox


def start_workers_for(settings: Settings, runtime: HubRuntime, stack: ExitStack) -> Any:
    """Run relay, ingest and dispatch as threads of this process."""
    from hub.workers.service import start_workers

    group = start_workers(settings, runtime.sessions)
    stack.callback(group.stop)
    click.echo("srhub: workers relay, ingest, dispatch running")
    return group


def seed_registry_in_background(runtime: HubRuntime, sandbox: Any) -> threading.Thread:
    """Register the sandbox population's households (as a field survey would have), once.

    Runs in a thread so the API answers at once; a registry that already holds households is
    left alone, so restarts do not duplicate anyone.
    """
    from hub.sandbox_seed import seed_registry

    def work() -> None:
        try:
            count = seed_registry(runtime.registry, sandbox.households)
            if count:
                log.info("sandbox: registered %d households from the field survey", count)
        except Exception:
            log.exception("sandbox: seeding the registry failed")

    thread = threading.Thread(target=work, name="srhub-seed", daemon=True)
    thread.start()
    return thread
