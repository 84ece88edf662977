"""``srhub run``'s server: waitress, in the one process that also runs the workers.

Werkzeug's development server started a thread per connection and had no timeout for a
request's head: 500 half-open connections made 424 threads. waitress reads and buffers each
request in its event loop and hands only complete requests to a fixed pool of threads
(``run_threads``); a connection idle or stalled for ``run_channel_timeout_seconds`` is
closed, and at most ``run_connection_limit`` are open at once. Pure Python (no compiler,
runs wherever the hub does), and it needs no fork, so the embedded workers, sandbox mocks and
API keep sharing one process as the quick start expects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waitress.server import create_server

if TYPE_CHECKING:
    from flask import Flask

    from hub.settings import Settings


class EmbeddedServer:
    """A started waitress server: ``port`` is bound; ``serve_forever`` until ``shutdown``."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        serving = settings.serving
        self._server: Any = create_server(
            app,
            host=settings.host,
            port=settings.port,
            threads=serving.run_threads,
            connection_limit=serving.run_connection_limit,
            channel_timeout=serving.run_channel_timeout_seconds,
            cleanup_interval=max(1, min(30, serving.run_channel_timeout_seconds // 2)),
            # poll(), not select(): select cannot watch descriptors above 1023.
            asyncore_use_poll=True,
            # The app decides which X-Forwarded-* headers to believe (settings.trusted_proxies,
            # ProxyFix); waitress must pass them through untouched.
            clear_untrusted_proxy_headers=False,
            max_request_body_size=settings.max_request_bytes + 64 * 1024,
            ident="srhub",
            expose_tracebacks=False,
        )

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        """Stop the loop (safe from another thread or a signal handler); requests in flight
        finish in the pool threads."""
        self._server.trigger.pull_trigger(self._close_all)

    def _close_all(self) -> None:
        from waitress import wasyncore

        wasyncore.close_all(self._server._map)
        self._server.task_dispatcher.shutdown()
