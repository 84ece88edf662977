"""``srhub serve``'s server: the hub API in gunicorn, configured from the hub's settings.

A ``BaseApplication`` rather than a ``gunicorn`` command line: the options come from
``[srhub.serving]`` (and the flags of ``srhub serve``), checked like every other setting, and
each worker process builds its own app (its own database pool) after the fork. The API
processes run no workers or consumers: those are ``srhub worker ...`` processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from hub.serving import head_first

if TYPE_CHECKING:
    from flask import Flask

    from hub.settings import Settings

WORKER_CLASS = "hub.serving.head_first.HeadFirstThreadWorker"


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn's settings for the hub's: bind, processes x threads, limits and timeouts."""
    serving = settings.serving
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return {
        "bind": [f"{host}:{settings.port}"],
        "workers": serving.workers,
        "worker_class": WORKER_CLASS,
        "threads": serving.threads,
        "worker_connections": serving.worker_connections,
        "backlog": serving.backlog,
        "timeout": serving.timeout_seconds,
        "graceful_timeout": serving.graceful_timeout_seconds,
        "keepalive": serving.keep_alive_seconds,
        "max_requests": serving.max_requests,
        "max_requests_jitter": serving.max_requests_jitter,
        "preload_app": False,  # each process opens its own database pool after the fork
        # X-Forwarded-* are the app's to trust (settings.trusted_proxies, ProxyFix), not the
        # server's: gunicorn must not rewrite the scheme or the client address itself.
        "forwarded_allow_ips": "",
        "proc_name": "srhub-api",
        # gunicorn's control socket (one per user, in the home directory) would be shared by
        # every srhub serve on the host; the hub is driven by signals (SIGTERM, SIGHUP).
        "control_socket_disable": True,
        "loglevel": settings.log_level.lower(),
        "errorlog": "-",
        "accesslog": None,  # the query strings of identifier searches carry national IDs
    }


class HubApplication(BaseApplication):
    """The hub's app served by gunicorn; ``load`` runs in each worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = gunicorn_options(settings)
        head_first.configure(
            settings.serving.header_timeout_seconds, settings.serving.read_timeout_seconds
        )
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from hub.api import create_app

        return create_app(self.settings)
