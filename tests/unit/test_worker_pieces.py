"""The generic runtime's small parts: the one retry policy, waiting for a broker (only broker
errors are waited out), the one dead-letter header builder, middleware isolation."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tenacity import retry_if_exception_type

from hub.broker.base import (
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_LAST_FAILURE,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_QUEUE,
    H_ORIGINAL_ROUTING_KEY,
    H_REASON,
    Broker,
    DeadLetterReason,
    Delivery,
    Message,
)
from hub.broker.errors import ConnectionClosed
from hub.broker.messages import dead_letter_headers, delivery_dead_letter_headers
from hub.workers.connect import connect_with_retry
from hub.workers.errors import PermanentError, TransientError
from hub.workers.handlers import HandlerContext, HandlerResult
from hub.workers.middleware import Middleware, MiddlewareChain, OutcomeCounter
from hub.workers.retry import RetryPolicy
from hub.workers.status import RUNNING, WorkerStatus

# -- retry policy ------------------------------------------------------------------------------


def test_delays_grow_exponentially_are_capped_and_jittered() -> None:
    policy = RetryPolicy(attempts=5, initial_delay=0.5, max_delay=4.0, jitter=0.25)
    for failures, low in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        found = [policy.delay(failures) for _ in range(50)]
        assert all(low <= d <= low + 0.25 for d in found), (failures, found)
        assert len(set(found)) > 1  # jittered
    with pytest.raises(ValueError):
        RetryPolicy(attempts=-1)


def test_retrying_stops_after_its_attempts_and_at_once_when_stopped() -> None:
    policy = RetryPolicy(attempts=3, initial_delay=0.001, max_delay=0.001, jitter=0)
    calls = {"n": 0}

    def failing() -> None:
        calls["n"] += 1
        raise TransientError("busy")

    with pytest.raises(TransientError):
        policy.retrying(retry=retry_if_exception_type(TransientError))(failing)
    assert calls["n"] == 3

    stop = threading.Event()
    slow = RetryPolicy(attempts=0, initial_delay=30, max_delay=30, jitter=0)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(TransientError):
        slow.retrying(retry=retry_if_exception_type(TransientError), stop_event=stop)(failing)
    assert time.monotonic() - started < 5  # the 30 s wait was interrupted


# -- waiting for the broker ----------------------------------------------------------------------


class FakeBroker(Broker):
    declared = 0

    def declare_topology(self, queues: Any = ()) -> None:
        FakeBroker.declared += 1

    def publish(self, exchange: str, messages: Any) -> None:
        raise NotImplementedError

    def open_consumer(self, queue: str, prefetch: int = 10) -> Any:
        raise NotImplementedError

    def queue_depth(self, queue: str) -> int:
        return 0

    def purge(self, queue: str) -> int:
        return 0

    def close(self) -> None:
        pass


FAST = RetryPolicy(attempts=0, initial_delay=0.001, max_delay=0.01, jitter=0)


def test_broker_errors_are_waited_out_visibly() -> None:
    attempts = {"n": 0}

    def factory() -> Broker:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionClosed("connection refused")
        return FakeBroker()

    status = WorkerStatus("w")
    broker = connect_with_retry(factory, [], status, threading.Event(), policy=FAST)
    assert isinstance(broker, FakeBroker) and attempts["n"] == 3
    assert status.state == RUNNING
    assert status.last_error is not None and "ConnectionClosed" in status.last_error


@pytest.mark.parametrize("error", [ValueError("bad option"), KeyError("keys"), TypeError("x")])
def test_anything_but_a_broker_error_fails_at_once(error: Exception) -> None:
    attempts = {"n": 0}

    def factory() -> Broker:
        attempts["n"] += 1
        raise error

    with pytest.raises(type(error)):
        connect_with_retry(factory, [], WorkerStatus("w"), threading.Event(), policy=FAST)
    assert attempts["n"] == 1  # not retried: a broken install is not a broker outage


def test_a_stopped_worker_stops_waiting() -> None:
    stop = threading.Event()
    stop.set()

    def factory() -> Broker:
        raise ConnectionClosed("down")

    assert connect_with_retry(factory, [], WorkerStatus("w"), stop, policy=FAST) is None


# -- dead-letter headers -------------------------------------------------------------------------


def test_one_builder_writes_every_dead_letter_header() -> None:
    first = datetime(2025, 1, 1, tzinfo=UTC)
    reason = DeadLetterReason("MappingError", "row 3: bad date", 4, first, first + timedelta(1))
    message = Message(b"{}", "tax.income_row", "m-1", headers={"x-own": "kept"})
    headers = dead_letter_headers(message, reason, exchange="sr.inbound", queue="sr.ingest")
    assert headers == {
        "x-own": "kept",
        H_ERROR_CLASS: "MappingError",
        H_REASON: "row 3: bad date",
        H_ORIGINAL_EXCHANGE: "sr.inbound",
        H_ORIGINAL_ROUTING_KEY: "tax.income_row",
        H_ORIGINAL_QUEUE: "sr.ingest",
        H_ATTEMPTS: 4,
        H_FIRST_FAILURE: "2025-01-01T00:00:00+00:00",
        H_LAST_FAILURE: "2025-01-02T00:00:00+00:00",
    }
    delivery = Delivery(message, "sr.ingest", "sr.inbound", "tag", False, 4)
    assert delivery_dead_letter_headers(delivery, reason) == headers
    now = DeadLetterReason.now("DeliveryFailed", "5 attempts failed", 5)
    assert now.first_failure == now.last_failure and now.last_failure.tzinfo is not None


# -- middleware ----------------------------------------------------------------------------------


def _ctx() -> HandlerContext:
    message = Message(b"{}", "tax.income_row", "m-1")
    return HandlerContext("ingest", Delivery(message, "sr.ingest", "sr.inbound", 1, False, 1), None)


def test_a_failing_middleware_never_stops_the_others() -> None:
    class Broken(Middleware):
        def after(self, ctx: HandlerContext, event: Any, result: HandlerResult) -> None:
            raise RuntimeError("bug in monitoring")

        def failed(self, ctx: HandlerContext, event: Any, error: BaseException) -> None:
            raise RuntimeError("bug in monitoring")

    counter = OutcomeCounter()
    chain = MiddlewareChain([Broken(), counter])
    chain.after(_ctx(), {"id": "1"}, HandlerResult("review"))
    chain.failed(_ctx(), {"id": "2"}, PermanentError("bad", "MappingError"))
    chain.failed(_ctx(), {"id": "3"}, TransientError("busy"))  # will be retried: no failure yet
    chain.failed(_ctx(), {"id": "4"}, KeyError("bug"))
    assert counter.outcomes == {"review": 1}
    assert counter.failures == {"MappingError": 1, "KeyError": 1}


def test_a_file_the_install_lacks_is_not_an_outage() -> None:
    def factory() -> Broker:
        raise PermissionError("keys file not readable")

    with pytest.raises(PermissionError):
        connect_with_retry(factory, [], WorkerStatus("w"), threading.Event(), policy=FAST)
