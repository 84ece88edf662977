"""Resilience of partner calls: breaker states, which errors are retried, Retry-After, rate limit.

Time is a FakeClock: sleeps advance it instantly and are recorded, so backoff and cool-downs
are asserted exactly without the test waiting. The HTTP client's error mapping is checked with
``responses`` (a unit test of one client); real servers are in tests/integration.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

from connectors.base.clock import Deadline, FakeClock
from connectors.base.errors import (
    CircuitOpenError,
    DeadlineExceeded,
    PartnerBusy,
    PartnerConnectionError,
    PartnerProtocolError,
    PartnerRejected,
    PartnerTimeout,
    RateLimitTimeout,
)
from connectors.base.http import PartnerHttpClient, parse_retry_after
from connectors.base.resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    PartnerLimiters,
    ResilientCaller,
    RetryPolicy,
    TokenBucket,
)
from connectors.base.status import ConnectorStatus


class Flaky:
    """A partner call that raises the queued errors in order, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> str:
        self.timeouts.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    @property
    def calls(self) -> int:
        return len(self.timeouts)


def busy(status: int = 503, retry_after: float | None = None) -> PartnerBusy:
    return PartnerBusy("partner", "GET /x", status, retry_after)


def caller(clock: FakeClock, **kwargs) -> ResilientCaller:
    retry = kwargs.pop(
        "retry", RetryPolicy(max_attempts=4, initial_backoff=1.0, max_backoff=8, jitter=0.5)
    )
    threshold = kwargs.pop("failure_threshold", 100)
    status = kwargs.pop("status", ConnectorStatus("c", clock=clock))
    breaker = CircuitBreaker("c", failure_threshold=threshold, cooldown=30, clock=clock)
    return ResilientCaller(
        "partner",
        retry=retry,
        breaker=breaker,
        status=status,
        clock=clock,
        rng=random.Random(7),
        **kwargs,
    )


# --- circuit breaker -----------------------------------------------------------------------


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    clock = FakeClock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "p",
        failure_threshold=3,
        cooldown=30,
        clock=clock,
        on_change=lambda old, new: changes.append((old, new)),
    )
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == OPEN

    clock.advance(10)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.before_call()
    assert refused.value.retry_in == pytest.approx(20)

    clock.advance(20)
    assert breaker.state == HALF_OPEN
    breaker.before_call()  # the one trial call
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller must wait for the trial's verdict
    breaker.record_failure()
    assert breaker.state == OPEN  # trial failed: open again for a full cool-down
    clock.advance(29.9)
    assert breaker.state == OPEN
    clock.advance(0.1)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == CLOSED
    assert changes == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_breaker_counts_consecutive_failures_only() -> None:
    breaker = CircuitBreaker("p", failure_threshold=3, clock=FakeClock())
    for _ in range(5):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()  # a success in between resets the count
    assert breaker.state == CLOSED


