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
from hub.settings import Settings, SettingsError

log = logging.getLogger("srhub.run")


def start_sandbox_for(settings: Settings, runtime: HubRuntime, stack: ExitStack) -> Any:
    """Start every sandbox mock on its fixed port and print what runs where.

    The program MIS's AMQP subscription is made first, so its consumer finds its queue."""
    from sandbox_mocks.launcher import MOCK_NAMES, SandboxConfig, start_sandbox

    ports: dict[str, Any] = {}
    options = settings.sandbox_mocks
    if options.port_base is not None:
        # 0: free ports (tests, a machine where 8101-8105 are taken); N: N, N+1, ... in order.
        base = options.port_base
        ports["ports"] = {name: base + i if base else 0 for i, name in enumerate(MOCK_NAMES)}
    config = SandboxConfig(
        **ports,
        work_dir=settings.data_dir / "sandbox",
        # The MIS consumes its AMQP subscription where AMQP subscribers do.
        amqp_url=settings.amqp_url or settings.delivery_amqp_url or None,
        tax_interval_seconds=options.tax_interval_seconds,
        civil_registry_rate_days_per_second=options.days_per_second,
    )
    from hub.sandbox_activity import subscribe_program_mis_by_amqp

    subscribe_program_mis_by_amqp(settings, runtime)
    sandbox = start_sandbox(config)
    stack.callback(sandbox.stop)
    click.echo("srhub: sandbox partner systems")
    click.echo(sandbox.table())
    return sandbox


def start_workers_for(settings: Settings, runtime: HubRuntime, stack: ExitStack) -> Any:
    """Run relay, ingest and dispatch as threads of this process."""
    from hub.pipeline import dispatch, ingest
    from hub.subscriptions.delivery import start_delivery_workers
    from hub.workers.service import start_workers

    ingest.configure(lambda: runtime.registry)  # share this process's keys and engine
    dispatch.configure(lambda: runtime)
    group = start_workers(settings, runtime.sessions)
    stack.callback(group.stop)
    deliveries = start_delivery_workers(settings, runtime)
    stack.callback(deliveries.stop)
    click.echo("srhub: workers relay, ingest, dispatch and subscription delivery running")
    return group


def start_monitoring_for(
    settings: Settings, runtime: HubRuntime, host: Any, workers: Any, stack: ExitStack
) -> Any:
    """Health model, alert evaluation and message-log retention on a schedule."""
    from hub.monitoring.service import start_monitoring

    monitor = start_monitoring(settings, runtime, host, workers)
    stack.callback(monitor.stop)
    return monitor


def load_connector_configs(settings: Settings, sandbox: Any | None) -> dict[str, Any]:
    """Connector tables: from the running sandbox, else from ``SRHUB_CONNECTORS_FILE``."""
    if sandbox is not None:
        return sandbox.connectors()
    path = settings.connectors_file
    if str(path) in ("", "."):
        return {}
    import tomllib

    try:
        with path.open("rb") as fh:
            return dict(tomllib.load(fh).get("connectors", {}))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SettingsError(f"SRHUB_CONNECTORS_FILE: cannot read {path}: {reason}") from None


def start_connectors_for(
    settings: Settings, runtime: HubRuntime, app: Any, sandbox: Any | None, stack: ExitStack
) -> Any:
    """Build, mount and start the configured connectors; print their state."""
    from hub.connectors_host import ConnectorHost

    configs = load_connector_configs(settings, sandbox)
    if not configs:
        return None
    host = ConnectorHost(settings, runtime.engine).build(configs)
    host.mount(app)
    host.start()
    stack.callback(host.stop)
    names = ", ".join(sorted(host.connectors)) or "none"
    click.echo(f"srhub: connectors running: {names}")
    for name, problem in sorted(host.problems.items()):
        click.echo(f"srhub: connector {name} NOT running: {problem}", err=True)
    return host


def after_serving_in_background(host: Any, url: str) -> threading.Thread:
    """Once the API answers, let connectors subscribe to partners that call us back."""
    import time

    import requests

    def work() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        host.after_serving(url)

    thread = threading.Thread(target=work, name="srhub-after-serving", daemon=True)
    thread.start()
    return thread


def sandbox_activity_in_background(
    settings: Settings, runtime: HubRuntime, sandbox: Any, host: Any | None
) -> threading.Thread:
    """Subscribe the sandbox's program MIS, register the population's households (as a field
    survey would have), then queue a round of national ID verifications.

    Runs in a thread so the API answers at once. Subscribing comes first, so the first births
    and deaths reach the MIS; a registry that already holds households is not seeded again,
    so restarts duplicate no one. See ``hub/sandbox_activity.py``.
    """
    from hub import sandbox_activity
    from hub.sandbox_seed import seed_registry

    round_size = settings.sandbox_mocks.verification_round

    def work() -> None:
        mis = sandbox.connectors().get("programs")
        if mis:
            try:
                sandbox_activity.subscribe_program_mis_by_webhook(settings, runtime, mis)
            except Exception:
                log.exception("sandbox: subscribing the program MIS failed")
        try:
            count = seed_registry(runtime.registry, sandbox.households)
            if count:
                log.info("sandbox: registered %d households from the field survey", count)
        except Exception:
            log.exception("sandbox: seeding the registry failed")
            return
        if host is None or "national_id" not in host.connectors or round_size <= 0:
            return
        from hub.connectors_host import publish_raw

        try:
            sandbox_activity.queue_verification_round(runtime, publish_raw, round_size)
        except Exception:
            log.exception("sandbox: queueing the verification round failed")

    thread = threading.Thread(target=work, name="srhub-sandbox-activity", daemon=True)
    thread.start()
    return thread
