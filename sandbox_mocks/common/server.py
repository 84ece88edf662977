"""Run a mock's Flask app on a real loopback port in a background thread.

Why: tests and demos must talk to the mocks over real HTTP (real sockets, real timeouts), not
through Flask's test client, and must be able to start many of them on ephemeral ports without
clashing. ``MockServer`` wraps werkzeug's threaded ``make_server``; ``port=0`` lets the OS pick.

    with MockServer(app) as server:            # or server = MockServer(app).start()
        requests.get(server.url + "/feed")
    # stopped: socket closed, held fault requests released, the app's shutdown hooks run

Shutdown hooks: anything registered with ``faults.add_shutdown_hook(app, fn)`` (fault holds,
delivery workers, clock tickers) is called by ``stop()`` so no thread outlives the server.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox_mocks.common.faults import SHUTDOWN_HOOKS

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to the debug log, not stderr: tests hit mocks thousands of times."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)


class MockServer:
    """A Flask app served by werkzeug in a daemon thread; a context manager."""

    def __init__(
        self, app: Flask, host: str = "127.0.0.1", port: int = 0, quiet: bool = True
    ) -> None:
        self.app = app
        self._handler = _QuietHandler if quiet else None
        self.host = host
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None  # kept after stop() so callers can still name the URL

    def start(self) -> MockServer:
        if self._server is not None:
            return self
        self._server = make_server(
            self.host,
            self._requested_port,
            self.app,
            threaded=True,
            request_handler=self._handler,
        )
        self._port = int(self._server.server_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"mock-{self.app.name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, release held requests and run the app's shutdown hooks."""
        for hook in list(self.app.extensions.get(SHUTDOWN_HOOKS, [])):
            try:
                hook()
            except Exception:  # a broken hook must not keep the socket open
                log.exception("shutdown hook of %s failed", self.app.name)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
    """Blocking variant for command-line use (``python -m sandbox_mocks.<mock>``)."""
    server = MockServer(app, host, port).start()
    log.info("%s listening on %s", app.name, server.url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