def test_cancelled_trial_frees_the_half_open_slot() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("p", failure_threshold=1, cooldown=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    breaker.before_call()
    breaker.cancel_trial()
    breaker.before_call()  # admitted again: the first trial never reached the partner
    assert breaker.state == HALF_OPEN


# --- retries ---------------------------------------------------------------------------------


def test_transient_errors_are_retried_with_growing_jittered_backoff() -> None:
    clock = FakeClock()
    call = Flaky(busy(), PartnerTimeout("partner", "GET /x", "timeout"), busy(502))
    c = caller(clock)
    assert c.call(call) == "ok"
    assert call.calls == 4
    assert len(clock.sleeps) == 3
    for n, slept in enumerate(clock.sleeps, start=1):
        base = 1.0 * 2 ** (n - 1)
        assert base <= slept <= base + 0.5
    snapshot = c.status.snapshot()
    assert snapshot["counts"]["retries"] == 3
    assert snapshot["counts"]["calls"] == 4
    assert snapshot["state"] == "up"


@pytest.mark.parametrize(
    "error",
    [
        PartnerRejected("partner", "GET /x", 400),
        PartnerProtocolError("partner", "GET /x", "bad_json"),
        ValueError("a bug in the connector"),
    ],
)
def test_permanent_errors_and_bugs_are_not_retried(error: Exception) -> None:
    clock = FakeClock()
    call = Flaky(error)
    c = caller(clock)
    with pytest.raises(type(error)):
        c.call(call)
    assert call.calls == 1
    assert clock.sleeps == []
    assert c.breaker.state == CLOSED


def test_attempts_are_bounded_and_last_error_is_visible() -> None:
    clock = FakeClock()
    call = Flaky(*(busy() for _ in range(10)))
    c = caller(clock)
    with pytest.raises(PartnerBusy):
        c.call(call, operation="GET /x")
    assert call.calls == 4
    snapshot = c.status.snapshot()
    assert "http_503" in snapshot["last_error"]
    assert snapshot["state"] == "down"  # never succeeded, failing now


def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    call = Flaky(busy(429, retry_after=7), busy(503, retry_after=0.2))
    c = caller(clock, retry=RetryPolicy(max_attempts=4, initial_backoff=1.0, jitter=0.0))
    assert c.call(call) == "ok"
    # 7 s asked for is longer than the 1 s backoff: wait 7; 0.2 s is shorter than 2 s backoff
    assert clock.sleeps == [7.0, 2.0]


def test_retry_after_beyond_the_cap_gives_up_instead_of_waiting() -> None:
    clock = FakeClock()
    call = Flaky(busy(503, retry_after=3600))
    c = caller(clock, retry=RetryPolicy(max_attempts=4, max_retry_after=120))
    with pytest.raises(PartnerBusy):
        c.call(call)
    assert call.calls == 1
    assert clock.sleeps == []


def test_breaker_opening_stops_retries_and_later_calls_are_not_attempted() -> None:
    clock = FakeClock()
    call = Flaky(*(busy() for _ in range(10)))
    c = caller(clock, failure_threshold=2, retry=RetryPolicy(max_attempts=6, jitter=0))
    with pytest.raises(CircuitOpenError):
        c.call(call)
    assert call.calls == 2
    with pytest.raises(CircuitOpenError):
        c.call(call)
    assert call.calls == 2  # refused locally: the partner was not called
    snapshot = c.status.snapshot()
    assert snapshot["counts"]["not_attempted"] == 2
    assert snapshot["state"] == "down"


def test_every_attempt_gets_a_timeout_bounded_by_the_deadline() -> None:
    clock = FakeClock()
    call = Flaky(busy(), busy())
    c = caller(clock, timeout=10.0, retry=RetryPolicy(max_attempts=5, initial_backoff=1, jitter=0))
    deadline = Deadline(12.0, clock)
    assert c.call(call, deadline=deadline) == "ok"
    # 12 s budget: 10 s (the configured timeout); after a 1 s wait 11 s are left, still capped
    # at 10; after a 2 s wait only 9 s are left, so the third attempt gets 9
    assert call.timeouts == [10.0, 10.0, 9.0]


def test_retries_stop_when_the_next_wait_would_pass_the_deadline() -> None:
    clock = FakeClock()
    call = Flaky(*(busy() for _ in range(10)))
    c = caller(clock, retry=RetryPolicy(max_attempts=10, initial_backoff=2, jitter=0))
    with pytest.raises(PartnerBusy):
        c.call(call, deadline=Deadline(5.0, clock))
    # waits 2 then 4 would be needed; 2 fits in 5 s, then only 3 s remain: stop
    assert call.calls == 2
    assert clock.sleeps == [2.0]


def test_spent_deadline_is_not_attempted() -> None:
    clock = FakeClock()
    deadline = Deadline(1.0, clock)
    clock.advance(2)
    call = Flaky()
    with pytest.raises(DeadlineExceeded):
        caller(clock).call(call, deadline=deadline)
    assert call.calls == 0


def test_zero_timeout_is_refused() -> None:
    with pytest.raises(ValueError):
        ResilientCaller("p", timeout=0)


# --- rate limit ------------------------------------------------------------------------------


def test_token_bucket_enforces_the_rate_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, capacity=5, clock=clock)
    start = clock.monotonic()
    for _ in range(25):
        bucket.acquire()
    elapsed = clock.monotonic() - start
    assert elapsed == pytest.approx((25 - 5) / 5)  # 5 free, then 5 per second
    assert bucket.try_acquire() == pytest.approx(0.2)
    clock.advance(0.2)
    assert bucket.try_acquire() == 0.0


def test_token_bucket_refuses_a_wait_longer_than_allowed() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock)
    bucket.acquire()
    with pytest.raises(RateLimitTimeout):
        bucket.acquire(max_wait=0.5, partner="tax")


def test_limiter_is_shared_per_partner() -> None:
    limiters = PartnerLimiters(FakeClock())
    first = limiters.for_partner("civil_registry", rate=2)
    assert limiters.for_partner("civil_registry", rate=50) is first
    assert limiters.for_partner("tax", rate=2) is not first


def test_caller_goes_through_the_rate_limit() -> None:
    clock = FakeClock()
    limiter = TokenBucket(rate=10, capacity=1, clock=clock)
    c = caller(clock, limiter=limiter)
    start = clock.monotonic()
    for _ in range(11):
        c.call(Flaky())
    assert clock.monotonic() - start == pytest.approx(1.0)


# --- HTTP client ---------------------------------------------------------------------------


