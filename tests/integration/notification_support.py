"""Helpers for the notification tests: webhook receivers on loopback, and the relay, dispatch
and delivery workers of one hub running as threads (as ``srhub run`` has them)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from hub.broker import connect
from hub.pipeline.dispatch import dispatch_handlers
from hub.pipeline.relay_worker import RelayWorker
from hub.runtime import HubRuntime
from hub.settings import Settings
from hub.subscriptions.delivery import DeliveryPolicy, start_delivery_workers
from hub.subscriptions.tables import DeliveryAttempt
from hub.workers.middleware import OutcomeCounter
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import DISPATCH_QUEUE

FAST_POLICY = DeliveryPolicy(
    retry=RetryPolicy(attempts=3, initial_delay=0.05, max_delay=0.2, jitter=0.025),
    timeout=2.0,
    refresh=0.2,
    receive_timeout=0.1,
)


@dataclass
class Receiver:
    """A webhook endpoint: records every request; ``behave`` picks (status, delay) per call."""

    behave: Callable[[int], tuple[int, float]] = lambda _n: (200, 0.0)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            number = len(self.requests) + 1
            self.requests.append(
                {
                    "at": time.monotonic(),
                    "headers": dict(request.headers),
                    "body": body,
                    "json": json.loads(body) if body else None,
                }
            )
        status, delay = self.behave(number)
        if delay:
            time.sleep(delay)
        return Response("{}", status=status, mimetype="application/json")(environ, start_response)

    def ok_events(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests]


@contextmanager
def receiver(behave: Callable[[int], tuple[int, float]] | None = None) -> Iterator[Receiver]:
    found = Receiver(behave) if behave else Receiver()
    server = make_server("127.0.0.1", 0, found, threaded=True)
    found.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        thread.join(5)


@contextmanager
def notification_workers(
    settings: Settings,
    runtime: HubRuntime,
    policy: DeliveryPolicy = FAST_POLICY,
    relay: bool = True,
    outcomes: OutcomeCounter | None = None,
) -> Iterator[Any]:
    """Relay (optional), dispatch and delivery workers on ``settings``' broker, as threads.
    ``outcomes`` (middleware) counts what the dispatch worker did."""
    workers: list[Any] = [
        ConsumerRuntime(
            "dispatch",
            DISPATCH_QUEUE,
            lambda: connect(settings, wait_for=0),
            runtime.sessions,
            dispatch_handlers(runtime),
            retry=RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.2, jitter=0.05),
            receive_timeout=0.1,
            middleware=[outcomes] if outcomes is not None else (),
        )
    ]
    if relay:
        workers.append(
            RelayWorker(lambda: connect(settings, wait_for=0), runtime.sessions, poll_interval=0.05)
        )
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    delivery = start_delivery_workers(settings, runtime, policy)
    try:
        yield delivery
    finally:
        delivery.stop(10)
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(20)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.05)


def log_rows(runtime: HubRuntime, code: str) -> list[DeliveryAttempt]:
    """A subscription's delivery log, oldest first."""
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.subscription_code == code)
                .order_by(DeliveryAttempt.id)
            )
        )
