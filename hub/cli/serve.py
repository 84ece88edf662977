"""``srhub serve``: the API alone, in gunicorn processes, for a production installation.

Unlike ``srhub run`` it starts no workers, consumers or sandbox mocks (those run as
``srhub worker ...`` processes) and does not migrate: a schema behind head stops it with
``srhub db upgrade`` to run, as every command but ``run`` and ``db upgrade`` does. Settings
come from ``[srhub.serving]``; each flag overrides one of them for this start.
See docs/deployment.md.
"""

from __future__ import annotations

import click

from hub.cli.database import check_schema
from hub.logging_setup import configure_logging
from hub.settings import load_settings, with_overrides

# flag name -> field of settings.serving
_SERVING_FLAGS = (
    "workers",
    "threads",
    "timeout_seconds",
    "graceful_timeout_seconds",
    "keep_alive_seconds",
    "max_requests",
    "max_requests_jitter",
    "header_timeout_seconds",
)


@click.command()
@click.option("--host", default=None, help="Interface to listen on (default: settings.host).")
@click.option("--port", default=None, type=int, help="Port to listen on (default: settings.port).")
@click.option("--workers", default=None, type=int, help="API processes.")
@click.option("--threads", default=None, type=int, help="Request threads per process.")
@click.option(
    "--timeout",
    "timeout_seconds",
    default=None,
    type=int,
    help="Seconds before a wedged process is replaced.",
)
@click.option(
    "--graceful-timeout",
    "graceful_timeout_seconds",
    default=None,
    type=int,
    help="Seconds requests in flight may take after SIGTERM.",
)
@click.option(
    "--keep-alive", "keep_alive_seconds", default=None, type=int, help="Idle keep-alive seconds."
)
@click.option(
    "--max-requests", default=None, type=int, help="Replace a process after this many requests."
)
@click.option("--max-requests-jitter", default=None, type=int, help="Random extra requests (0..N).")
@click.option(
    "--header-timeout",
    "header_timeout_seconds",
    default=None,
    type=float,
    help="Seconds a request's head may take to arrive.",
)
def serve(host: str | None, port: int | None, **serving: int | float | None) -> None:
    """Serve the API with gunicorn (no workers: run them with `srhub worker ...`)."""
    from hub.serving.gunicorn_app import HubApplication

    settings = load_settings()
    changes: dict[str, object] = {}
    if host:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    given = {name: serving[name] for name in _SERVING_FLAGS if serving.get(name) is not None}
    if given:
        changes["serving"] = given  # checked like the settings file's values
    settings = with_overrides(settings, **changes) if changes else settings
    configure_logging(settings.log_level)
    check_schema(settings)
    s = settings.serving
    click.echo(
        f"srhub serve: API on http://{settings.host}:{settings.port}  "
        f"({s.workers} processes x {s.threads} threads; workers run as `srhub worker ...`)",
        err=True,
    )
    HubApplication(settings).run()
