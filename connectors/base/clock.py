"""Time, passed in rather than read from globals, so tests can drive breakers and backoff.

Every component that waits or measures (retry backoff, circuit cool-down, rate limiter,
schedules, deadlines) takes a ``Clock``. ``SystemClock`` is the real one; ``FakeClock`` makes
``sleep`` advance time instantly, so a test of a 30-second cool-down takes microseconds and
asserts exact durations.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences mean anything."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware in UTC."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to (``advance``) or when someone sleeps on it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return 1000.0 + self._offset

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._offset)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._offset += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


SYSTEM_CLOCK = SystemClock()


class Deadline:
    """The time left for one piece of work, so nested calls and retries share one budget."""

    def __init__(self, seconds: float, clock: Clock = SYSTEM_CLOCK) -> None:
        if seconds <= 0:
            raise ValueError("a deadline needs a positive number of seconds")
        self._clock = clock
        self._ends_at = clock.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._ends_at - self._clock.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0
