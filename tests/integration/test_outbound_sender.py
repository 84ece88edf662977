"""The one outbound sender (webhooks, DCI notifies and callbacks) against a real HTTP server:
retries only what may heal, no redirects, timeouts, pooled connections, an attempt log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hub.dci.delivery import callback_sender, post_envelope
from hub.workers.egress import EgressPolicy
from hub.workers.outbound import Attempt, OutboundSender
from hub.workers.retry import RetryPolicy

# The test servers run on loopback: allowed explicitly, as an operator would.
LOOPBACK = EgressPolicy(frozenset({"127.0.0.1"}))
FAST = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.02, jitter=0)

Answer = Callable[[int], tuple[int, dict[str, str], float]]


@contextmanager
def server(answer: Answer) -> Iterator[dict[str, Any]]:
    """A receiver speaking HTTP/1.1 with keep-alive (so a pooled client connection can be
    reused); ``answer(request number)`` gives (status, headers, delay)."""
    seen: dict[str, Any] = {"count": 0, "ports": set(), "bodies": []}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                seen["count"] += 1
                number = seen["count"]
                seen["ports"].add(self.client_address[1])
                seen["bodies"].append(body)
            status, headers, delay = answer(number)
            if delay:
                time.sleep(delay)
            payload = b'{"ok": true}'
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            return None

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            return None  # a client that timed out and hung up is what a test expects

    http = Quiet(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    seen["url"] = f"http://127.0.0.1:{http.server_port}/hook"
    try:
        yield seen
    finally:
        http.shutdown()
        http.server_close()
        thread.join(5)


def test_transient_answers_are_retried_and_every_attempt_is_seen() -> None:
    with server(lambda n: (503 if n < 3 else 200, {}, 0)) as seen:
        sender = OutboundSender(FAST, timeout=2, egress=LOOPBACK)
        attempts: list[tuple[int, Attempt]] = []
        result = sender.post(
            seen["url"],
            b'{"a": 1}',
            lambda number: {"X-SR-Attempt": str(number)},
            first_number=4,  # three attempts were made before (a redelivery)
            on_attempt=lambda number, attempt: attempts.append((number, attempt)),
        )
        sender.close()
    assert result.ok and result.attempts == 3
    assert [(n, a.status_code, a.retryable) for n, a in attempts] == [
        (4, 503, True),
        (5, 503, True),
        (6, 200, False),
    ]
    assert attempts[0][1].error == "HTTP 503" and attempts[0][1].started_at is not None
    assert seen["bodies"] == [b'{"a": 1}'] * 3


def test_a_final_answer_is_not_retried_and_redirects_are_not_followed() -> None:
    with server(lambda n: (404, {}, 0)) as seen:
        result = OutboundSender(FAST, timeout=2, egress=LOOPBACK).post(seen["url"], b"{}", {})
    assert (result.ok, result.attempts, result.last.status_code) == (False, 1, 404)
    with server(lambda n: (302, {"Location": "http://127.0.0.1:1/elsewhere"}, 0)) as seen:
        result = OutboundSender(FAST, timeout=2, egress=LOOPBACK).post(seen["url"], b"{}", {})
    assert (result.ok, result.attempts, result.last.error) == (False, 1, "HTTP 302")
    assert seen["count"] == 1  # the redirect target was never asked


def test_timeouts_and_unreachable_hosts_are_retried_then_reported() -> None:
    with server(lambda n: (200, {}, 1.0 if n == 1 else 0)) as seen:
        result = OutboundSender(FAST, timeout=0.3, egress=LOOPBACK).post(seen["url"], b"{}", {})
    assert result.ok and result.attempts == 2
    result = OutboundSender(FAST, timeout=0.3, egress=LOOPBACK).post(
        "http://127.0.0.1:1/closed", b"{}", {}
    )
    assert not result.ok and result.attempts == 4
    assert result.last.error is not None and result.last.error.startswith("network error")


def test_connections_are_pooled_per_thread() -> None:
    with server(lambda n: (200, {}, 0)) as seen:
        sender = OutboundSender(FAST, timeout=2, egress=LOOPBACK)
        for _ in range(5):
            assert sender.post(seen["url"], b"{}", {}).ok
        sender.close()
    assert seen["count"] == 5 and len(seen["ports"]) == 1  # one TCP connection, reused


def test_a_stop_request_ends_the_retries() -> None:
    stop = threading.Event()
    slow = RetryPolicy(attempts=10, initial_delay=30, max_delay=30, jitter=0)
    with server(lambda n: (503, {}, 0)) as seen:
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        result = OutboundSender(slow, timeout=2, egress=LOOPBACK).post(
            seen["url"], b"{}", {}, stop_event=stop
        )
    # the wait was cut short; at most the attempt it interrupted is made
    assert not result.ok and result.attempts <= 2
    assert time.monotonic() - started < 5


def test_dci_bodies_go_through_the_same_sender() -> None:
    with server(
        lambda n: (500 if n == 1 else 200, {"Content-Type": "application/json"}, 0)
    ) as seen:
        sender = callback_sender(timeout=2, attempts=3, backoff=0.01, egress=LOOPBACK)
        result = post_envelope(seen["url"], {"header": {"action": "on-search"}}, sender=sender)
        sender.close()
    assert result.ok and result.attempts == 2 and result.response_json == {"ok": True}
    assert seen["bodies"][-1] == b'{"header": {"action": "on-search"}}'
