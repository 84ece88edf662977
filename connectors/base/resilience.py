"""Resilience in one place: timeout, retry, circuit breaker and rate limit around every call.

Each partner connector used to grow its own retry loop; here there is one, so every partner is
treated the same way and an operator tunes it with the same settings block:

- **timeout**: every attempt receives the seconds it may take and must pass them on (requests
  ``timeout=``, zeep ``operation_timeout``). There is no call without one: a partner that hangs
  must cost a bounded time, never a stuck worker.
- **retry** (tenacity): only ``TransientPartnerError`` is retried, with exponential backoff and
  jitter so many workers do not hammer a recovering partner in step; a partner's
  ``Retry-After`` is honoured (waited at least, capped). A permanent error is raised at once.
- **circuit breaker**, one per connector: after ``failure_threshold`` transient failures in a
  row it opens and refuses calls locally for ``cooldown`` seconds, then lets one trial call
  through (half-open); success closes it, failure opens it again.
- **rate limit**, one token bucket per partner, shared by every connector that calls it.

Time comes from a ``Clock``, so tests drive cool-downs and backoff without sleeping.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type

from connectors.base.clock import SYSTEM_CLOCK, Clock, Deadline
from connectors.base.errors import (
    CircuitOpenError,
    DeadlineExceeded,
    PartnerError,
    RateLimitTimeout,
    TransientPartnerError,
    safe_reason,
)
from connectors.base.status import ConnectorStatus

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


# --- circuit breaker -----------------------------------------------------------------------


class CircuitBreaker:
    """Stops calling a partner that keeps failing, and probes it again after a cool-down.

    Only transient failures count: a partner that answers "400 bad request" is up. The breaker
    is shared by the threads of one connector, so every transition happens under a lock.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Clock = SYSTEM_CLOCK,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or cooldown < 0 or half_open_max_calls < 1:
            raise ValueError("failure_threshold and half_open_max_calls >= 1, cooldown >= 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0

    @property
    def state(self) -> str:
        with self._lock:
            return self._current_locked()

    def _current_locked(self) -> str:
        if self._state == OPEN and self._clock.monotonic() - self._opened_at >= self.cooldown:
            self._move_locked(HALF_OPEN)
        return self._state

    def _move_locked(self, new: str) -> None:
        old, self._state = self._state, new
        if new == HALF_OPEN:
            self._trials = 0
        if new == OPEN:
            self._opened_at = self._clock.monotonic()
        if new == CLOSED:
            self._failures = 0
        if old != new:
            log.log(
                logging.WARNING if new == OPEN else logging.INFO,
                "circuit %s: %s -> %s",
                self.name,
                old,
                new,
            )
            if self._on_change is not None:
                self._on_change(old, new)

    def before_call(self) -> None:
        """Admit one call or raise ``CircuitOpenError`` saying when to come back."""
        with self._lock:
            state = self._current_locked()
            if state == CLOSED:
                return
            if state == HALF_OPEN and self._trials < self.half_open_max_calls:
                self._trials += 1
                return
            if state == HALF_OPEN:
                retry_in = self.cooldown  # a trial is in flight; its verdict decides
            else:
                retry_in = self.cooldown - (self._clock.monotonic() - self._opened_at)
            raise CircuitOpenError(self.name, max(0.0, retry_in))

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            if self._state != CLOSED:
                self._move_locked(CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            state = self._current_locked()
            if state == HALF_OPEN:
                self._move_locked(OPEN)
                return
            self._failures += 1
            if state == CLOSED and self._failures >= self.failure_threshold:
                self._move_locked(OPEN)

    def cancel_trial(self) -> None:
        """Give back a half-open trial slot taken by a call that was then not made."""
        with self._lock:
            if self._state == HALF_OPEN and self._trials > 0:
                self._trials -= 1

    def reset(self) -> None:
        """Close the circuit by hand (an operator knows the partner is back)."""
        with self._lock:
            self._move_locked(CLOSED)


# --- rate limit ------------------------------------------------------------------------------


class TokenBucket:
    """At most ``rate`` calls per second on average, with bursts up to ``capacity``."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Clock = SYSTEM_CLOCK):
        if rate <= 0:
            raise ValueError("rate must be positive (calls per second)")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        if self.capacity < 1:
            raise ValueError("capacity must allow at least one call")
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._stamp = clock.monotonic()

    def _refill_locked(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> float:
        """Take a token and return 0.0, or take nothing and return the seconds to wait."""
        with self._lock:
            self._refill_locked()
            if self._tokens >= 1 - 1e-9:  # tolerate float drift from refills
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self, max_wait: float | None = None, partner: str = "") -> None:
        """Block (on the clock) until a token is free; ``RateLimitTimeout`` past ``max_wait``."""
        waited = 0.0
        while True:
            wait = self.try_acquire()
            if wait == 0.0:
                return
            if max_wait is not None and waited + wait > max_wait:
                raise RateLimitTimeout(partner or "partner", wait)
            self._clock.sleep(wait)
            waited += wait


class PartnerLimiters:
    """One token bucket per partner, shared by all connectors of the process that call it.

    The first connector to ask for a partner's bucket sets its rate; later requests for the
    same partner get the same bucket, so two connectors cannot double the agreed rate.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def for_partner(self, partner: str, rate: float, capacity: float | None = None) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(partner)
            if bucket is None:
                bucket = TokenBucket(rate, capacity, self._clock)
                self._buckets[partner] = bucket
            return bucket


# --- retry policy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    max_attempts: int = 4  # the first call included
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5  # up to this many seconds added at random to each wait
    max_retry_after: float = 120.0  # a longer Retry-After gives up instead of waiting

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds before retry ``retry_number`` (1-based): exponential, capped, jittered."""
        base = min(self.max_backoff, self.initial_backoff * (2.0 ** (retry_number - 1)))
        spread = (rng or random).uniform(0, self.jitter) if self.jitter > 0 else 0.0
        return min(self.max_backoff, base + spread)


# --- the combination -------------------------------------------------------------------------

# The "resilience" block every connector's settings schema includes (see contract.py).
RESILIENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
        "connect_timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
        "initial_backoff_seconds": {"type": "number", "minimum": 0, "maximum": 600},
        "max_backoff_seconds": {"type": "number", "minimum": 0, "maximum": 3600},
        "jitter_seconds": {"type": "number", "minimum": 0, "maximum": 600},
        "max_retry_after_seconds": {"type": "number", "minimum": 0, "maximum": 3600},
        "failure_threshold": {"type": "integer", "minimum": 1, "maximum": 1000},
        "cooldown_seconds": {"type": "number", "minimum": 0, "maximum": 86400},
        "rate_per_second": {"type": "number", "exclusiveMinimum": 0, "maximum": 100000},
        "burst": {"type": "number", "minimum": 1, "maximum": 100000},
    },
}


class ResilientCaller:
    """Runs partner calls under one connector's timeout, retry, breaker and rate limit.

    ``call(fn)`` calls ``fn(timeout)`` where ``timeout`` is the seconds this attempt may take
    (the configured timeout, shortened to what is left of the deadline). Each attempt first
    passes the breaker and the rate limiter; a transient failure is recorded with the breaker
    and retried; the final outcome is recorded in the connector's status.
    """

    def __init__(
        self,
        partner: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: TokenBucket | None = None,
        status: ConnectorStatus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("every partner call needs a positive timeout")
        self.partner = partner
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else min(timeout, 5)
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(partner, clock=clock)
        self.limiter = limiter
        self.status = status
        self.clock = clock
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls,
        partner: str,
        settings: Mapping[str, Any] | None,
        *,
        connector: str | None = None,
        status: ConnectorStatus | None = None,
        limiters: PartnerLimiters | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> ResilientCaller:
        """Build from a ``RESILIENCE_SCHEMA`` block; absent keys take safe defaults."""
        s = dict(settings or {})
        on_change = (lambda _old, new: status.set_circuit(new)) if status is not None else None
        breaker = CircuitBreaker(
            connector or partner,
            failure_threshold=int(s.get("failure_threshold", 5)),
            cooldown=float(s.get("cooldown_seconds", 30.0)),
            clock=clock,
            on_change=on_change,
        )
        limiter = None
        if "rate_per_second" in s:
            pool = limiters or PartnerLimiters(clock)
            limiter = pool.for_partner(partner, float(s["rate_per_second"]), s.get("burst"))
        retry = RetryPolicy(
            max_attempts=int(s.get("max_attempts", 4)),
            initial_backoff=float(s.get("initial_backoff_seconds", 0.5)),
            max_backoff=float(s.get("max_backoff_seconds", 30.0)),
            jitter=float(s.get("jitter_seconds", 0.5)),
            max_retry_after=float(s.get("max_retry_after_seconds", 120.0)),
        )
        timeout = float(s.get("timeout_seconds", 10.0))
        connect = s.get("connect_timeout_seconds")
        return cls(
            partner,
            timeout=timeout,
            connect_timeout=float(connect) if connect is not None else None,
            retry=retry,
            breaker=breaker,
            limiter=limiter,
            status=status,
            clock=clock,
        )

    # --- the call ------------------------------------------------------------------------------

    def call(
        self,
        fn: Callable[[float], T],
        *,
        operation: str = "call",
        deadline: Deadline | None = None,
    ) -> T:
        """Run ``fn(timeout)`` with retries; raise the last error when retrying must stop."""
        retrying = Retrying(
            retry=retry_if_exception_type(TransientPartnerError),
            wait=self._wait,
            stop=lambda state: self._should_stop(state, deadline),
            sleep=self.clock.sleep,
            before_sleep=lambda state: self._before_sleep(state, operation),
            reraise=True,
        )
        try:
            result: T = retrying(self._attempt, fn, operation, deadline)
        except TransientPartnerError as error:
            if self.status is not None:
                self.status.record_failure(error)
            raise
        except PartnerError as error:
            if self.status is not None:
                self.status.record_error(error)  # it answered: up, but said no
            raise
        except (CircuitOpenError, RateLimitTimeout, DeadlineExceeded) as error:
            if self.status is not None:
                self.status.count("not_attempted")
                self.status.record_failure(error)
            raise
        if self.status is not None:
            self.status.record_success()
        return result

    def _attempt(self, fn: Callable[[float], T], operation: str, deadline: Deadline | None) -> T:
        timeout = self.timeout
        if deadline is not None:
            timeout = min(timeout, deadline.remaining())
            if timeout <= 0:
                raise DeadlineExceeded(self.partner)
        self.breaker.before_call()
        if self.limiter is not None:
            max_wait = deadline.remaining() if deadline is not None else self.timeout
            try:
                self.limiter.acquire(max_wait, self.partner)
            except RateLimitTimeout:
                self.breaker.cancel_trial()  # no call was made: no verdict on the partner
                raise
            if deadline is not None:
                timeout = min(timeout, deadline.remaining())
                if timeout <= 0:
                    raise DeadlineExceeded(self.partner)
        if self.status is not None:
            self.status.count("calls")
        try:
            result = fn(timeout)
        except TransientPartnerError:
            self.breaker.record_failure()
            if self.status is not None:
                self.status.count("failures")
            raise
        except PartnerError:
            self.breaker.record_success()  # it answered: the partner is up
            if self.status is not None:
                self.status.count("failures")
            raise
        except BaseException:
            # A bug or an unmapped error says nothing about the partner; give back a half-open
            # trial slot so the breaker cannot stay stuck waiting for a verdict.
            self.breaker.cancel_trial()
            raise
        self.breaker.record_success()
        return result

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        backoff = self.retry.backoff(state.attempt_number, self._rng)
        hint = getattr(error, "retry_after", None)
        if hint is not None and hint > 0:
            return max(float(hint), backoff)  # never sooner than the partner asked
        return backoff

    def _should_stop(self, state: RetryCallState, deadline: Deadline | None) -> bool:
        if state.attempt_number >= self.retry.max_attempts:
            return True
        error = state.outcome.exception() if state.outcome else None
        hint = getattr(error, "retry_after", None)
        if hint is not None and hint > self.retry.max_retry_after:
            log.warning(
                "%s asks to retry after %.0fs, more than the %.0fs allowed; giving up",
                self.partner,
                hint,
                self.retry.max_retry_after,
            )
            return True
        return deadline is not None and state.upcoming_sleep >= deadline.remaining()

    def _before_sleep(self, state: RetryCallState, operation: str) -> None:
        error = state.outcome.exception() if state.outcome else None
        if self.status is not None:
            self.status.count("retries")
        log.info(
            "%s %s failed (%s); retry %d in %.2fs",
            self.partner,
            operation,
            safe_reason(error) if error else "?",
            state.attempt_number,
            state.upcoming_sleep,
        )
