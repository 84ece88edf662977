"""Settings of the HTTP servers (``settings.serving``, ``[srhub.serving]``).

Read by ``srhub serve`` (gunicorn, ``hub.serving.gunicorn_app``) and ``srhub run`` (waitress,
``hub.serving.embedded``); the command-line flags of ``srhub serve`` override them. Described
in docs/deployment.md and docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, SettingsError, non_negative, positive, ranged


@dataclass(frozen=True)
class ServingSettings(Section):
    """Processes, threads and timeouts of the API servers."""

    name: ClassVar[str] = "serving"

    # srhub serve: API processes (gunicorn workers) and request threads in each. A request
    # holds a thread only once its whole head has arrived (hub.serving.head_first).
    workers: int = ranged(2, low=1, high=256)
    threads: int = ranged(8, low=1, high=1024)
    # Connections one process keeps open at once (reading, in flight, kept alive); beyond
    # that the process stops accepting and the kernel's backlog holds the rest.
    worker_connections: int = ranged(1000, low=1, high=100_000)
    backlog: int = ranged(2048, low=1, high=65_535)
    # A request whose head (request line and headers) has not fully arrived this many seconds
    # after the connection opened, or after the previous answer on it, is dropped.
    header_timeout_seconds: float = positive(10.0)
    # Once a thread has the request: the longest wait for the next bytes of a body (or for
    # the client to take the answer) before the connection is dropped.
    read_timeout_seconds: float = positive(30.0)
    # gunicorn --timeout: a process that has not reported to the arbiter for this long is
    # killed and replaced (a wedged process, not a slow request: threads keep it reporting).
    timeout_seconds: int = ranged(60, low=1, high=3600)
    # On SIGTERM / SIGHUP, how long requests in flight may take to finish.
    graceful_timeout_seconds: int = ranged(30, low=1, high=3600)
    # How long an idle kept-alive connection stays open (0: close after each answer).
    keep_alive_seconds: int = ranged(5, low=0, high=300)
    # Each process is replaced after this many requests, plus a random 0..jitter so that
    # processes do not restart together (0: never); bounds slow leaks in long-running code.
    max_requests: int = non_negative(10_000)
    max_requests_jitter: int = non_negative(1_000)
    # srhub run (waitress): request threads, open connections, and seconds an idle or stalled
    # connection is kept before it is closed.
    # 32: on SQLite a request may wait for the write lock (busy timeout 30 s); with few threads
    # a burst of field syncs left none for a plain read (first-hour scenario under load).
    run_threads: int = ranged(32, low=1, high=1024)
    run_connection_limit: int = ranged(1000, low=1, high=100_000)
    run_channel_timeout_seconds: int = ranged(30, low=1, high=3600)

    def check(self, label: Callable[[str], str]) -> None:
        if self.max_requests_jitter > 0 and self.max_requests == 0:
            raise SettingsError(f"{label('max_requests_jitter')} needs max_requests above 0")
