"""Getting a broker connection without giving up: workers wait for the broker, visibly.

A worker started before its broker (or during a broker restart) must neither exit in a loop nor
hang silently: it retries with capped exponential backoff and jitter, shows
``waiting_for_broker`` with the reason in its status and log, and stops promptly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)

from hub.broker.base import Broker, QueueSpec
from hub.workers.status import RUNNING, WAITING_FOR_BROKER, WorkerStatus

log = logging.getLogger(__name__)

BrokerFactory = Callable[[], Broker]


def connect_with_retry(
    factory: BrokerFactory,
    topology: Sequence[QueueSpec],
    status: WorkerStatus,
    stop: threading.Event,
    *,
    initial_delay: float = 0.5,
    max_delay: float = 30.0,
) -> Broker | None:
    """Connect and declare ``topology``; retry until it works or ``stop`` is set (-> None)."""

    def report(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        status.record_error(exc or "unknown error")
        text = str(exc).splitlines()[0][:200] if exc and str(exc) else ""
        status.set_state(
            WAITING_FOR_BROKER,
            f"attempt {state.attempt_number} failed ({type(exc).__name__}: {text}); "
            f"retrying in {wait:.1f}s",
            log,
        )

    retrying = Retrying(
        # Any failure, not only BrokerError: a worker that exits on, say, a race while several
        # processes declare the topology at once would be restarted in a loop by its
        # supervisor; waiting with a visible reason is the promised behaviour.
        retry=retry_if_exception_type(Exception),
        wait=wait_exponential(multiplier=initial_delay, max=max_delay)
        + wait_random(0, initial_delay),
        stop=stop_when_event_set(stop),
        sleep=stop.wait,
        before_sleep=report,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1 and stop.is_set():
                    return None
                broker = factory()
                try:
                    broker.declare_topology(topology)
                except BaseException:
                    with contextlib.suppress(Exception):
                        broker.close()
                    raise
                status.set_state(RUNNING, "", log)
                return broker
    except Exception:
        if stop.is_set():
            return None
        raise
    return None
