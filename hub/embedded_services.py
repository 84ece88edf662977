"""What ``srhub run`` starts beside the API in the embedded setup: the sandbox partner systems,
the registry's initial households, the connectors and the workers — each stopped cleanly by the
run command's ExitStack.

The parts meet through what they are given, not through module globals: the monitoring
middleware (message log and metrics) is made first and handed to the ingest worker and the
connector host; the ingest worker finds running connectors through the app's extensions (the
host mounts itself there); the monitoring loop is given the host, the workers and every
package's retention job, and put in the app's extensions for the health views."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
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


def allow_sandbox_hosts(settings: Settings, sandbox: Any) -> Settings:
    """``settings`` with each running sandbox mock's ``host:port`` allowed as an outbound
    destination (``hub.workers.egress``): the program MIS's webhook and the mocks' callbacks
    are on loopback, which the hub refuses unless allowed explicitly."""
    from urllib.parse import urlsplit

    from hub.settings import with_overrides

    hosts = list(settings.outbound.allow_hosts)
    for name in sandbox.running:
        netloc = urlsplit(sandbox.url(name)).netloc
        if netloc and netloc not in hosts:
            hosts.append(netloc)
    return with_overrides(settings, outbound={"allow_hosts": hosts})


def start_monitoring_middleware(settings: Settings, runtime: HubRuntime, stack: ExitStack) -> Any:
    """The message log and metrics of this process, running before anything reports to them
    and stopped after everything that does (the stack unwinds in reverse)."""
    from hub.monitoring.service import monitoring_middleware

    middleware = monitoring_middleware(settings, runtime).start()
    stack.callback(middleware.stop)
    return middleware


def app_connectors(app: Any) -> Callable[[str], Any | None]:
    """The connector look-up of workers sharing ``app``'s process: the host mounted in the
    app's extensions, whenever it has been started (connectors start after the workers)."""
    from hub.connectors_host import HOST_KEY

    def connector(name: str) -> Any | None:
        host = app.extensions.get(HOST_KEY)
        return host.connector(name) if host is not None else None

    return connector


def start_workers_for(
    settings: Settings,
    runtime: HubRuntime,
    stack: ExitStack,
    *,
    app: Any = None,
    middleware: Any = None,
    connector_configs: Mapping[str, Any] | None = None,
) -> Any:
    """Run relay, ingest, dispatch, crosscheck, quality and scoring as threads of this process,
    sharing its runtime (keys, engine), its monitoring ``middleware`` and the connectors
    ``app`` hosts; the ingest routes are those of ``connector_configs`` (every configured
    instance of each kind)."""
    from hub.assembly import start_workers
    from hub.pipeline.routes import routes_for
    from hub.pipeline.verification import no_connector
    from hub.subscriptions.delivery import start_delivery_workers

    group = start_workers(
        runtime,
        middleware=[middleware] if middleware is not None else (),
        connectors=app_connectors(app) if app is not None else no_connector,
        routes=routes_for(connector_configs),
    )
    stack.callback(group.stop)
    deliveries = start_delivery_workers(settings, runtime)
    stack.callback(deliveries.stop)
    click.echo(
        "srhub: workers relay, ingest, dispatch, crosscheck, quality, scoring and subscription"
        " delivery running"
    )
    return group


def start_monitoring_for(
    settings: Settings,
    runtime: HubRuntime,
    host: Any,
    workers: Any,
    stack: ExitStack,
    *,
    app: Any = None,
    middleware: Any = None,
    connector_configs: Mapping[str, Any] | None = None,
) -> Any:
    """Health model, alert evaluation and every package's retention job on a schedule
    (``connector_configs``: the running connectors, whose drop folders' archives age out)."""
    from hub.assembly import retention_jobs
    from hub.monitoring.service import start_monitoring

    monitor = start_monitoring(
        settings,
        runtime,
        host,
        workers,
        middleware=middleware,
        jobs=retention_jobs(settings, connector_configs=connector_configs),
    )
    stack.callback(monitor.stop)
    if app is not None:
        monitor.init_app(app)
    return monitor


def load_connector_configs(settings: Settings, sandbox: Any | None) -> dict[str, Any]:
    """Connector tables: from the running sandbox, else from ``SRHUB_CONNECTORS_FILE``."""
    if sandbox is not None:
        return sandbox.connectors()
    import tomllib

    from hub.pipeline.routes import connector_tables

    path = settings.connectors_file
    try:
        return connector_tables(path)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SettingsError(f"SRHUB_CONNECTORS_FILE: cannot read {path}: {reason}") from None


