"""Waiting for a broker that is not there yet: retry with backoff and a status others can read.

A worker that starts before RabbitMQ (or PostgreSQL) is up must neither exit (a supervisor
would restart it in a tight loop) nor hang silently: it waits with exponential backoff and
jitter, logs each failed attempt, and exposes a ``BrokerStatus`` that a health check in another
thread can read at any time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential,
    wait_random,
)

from standards.timeutil import utcnow

from .base import BrokerStatus
from .errors import BrokerError, ConnectionClosed

T = TypeVar("T")

log = logging.getLogger(__name__)


class ConnectionKeeper:
    """Runs connection attempts with backoff and records the resulting status.

    ``wait_for`` is how many seconds to keep retrying before giving up with
    ``ConnectionClosed``; ``None`` waits for ever (the right choice for workers).
    """

    def __init__(
        self,
        describe: str,
        wait_for: float | None = None,
        initial_backoff: float = 0.2,
        max_backoff: float = 15.0,
    ) -> None:
        self.describe = describe  # where we connect to, without credentials
        self.wait_for = wait_for
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._lock = threading.Lock()
        self._status = BrokerStatus(state="closed", since=utcnow())

    @property
    def status(self) -> BrokerStatus:
        with self._lock:
            return self._status

    def _set(self, status: BrokerStatus) -> None:
        with self._lock:
            self._status = status

    def mark_connected(self) -> None:
        self._set(BrokerStatus(state="connected", since=utcnow()))

    def mark_lost(self, error: str) -> None:
        """The connection went away; the next call will reconnect."""
        current = self.status
        if current.state == "connected":
            self._set(BrokerStatus(state="waiting", since=utcnow(), last_error=error))

    def mark_closed(self) -> None:
        self._set(BrokerStatus(state="closed", since=utcnow()))

    def _failed_attempt(self, exc: ConnectionClosed) -> BrokerStatus:
        """Record one failed attempt. The count and ``since`` run on across ``connect`` calls
        until a connection succeeds, so a caller that retries in its own loop
        (``wait_for=0``) shows the same status as one that waits here."""
        error = str(exc) or type(exc).__name__
        with self._lock:
            current = self._status
            waiting = current.state == "waiting"
            self._status = BrokerStatus(
                state="waiting",
                since=current.since if waiting and current.since else utcnow(),
                last_error=error,
                attempts=(current.attempts if waiting else 0) + 1,
            )
            return self._status

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        status = self.status
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "broker %s unreachable (%s); attempt %d failed, next in %.1fs, waiting since %s",
            self.describe,
            status.last_error,
            status.attempts,
            delay,
            status.since.isoformat(timespec="seconds") if status.since else "?",
        )

    def connect(self, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it returns; it signals a transient failure by raising
        ``ConnectionClosed``. Any other exception (bad credentials, bad URL) propagates at once:
        retrying cannot fix it."""
        retrying = Retrying(
            retry=retry_if_exception_type(ConnectionClosed),
            wait=wait_exponential(multiplier=self.initial_backoff, max=self.max_backoff)
            + wait_random(0, self.initial_backoff),
            stop=stop_never if self.wait_for is None else stop_after_delay(self.wait_for),
            before_sleep=self._before_sleep,
            reraise=True,
        )

        def tracked() -> T:
            try:
                return attempt()
            except ConnectionClosed as exc:
                self._failed_attempt(exc)
                raise

        try:
            result = retrying(tracked)
        except ConnectionClosed as exc:
            log.warning(
                "broker %s unreachable (%s); giving up after %d attempt(s) in this call",
                self.describe,
                exc,
                self.status.attempts,
            )
            raise
        except BrokerError as exc:
            self._set(BrokerStatus(state="failed", since=utcnow(), last_error=str(exc)))
            raise
        self.mark_connected()
        return result
