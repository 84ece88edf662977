"""One retry policy for everything in the hub that tries again after a failure.

The consumer runtime retrying a transiently failing message, a worker waiting for its broker,
the relay waiting after a refused batch, a delivery sender posting to a webhook, a DCI callback:
all wait the same way, exponential backoff capped at ``max_delay`` plus random jitter (so
workers that failed together do not retry in lock-step), and all stop early when their stop
event is set (SIGTERM must never wait for a backoff). Only what they retry and how many
attempts they get differs, and that is the policy's data, not another class.

(Connectors keep their own ``connectors.base.resilience.RetryPolicy``: it honours a partner's
``Retry-After`` and shares a circuit breaker, and connectors do not import the hub.)
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    stop_after_attempt,
    stop_never,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again.

    ``attempts`` counts every try, the first included; 0 means "until stopped" (a worker
    waiting for its broker). The n-th wait is ``initial_delay * 2**(n-1)``, capped at
    ``max_delay``, plus a random ``0..jitter`` seconds.
    """

    attempts: int = 5
    initial_delay: float = 0.2
    max_delay: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 0 or self.initial_delay < 0 or self.max_delay < 0 or self.jitter < 0:
            raise ValueError("retry policy values must not be negative")

    def wait(self) -> wait_base:
        """The tenacity wait strategy of this policy."""
        return wait_exponential(multiplier=self.initial_delay, max=self.max_delay) + wait_random(
            0, self.jitter
        )

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (for loops that count
        their failures themselves, e.g. the relay between batches)."""
        exponent = min(max(failures, 1) - 1, 30)
        return min(self.max_delay, self.initial_delay * 2**exponent) + random.uniform(
            0, self.jitter
        )

    def retrying(
        self,
        *,
        retry: retry_base,
        stop_event: threading.Event | None = None,
        attempts: int | None = None,
        before_sleep: Callable[[RetryCallState], None] | None = None,
        retry_error_callback: Callable[[RetryCallState], Any] | None = None,
    ) -> Retrying:
        """A tenacity ``Retrying`` for this policy. ``attempts`` overrides the policy's (e.g.
        the runtime's retries after a first failure in a batch); ``stop_event`` ends the
        retries early and interrupts the wait; with ``retry_error_callback`` the last outcome
        is returned instead of raising."""
        count = self.attempts if attempts is None else attempts
        stop: stop_base = stop_after_attempt(count) if count > 0 else stop_never
        if stop_event is not None:
            stop = stop | stop_when_event_set(stop_event)
        options: dict[str, Any] = {
            "retry": retry,
            "stop": stop,
            "wait": self.wait(),
            "reraise": retry_error_callback is None,
        }
        if stop_event is not None:
            options["sleep"] = stop_event.wait
        if before_sleep is not None:
            options["before_sleep"] = before_sleep
        if retry_error_callback is not None:
            options["retry_error_callback"] = retry_error_callback
        return Retrying(**options)
