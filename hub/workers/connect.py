"""Getting a broker connection without giving up: workers wait for the broker, visibly.

A worker started before its broker (or during a broker restart) must neither exit in a loop nor
hang silently: it retries with capped exponential backoff and jitter, shows
``waiting_for_broker`` with the reason in its status and log, and stops promptly on SIGTERM.

Only broker and connection errors are waited out (``RETRIED``): the broker is down, refuses
for now, or two processes raced declaring the topology. Anything else (missing keys, a
setting the backend cannot use, a bug) is raised at once: waiting for ever would hide a broken
install behind a worker that looks merely patient.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence

from tenacity import RetryCallState, retry_if_exception_type

from hub.broker.base import Broker, QueueSpec
from hub.broker.errors import BrokerError
from hub.workers.retry import RetryPolicy
from hub.workers.status import RUNNING, WAITING_FOR_BROKER, WorkerStatus

log = logging.getLogger(__name__)

BrokerFactory = Callable[[], Broker]

# What "the broker is not there (yet)" looks like: the backends convert their drivers' errors
# into BrokerError where they enter; socket-level errors (refused, reset, timed out, a name
# that does not resolve yet) may still surface from a factory. Not OSError as a whole: a
# permission or a missing file is an install to fix, not an outage to wait out.
RETRIED: tuple[type[BaseException], ...] = (
    BrokerError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)

WAIT_FOR_BROKER = RetryPolicy(attempts=0, initial_delay=0.5, max_delay=30.0, jitter=0.5)


def connect_with_retry(
    factory: BrokerFactory,
    topology: Sequence[QueueSpec],
    status: WorkerStatus,
    stop: threading.Event,
    *,
    policy: RetryPolicy = WAIT_FOR_BROKER,
) -> Broker | None:
    """Connect and declare ``topology``; retry broker errors until it works or ``stop`` is
    set (-> None). Any other error propagates."""

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

    retrying = policy.retrying(
        retry=retry_if_exception_type(RETRIED), stop_event=stop, before_sleep=report
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
    except RETRIED:
        if stop.is_set():
            return None
        raise
    return None
