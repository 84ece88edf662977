"""``srhub run``: the whole hub in one process, for a laptop or a single small server.

It migrates the database, starts the sandbox mocks (unless told not to), the workers (relay,
ingest, dispatch) as threads, and serves the API. Production runs the same pieces as separate
processes (``srhub worker ...`` and ``srhub serve``, gunicorn); see docs/deployment.md. The API
is served by waitress (``hub.serving.embedded``): a bounded pool of request threads and
timeouts for stalled connections, where Werkzeug's development server grew a thread per
connection.

Every piece is part of the build: one that cannot be imported stops the start with the
module's name (``hub.cli.errors``), instead of a hub that runs without its workers.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import ExitStack
from types import FrameType
from typing import TYPE_CHECKING

import click

from hub.cli.errors import CommandError
from hub.logging_setup import configure_logging
from hub.settings import Settings, load_settings, with_overrides

if TYPE_CHECKING:
    from flask import Flask

    from hub.runtime import HubRuntime

log = logging.getLogger("srhub.run")


def start_background(
    settings: Settings,
    runtime: HubRuntime,
    app: Flask,
    url: str,
    stack: ExitStack,
    sandbox: bool,
    workers: bool,
) -> None:
    """Start the workers, the sandbox (seeding the registry from it) and the connectors; each
    registers its stop on ``stack``."""
    from hub import embedded_services as services

    # Message log and metrics first: the workers and connectors report to it from their start.
    monitoring = services.start_monitoring_middleware(settings, runtime, stack)
    running = None
    if sandbox:
        from sandbox_mocks.launcher import SandboxError

        try:
            running = services.start_sandbox_for(settings, runtime, stack)
        except SandboxError as exc:  # a busy port
            raise CommandError(
                f"{exc}. With `srhub run`, move the mocks with SRHUB_SANDBOX_MOCKS__PORT_BASE "
                "(0: free ports) or run with --no-sandbox"
            ) from None
        # The sandbox partners run on loopback: allow exactly their host:port, nothing more.
        settings = services.allow_sandbox_hosts(settings, running)
    # The connectors before the workers: the ingest worker routes their instances.
    configs = services.load_connector_configs(settings, running)
    host = services.start_connectors_for(
        settings, runtime, app, running, stack, middleware=monitoring, configs=configs
    )
    group = None
    if workers:
        group = services.start_workers_for(
            settings, runtime, stack, app=app, middleware=monitoring, connector_configs=configs
        )
        app.extensions["srhub_workers"] = group
    if running is not None:
        services.sandbox_activity_in_background(settings, runtime, running, host, url)
    if host is not None:
        services.after_serving_in_background(host, url)
    services.start_monitoring_for(
        settings,
        runtime,
        host,
        group,
        stack,
        app=app,
        middleware=monitoring,
        connector_configs=configs,
    )


def load_intake(app: Flask, settings: Settings, runtime: HubRuntime) -> None:
    """The sample household form when the hub has none yet (idempotent), and the submissions
    a previous run stored but never queued, queued again."""
    from hub.intake.contract import INTAKE_EXTENSION_KEY
    from hub.intake.setup import load_sample_form, requeue
    from hub.workers.retention import run_retention

    if load_sample_form(app.extensions[INTAKE_EXTENSION_KEY]):
        click.echo("srhub: intake form household_registration loaded (the sample XLSForm)")
    run_retention(runtime.sessions, [requeue(settings)], keep_going=True)


def login_lines(url: str, has_local_token: bool, settings: Settings) -> list[str]:
    """How to log in to the dashboard, true for the setup that runs.

    The token itself is never printed: start-up output ends up in terminals' scroll-back,
    CI logs and log shippers, and whoever reads it would hold an admin credential. The
    embedded default keeps it in a 0600 file; PostgreSQL/RabbitMQ setups have no local token
    at all, so their operator is told how to make the first admin login.
    """
    if has_local_token:
        path = settings.effective_admin_token_file
        return [
            f"srhub: dashboard {url}/  (log in with the local admin token kept in {path})",
            f'srhub:   e.g. curl -H "Authorization: Bearer $(cat {path})" {url}/api/v1/events',
        ]
    return [
        f"srhub: dashboard {url}/  (no local admin token on PostgreSQL/RabbitMQ setups)",
        "srhub:   first admin: srhub users add NAME --role admin   (a password login), or",
        "srhub:                srhub token issue --role admin --sub NAME   (a bearer token)",
    ]


def with_sandbox_profile(settings: Settings, *, sandbox: bool) -> Settings:
    """With the sandbox on, the hub checks identifiers by the sandbox's own country profile
    (its national IDs carry a Verhoeff digit), unless ``SRHUB_IDENTIFIER_PROFILE`` names one."""
    if not sandbox or settings.has_identifier_profile:
        return settings
    from sandbox_mocks.launcher import SANDBOX_IDENTIFIER_PROFILE

    return with_overrides(settings, identifier_profile=SANDBOX_IDENTIFIER_PROFILE)


@click.command()
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000).")
@click.option("--no-sandbox", is_flag=True, help="Do not start the sandbox mocks.")
@click.option("--no-workers", is_flag=True, help="Serve the API only; run workers separately.")
def run(host: str | None, port: int | None, no_sandbox: bool, no_workers: bool) -> None:
    """Run the hub: API, workers and (by default) the sandbox partner systems."""
    from hub.api import create_app
    from hub.auth.bootstrap import ensure_admin_token
    from hub.dbschema import upgrade_to_head
    from hub.runtime import HubRuntime

    settings = load_settings()
    changes: dict[str, object] = {}
    if host:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    settings = with_overrides(settings, **changes) if changes else settings
    settings = with_sandbox_profile(settings, sandbox=settings.sandbox and not no_sandbox)
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    upgrade_to_head(settings.effective_database_url)
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    token = ensure_admin_token(settings)

    stop = threading.Event()
    with ExitStack() as stack:
        stack.callback(runtime.close)
        app = create_app(settings, runtime)
        from hub.api.dci import close_app

        stack.callback(close_app, app)
        from hub.serving.embedded import EmbeddedServer

        server = EmbeddedServer(app, settings)
        url = f"http://{settings.host}:{server.port}"
        click.echo(f"srhub: API on {url}  (health: {url}/health)")
        for line in login_lines(url, token is not None, settings):
            click.echo(line)
        click.echo(f"srhub: database {settings.effective_database_url.split('@')[-1]}")
        profile = runtime.identifier_profile
        click.echo(
            f"srhub: identifier profile {profile.name}"
            + (f" ({settings.identifier_profile})" if settings.has_identifier_profile else "")
        )
        click.echo(
            "srhub: broker "
            + ("embedded queue in the database" if settings.uses_embedded_broker else "RabbitMQ")
        )
        load_intake(app, settings, runtime)
        start_background(
            settings,
            runtime,
            app,
            url,
            stack,
            sandbox=settings.sandbox and not no_sandbox,
            workers=not no_workers,
        )

        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: shutting down", signum)
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        click.echo("srhub: ready; Ctrl-C to stop")
        if not stop.is_set():
            server.serve_forever()
    click.echo("srhub: stopped")
