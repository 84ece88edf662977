"""Issue 17: a partner dripping one byte every 0.25 s held a 5 s call for 35 s, because the
time was checked per 64 KiB chunk and requests' read timeout restarts with every byte. The
whole exchange now ends at its timeout, measured against a real local socket server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from connectors.base.errors import PartnerTimeout, TransientPartnerError
from connectors.base.http import PartnerHttpClient
from connectors.base.resilience import ResilientCaller, RetryPolicy
from connectors.national_id.soap import CallTimeoutTransport

STEP = 0.25  # seconds between two bytes, as the partner in the issue
BODY = b"<ok>" + b"x" * 36  # 40 bytes: 10 s at one byte per STEP
TIMEOUT = 1.0


class Dripper:
    """A local HTTP server that answers every request one byte at a time.

    ``headers_too`` drips the status line and headers as well (the call is then stuck before
    requests even returns a response)."""

    def __init__(self, *, headers_too: bool = False) -> None:
        self.headers_too = headers_too
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/soap"

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                received += chunk
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                + f"Content-Length: {len(BODY)}\r\n".encode()
                + b"Connection: close\r\n\r\n"
            )
            try:
                if not self.headers_too:
                    conn.sendall(head)
                for byte in (head if self.headers_too else b"") + BODY:
                    if self.stopped.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(STEP)
            except OSError:  # the client gave up: what the test wants
                return

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=2)


@pytest.fixture(params=["body", "headers"])
def dripper(request: pytest.FixtureRequest) -> Iterator[Dripper]:
    server = Dripper(headers_too=request.param == "headers")
    yield server
    server.close()


def test_slow_drip_national_id_partner_is_cut_off_at_the_total_deadline(dripper: Dripper):
    transport = CallTimeoutTransport(requests.Session(), 5.0, 5.0)
    started = time.monotonic()
    with pytest.raises(PartnerTimeout), transport.call_timeout(TIMEOUT):
        transport.post(dripper.url, b"<lookup/>", {"Content-Type": "text/xml"})
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 1.0, f"held for {elapsed:.1f}s (the drip takes 10 s)"


def test_slow_drip_rest_partner_is_cut_off_at_the_total_deadline(dripper: Dripper):
    caller = ResilientCaller(
        "drip_partner", timeout=TIMEOUT, retry=RetryPolicy(max_attempts=1, jitter=0.0)
    )
    client = PartnerHttpClient(f"http://127.0.0.1:{dripper.port}/", caller)
    started = time.monotonic()
    with pytest.raises(TransientPartnerError, match="timeout"):
        client.get("soap")
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 1.0, f"held for {elapsed:.1f}s (the drip takes 10 s)"


def test_a_prompt_partner_still_answers_through_the_watched_session():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            while b"\r\n\r\n" not in conn.recv(4096):
                pass
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n<ok>")

    worker = threading.Thread(target=answer, daemon=True)
    worker.start()
    transport = CallTimeoutTransport(requests.Session(), 5.0, 5.0)
    with transport.call_timeout(TIMEOUT):
        response = transport.post(f"http://127.0.0.1:{port}/soap", b"<q/>", {})
    worker.join(timeout=2)
    server.close()
    assert response.status_code == 200 and response.content == b"<ok>"
