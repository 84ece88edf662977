"""A loopback TCP forwarder that can be started late, or switched off and on: it stands in for
a broker that comes up after the hub, or goes away for a while, without touching the real
server."""

from __future__ import annotations

import contextlib
import socket
import threading


def free_port() -> int:
    """A port that nothing listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for sock in (src, dst):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Forwarder:
    """Listens on ``127.0.0.1:port`` (0: any free port, see ``.port``) and forwards every
    connection to ``upstream``. ``down()`` cuts every connection and refuses new ones until
    ``up`` is set again: a broker outage as clients see it."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.up = True
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = int(self.server.getsockname()[1])
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                if not self.up:
                    client.close()
                    continue
                upstream = socket.create_connection(self.upstream)
                with self.lock:
                    self.connections += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def down(self) -> None:
        self.up = False
        with self.lock:
            connections, self.connections = self.connections, []
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.close()
        self.down()
