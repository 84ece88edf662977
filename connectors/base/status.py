"""What each connector is doing, in a form a health page can show without exposing anyone.

A partner that is down must be visible as down, with when it last worked and why it stopped,
instead of showing up only as missing data days later. The status keeps reasons produced by
``errors.safe_reason`` (partner, operation, reason code), never payloads or identifiers.

Writers are the connector's own threads (runner, HTTP views, retry loop); readers are the
monitoring pages. Every change and ``snapshot`` take one lock, so a reader never sees half an
update.

Some trouble is not a failed call but a promise the partner has not kept (a subscription it
never confirmed). A connector registers a *condition* for it: a function read at every
``snapshot``; while it returns a reason, the connector is at least ``degraded`` and the reason
is listed. Reading it when the page is looked at, not on a timer, means a deadline that passes
while nothing else happens still shows.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base.clock import SYSTEM_CLOCK, Clock
from connectors.base.errors import safe_reason

COUNTED_MARK = "_srhub_failure_counted"

UP = "up"
DEGRADED = "degraded"  # working, but recent calls failed or needed retries
DOWN = "down"  # the circuit is open, or the last attempts all failed
PAUSED = "paused"  # stopped on purpose by an operator

# Counters a connector may bump; unknown names are refused so typos do not vanish silently.
COUNTERS: tuple[str, ...] = (
    "calls",  # attempts made to the partner (each retry counts)
    "retries",
    "failures",  # attempts that failed, transient or permanent
    "not_attempted",  # refused locally: circuit open, rate limit, deadline
    "records_published",
    "polls",
    "pushes_accepted",
    "pushes_refused",
    "callbacks",  # answers the partner called back with (e.g. DCI on-subscribe, on-search)
    "files_processed",
    "files_rejected",
    "files_duplicate",
    "rows_rejected",
    "lookups",
)


@dataclass
class ConnectorStatus:
    """Live state of one connector; read it from any thread through ``snapshot``."""

    name: str
    clock: Clock = SYSTEM_CLOCK
    paused: bool = False
    circuit: str = "closed"
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    checkpoint_saved_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    conditions: dict[str, Callable[[], str | None]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- writers -------------------------------------------------------------------------------

    def record_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self.last_success_at = self.clock.now()

    def record_failure(self, error: BaseException | str) -> None:
        """The partner (or the path to the hub) failed: counts towards degraded/down.

        An exception recorded here is marked, so a runner that catches it later does not
        count the same failure twice.
        """
        if isinstance(error, BaseException):
            if getattr(error, COUNTED_MARK, False):
                return
            with contextlib.suppress(AttributeError):  # some built-in exceptions refuse
                setattr(error, COUNTED_MARK, True)
        reason = error if isinstance(error, str) else safe_reason(error)
        with self._lock:
            self.consecutive_failures += 1
            self.last_error = reason[:500]
            self.last_error_at = self.clock.now()

    def record_error(self, error: BaseException | str) -> None:
        """Remember an error that says nothing about availability (the partner answered "no"):
        shown as the last error, without making the connector degraded."""
        reason = error if isinstance(error, str) else safe_reason(error)
        with self._lock:
            self.last_error = reason[:500]
            self.last_error_at = self.clock.now()

    def set_circuit(self, state: str) -> None:
        with self._lock:
            self.circuit = state

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self.paused = paused

    def checkpoint_saved(self) -> None:
        with self._lock:
            self.checkpoint_saved_at = self.clock.now()

    def add_condition(self, name: str, check: Callable[[], str | None]) -> None:
        """Keep the connector at least degraded while ``check()`` returns a reason.

        ``check`` runs on the reader's thread at every ``state`` / ``snapshot`` (outside this
        status's lock), so it must be quick and take only its own locks. A check that raises
        is itself reported as the reason. Registering ``name`` again replaces it.
        """
        with self._lock:
            self.conditions[name] = check

    def count(self, counter: str, n: int = 1) -> None:
        if counter not in self.counts:
            raise KeyError(f"unknown connector counter {counter!r}; known: {', '.join(COUNTERS)}")
        with self._lock:
            self.counts[counter] += n

    # --- readers -------------------------------------------------------------------------------

    def _state_locked(self, reasons: list[str] | None = None) -> str:
        if self.paused:
            return PAUSED
        if self.circuit == "open":
            return DOWN
        if self.circuit == "half_open" or self.consecutive_failures:
            if self.last_success_at is None or self.consecutive_failures >= 3:
                return DOWN
            return DEGRADED
        return DEGRADED if reasons else UP

    def _reasons(self) -> list[str]:
        """The reasons of the conditions that hold now (read outside the lock)."""
        with self._lock:
            checks = sorted(self.conditions.items())
        found: list[str] = []
        for name, check in checks:
            try:
                reason = check()
            except Exception as exc:  # a broken check must not hide the rest of the status
                reason = f"{name}: the check failed ({type(exc).__name__})"
            if reason:
                found.append(str(reason)[:500])
        return found

    @property
    def state(self) -> str:
        reasons = self._reasons()
        with self._lock:
            return self._state_locked(reasons)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: state, circuit, times (ISO 8601), last error reason, counters,
        and the reasons of the conditions that hold now."""

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        reasons = self._reasons()
        with self._lock:
            return {
                "name": self.name,
                "state": self._state_locked(reasons),
                "conditions": reasons,
                "circuit": self.circuit,
                "paused": self.paused,
                "consecutive_failures": self.consecutive_failures,
                "last_success_at": iso(self.last_success_at),
                "last_error_at": iso(self.last_error_at),
                "last_error": self.last_error,
                "checkpoint_saved_at": iso(self.checkpoint_saved_at),
                "counts": dict(self.counts),
            }
