"""A total time limit for one HTTP exchange, enforced on its socket.

``requests`` applies its read timeout to each socket read, not to the exchange: a partner that
sends one byte every quarter of a second never trips a 5 s timeout, and checking the clock
between body chunks does not help either, because reading one 64 KiB chunk is itself many
socket reads (a 140-byte answer dripped that way held a 5 s call for 35 s). So the limit is
enforced from outside the reading thread: ``total_deadline(seconds)`` starts a timer, the
sockets the exchange uses are registered with it as they connect or send (``WatchedAdapter``,
mounted on the session with ``watch_session``), and when the time is up the timer shuts those
sockets down. The blocked read returns at once, ``requests`` raises, and the caller sees
``watch.fired`` and reports a timeout. TLS sockets are shut down the same way.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["Watch", "WatchedAdapter", "total_deadline", "watch_session"]

_local = threading.local()


class Watch:
    """The sockets of one exchange and whether its time ran out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.fired = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            if any(s is sock for s in self._sockets):
                return
            self._sockets.append(sock)
            late = self.fired
        if late:
            _shut(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed or never connected
        sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def total_deadline(seconds: float) -> Iterator[Watch]:
    """Within the block, HTTP exchanges of watched sessions on this thread end after
    ``seconds`` in all (connect, headers and body), however slowly the partner sends."""
    watch = Watch()
    previous = getattr(_local, "watch", None)
    _local.watch = watch
    timer = threading.Timer(max(0.0, seconds), watch.fire)
    timer.daemon = True
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
        _local.watch = previous


def _register(sock: Any) -> None:
    watch: Watch | None = getattr(_local, "watch", None)
    if watch is not None and isinstance(sock, socket.socket):
        watch.add(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)  # a kept-alive connection: registered again for this exchange
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections register their sockets with ``total_deadline``."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def watch_session(session: requests.Session) -> requests.Session:
    """Mount ``WatchedAdapter`` for http and https on ``session`` and return it. Only plain
    ``HTTPAdapter``s are replaced: an adapter a caller mounted on purpose (a test double, a
    proxy or certificate set-up) is left in place."""
    for prefix in ("http://", "https://"):
        if type(session.adapters.get(prefix)) is HTTPAdapter:
            session.mount(prefix, WatchedAdapter())
    return session
