"""A gunicorn thread worker that gives a request a thread only once its whole head has arrived.

gunicorn's ``gthread`` worker hands a connection to a pool thread as soon as any byte arrives
and the thread then blocks reading the rest of the request line and headers, with no limit.
A client that sends half a request and stalls (slowloris: a few hundred sockets from one
laptop) therefore holds every thread of every process, and ``/health`` stops answering.

``HeadFirstThreadWorker`` keeps such connections in the worker's own event loop instead: the
main thread reads what each connection sends without blocking, and only a connection whose
head is complete (a blank line, or more than the head may hold, which the parser then
refuses) goes to the pool, with those bytes handed to gunicorn's parser as if just read. A
head not complete ``header_timeout`` seconds after the connection opened (or after the
previous answer on a kept-alive one) is dropped. Once a thread has the request, each later
read and write waits at most ``read_timeout`` seconds (a stalled body).

It relies on ``gunicorn.workers.gthread`` internals (``TConn``, ``enqueue_req``, the
poller), hence the pinned gunicorn major version; tests/integration/test_serve_slow_clients
proves the behaviour on the installed one. TLS is terminated by the proxy in front
(docs/deployment.md); with gunicorn's own TLS the worker falls back to plain ``gthread``.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any, ClassVar

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

# A head larger than this is handed to the parser as it is, which answers 431/400: gunicorn's
# own limits (request line 4 KiB, 100 fields of 8 KiB) are below it.
MAX_HEAD_BYTES = 1024 * 1024
_END_OF_HEAD = (b"\r\n\r\n", b"\n\n")


class _TimedSocket(socket.socket):
    """A client socket whose blocking mode has a time limit: gunicorn switches the socket to
    blocking before a thread reads the request, which would otherwise wait forever."""

    read_timeout: ClassVar[float] = 30.0

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.read_timeout)
        else:
            super().setblocking(False)


class HeadFirstThreadWorker(ThreadWorker):
    """``gthread`` with request heads read in the event loop (see the module docstring)."""

    # Set by hub.serving.gunicorn_app before the workers are forked.
    header_timeout: ClassVar[float] = 10.0

    def init_process(self) -> None:
        # Connections whose head is still arriving, oldest deadline first, and their bytes.
        self.heading_conns: deque[Any] = deque()
        self.heads: dict[int, bytearray] = {}
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        if self.cfg.is_ssl:
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        timed = _TimedSocket(
            client_sock.family, client_sock.type, client_sock.proto, fileno=client_sock.detach()
        )
        self._await_head(TConn(self.cfg, timed, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: Any, client: socket.socket) -> None:
        """A kept-alive connection's next request is read the same way as a first one."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        if self.cfg.is_ssl:
            self.enqueue_req(conn)
            return
        self._await_head(conn)

    def _await_head(self, conn: Any) -> None:
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.header_timeout
        self.heads[id(conn)] = bytearray()
        self.heading_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn))

    def _read_head(self, conn: Any, _client: socket.socket) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before its request was complete
            self._forget_heading(conn)
            self.nr_conns -= 1
            conn.close()
            return
        head = self.heads[id(conn)]
        head += data
        if len(head) <= MAX_HEAD_BYTES and not any(end in head for end in _END_OF_HEAD):
            return
        self._forget_heading(conn)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(head))
        conn.data_ready = True
        self.enqueue_req(conn)

    def _forget_heading(self, conn: Any) -> None:
        self.poller.unregister(conn.sock)
        self.heading_conns.remove(conn)
        del self.heads[id(conn)]

    def murder_pending(self) -> None:
        """Also drop the connections whose head did not arrive in time (runs every loop)."""
        super().murder_pending()
        now = time.monotonic()
        # A stopping worker does not wait for heads still arriving: they had no request yet.
        while self.heading_conns and (self.heading_conns[0].timeout <= now or not self.alive):
            conn = self.heading_conns[0]
            self._forget_heading(conn)
            self.nr_conns -= 1
            conn.close()


def configure(header_timeout: float, read_timeout: float) -> None:
    """The limits the forked workers use (class attributes, inherited across ``fork``)."""
    HeadFirstThreadWorker.header_timeout = header_timeout
    _TimedSocket.read_timeout = read_timeout