def http_client(clock: FakeClock, max_attempts: int = 3) -> PartnerHttpClient:
    c = caller(
        clock,
        timeout=4.0,
        connect_timeout=1.5,
        retry=RetryPolicy(max_attempts=max_attempts, initial_backoff=0.1, jitter=0),
    )
    return PartnerHttpClient("http://partner.test/api/", c)


@responses.activate
def test_http_client_always_sends_a_timeout_and_retries_503_with_retry_after() -> None:
    clock = FakeClock()
    url = "http://partner.test/api/records"
    responses.get(url, status=503, headers={"Retry-After": "3"})
    responses.get(url, json={"records": []})
    client = http_client(clock)
    assert client.get_json("records", params={"after": "5"}) == {"records": []}
    assert len(responses.calls) == 2
    for call in responses.calls:
        assert call.request.req_kwargs["timeout"] == (1.5, 4.0)
    assert clock.sleeps == [3.0]


@responses.activate
def test_http_client_does_not_retry_a_rejection() -> None:
    clock = FakeClock()
    responses.get("http://partner.test/api/people/1", status=404)
    with pytest.raises(PartnerRejected) as rejected:
        http_client(clock).get("people/1")
    assert rejected.value.status == 404
    assert len(responses.calls) == 1


@responses.activate
def test_http_client_maps_driver_errors_to_transient_errors() -> None:
    clock = FakeClock()
    url = "http://partner.test/api/x"
    responses.get(url, body=requests.ConnectTimeout("slow"))
    responses.get(url, body=requests.ConnectionError("refused"))
    with pytest.raises(PartnerConnectionError):
        http_client(clock, max_attempts=2).get("x")
    assert len(responses.calls) == 2  # the timeout was retried, then the refusal was final


@responses.activate
def test_http_client_refuses_bad_json_and_paths_outside_the_base() -> None:
    clock = FakeClock()
    responses.get("http://partner.test/api/x", body=b"<html>", status=200)
    client = http_client(clock)
    with pytest.raises(PartnerProtocolError):
        client.get_json("x")
    with pytest.raises(ValueError):
        client.url("../admin")
    with pytest.raises(TypeError):
        client.get("x", timeout=None)


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@responses.activate
def test_http_client_does_not_follow_redirects() -> None:
    clock = FakeClock()
    responses.get(
        "http://partner.test/api/x", status=302, headers={"Location": "http://elsewhere.test/"}
    )
    with pytest.raises(PartnerProtocolError, match="redirect"):
        http_client(clock).get("x")
    assert len(responses.calls) == 1


def test_a_partner_saying_no_is_an_error_but_not_an_outage() -> None:
    clock = FakeClock()
    c = caller(clock)
    for _ in range(5):
        with pytest.raises(PartnerRejected):
            c.call(Flaky(PartnerRejected("partner", "GET /people/1", 404)))
    snapshot = c.status.snapshot()
    assert snapshot["state"] == "up"
    assert "http_404" in snapshot["last_error"]
    assert snapshot["consecutive_failures"] == 0


def test_one_logical_failure_is_counted_once() -> None:
    clock = FakeClock()
    status = ConnectorStatus("c", clock=clock)
    c = caller(clock, status=status, retry=RetryPolicy(max_attempts=3, jitter=0))
    with pytest.raises(PartnerBusy) as caught:
        c.call(Flaky(busy(), busy(), busy()))
    status.record_failure(caught.value)  # a runner catching the same error again
    snapshot = status.snapshot()
    assert snapshot["consecutive_failures"] == 1
    assert snapshot["counts"]["failures"] == 3  # but every attempt is counted as an attempt
    c.call(Flaky())
    assert status.snapshot()["consecutive_failures"] == 0


def test_breaker_and_bucket_are_consistent_under_concurrent_use() -> None:
    import threading

    clock = FakeClock()  # time stands still: exactly `capacity` tokens exist
    bucket = TokenBucket(rate=1, capacity=100, clock=clock)
    breaker = CircuitBreaker("p", failure_threshold=400, clock=clock)
    granted: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        mine = 0
        for _ in range(50):
            if bucket.try_acquire() == 0.0:
                mine += 1
            breaker.record_failure()
        granted.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 100
    assert breaker.state == OPEN  # 400 failures counted exactly, none lost to a race


def test_a_bug_during_a_half_open_trial_does_not_wedge_the_breaker() -> None:
    clock = FakeClock()
    c = caller(clock, failure_threshold=1, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(PartnerBusy):
        c.call(Flaky(busy()))
    assert c.breaker.state == OPEN
    clock.advance(30.5)
    with pytest.raises(ValueError):
        c.call(Flaky(ValueError("bug")))
    assert c.call(Flaky()) == "ok"  # the next trial is admitted and closes the circuit
    assert c.breaker.state == CLOSED