def start_connectors_for(
    settings: Settings,
    runtime: HubRuntime,
    app: Any,
    sandbox: Any | None,
    stack: ExitStack,
    *,
    middleware: Any = None,
    configs: Mapping[str, Any] | None = None,
) -> Any:
    """Build, mount and start the configured connectors (``configs``, default
    ``load_connector_configs``); print their state. Their publishing is reported to the
    monitoring ``middleware``."""
    from hub.connectors_host import ConnectorHost

    if configs is None:
        configs = load_connector_configs(settings, sandbox)
    if not configs:
        return None
    from hub.bulk.connector_loader import RegistryBulkLoader

    options: dict[str, Any] = {}
    if middleware is not None:
        options["on_publish"] = middleware.published
    options["bulk_loader"] = RegistryBulkLoader(
        lambda: (runtime.registry, runtime.sessions), settings.data_dir / "bulk-rejects"
    )
    host = ConnectorHost(settings, runtime.engine, **options).build(configs)
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


def _answers(url: str, seconds: float = 30.0) -> bool:
    """Whether the API at ``url`` answers ``/health`` within ``seconds``."""
    import time

    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def sandbox_activity_in_background(
    settings: Settings,
    runtime: HubRuntime,
    sandbox: Any,
    host: Any | None,
    url: str | None = None,
) -> threading.Thread:
    """Subscribe the sandbox's program MIS, then register the population's households (as a
    field survey would have), the first of them with the survey's consent to the national ID
    check: the registration cross-check (``hub.crosscheck``, policy ``first``) then checks
    those people by itself, so ``person.verified`` appears without anyone asking.

    Runs in a thread so the API answers at once. Subscribing comes first, so the first births
    and deaths reach the MIS; a registry that already holds households is not seeded again,
    so restarts duplicate no one. See ``hub/sandbox_activity.py``.

    Then, once the API at ``url`` answers, the sandbox's field team registers the households
    kept out of the seed over OpenRosa (``hub/sandbox_field_team.py``).
    """
    from hub import sandbox_activity
    from hub.sandbox_field_team import (
        build_team,
        households_in_programs,
        households_with_vital_events,
        plan_team,
    )
    from hub.sandbox_seed import seed_registry

    consenting = settings.sandbox_mocks.verification_round
    households = list(sandbox.households)
    with_team = settings.sandbox_mocks.field_team and url is not None
    plan = (
        plan_team(
            households,
            busy_keys=households_with_vital_events(sandbox.config)
            | households_in_programs(sandbox.config, households),
        )
        if with_team
        else None
    )

    seeded = threading.Event()  # the seed is done (or was not needed)
    fresh: list[bool] = []  # set before the field team may start: was the registry empty?
    decided = threading.Event()

    def work() -> None:
        try:
            fresh.append(runtime.registry.list_households(limit=1)[1] == 0)
        except Exception:
            log.exception("sandbox: reading the registry failed")
            fresh.append(False)
        finally:
            decided.set()
        mis = sandbox.connectors().get("programs")
        if mis:
            try:
                sandbox_activity.subscribe_program_mis_by_webhook(settings, runtime, mis)
            except Exception:
                log.exception("sandbox: subscribing the program MIS failed")
        seeded_households = plan.seeded(households) if plan is not None else households
        try:
            if fresh[0]:
                count = seed_registry(
                    runtime.registry,
                    seeded_households,
                    consenting=consenting,
                    only_if_empty=False,
                )
                log.info("sandbox: registered %d households from the field survey", count)
        except Exception:
            log.exception("sandbox: seeding the registry failed")
        finally:
            seeded.set()

    def field_work() -> None:
        # Only on a fresh registry: a restart must not register the team's households again.
        decided.wait(timeout=60)
        if plan is None or url is None or not (fresh and fresh[0]) or not _answers(url):
            return
        try:
            team = build_team(runtime, plan, households, url, seeded)
            log.info(
                "sandbox: field team of %d enumerators at work in %s",
                len(team.enumerators),
                ", ".join(plan.districts),
            )
            team.run()
        except Exception:
            log.exception("sandbox: the field team stopped")

    if plan is not None:
        threading.Thread(target=field_work, name="srhub-sandbox-field-team", daemon=True).start()
    thread = threading.Thread(target=work, name="srhub-sandbox-activity", daemon=True)
    thread.start()
    return thread
