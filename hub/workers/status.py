"""What a worker is doing right now, for logs, ``srhub`` status output and monitoring.

A worker that cannot reach its broker must say so rather than exit or go quiet, so the state
and the last error are part of the status, next to the counters an operator compares over time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from standards.timeutil import utcnow

STARTING = "starting"
WAITING_FOR_BROKER = "waiting_for_broker"
RUNNING = "running"
RETRYING = "retrying"
STOPPING = "stopping"
STOPPED = "stopped"


@dataclass
class WorkerStatus:
    """Live state of one worker; safe to read from another thread through ``snapshot``."""

    name: str
    state: str = STARTING
    detail: str = ""
    last_error: str | None = None
    last_error_at: datetime | None = None
    processed: int = 0  # handled and acknowledged (for the relay: events published)
    duplicates: int = 0  # skipped because already processed
    failed: int = 0  # handler failures of any kind (each attempt counts)
    dead_lettered: int = 0
    requeued: int = 0
    started_at: datetime = field(default_factory=utcnow)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _reported_at: float = field(default=0.0, repr=False, compare=False)
    _reported: tuple[int, ...] = field(default=(0, 0, 0, 0, 0), repr=False, compare=False)

    def set_state(self, state: str, detail: str = "", logger: logging.Logger | None = None) -> None:
        """Change state; log the change once (not on every loop) so the log stays readable."""
        with self._lock:
            changed = (state, detail) != (self.state, self.detail)
            self.state, self.detail = state, detail
        if changed and logger is not None:
            level = logging.WARNING if state in (WAITING_FOR_BROKER, RETRYING) else logging.INFO
            logger.log(level, "%s: %s%s", self.name, state, f" ({detail})" if detail else "")

    def record_error(self, error: BaseException | str) -> None:
        """Keep the last error's first line: driver errors append SQL and parameters after it,
        and parameters may be personal data."""
        if not isinstance(error, str):
            lines = str(error).strip().splitlines()
            error = f"{type(error).__name__}: {lines[0] if lines else ''}"
        text = error
        with self._lock:
            self.last_error = text[:500]
            self.last_error_at = utcnow()

    def count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def maybe_report(self, logger: logging.Logger, every: float = 60.0) -> None:
        """Log the counters at most every ``every`` seconds, and only if they moved: a
        heartbeat an operator can follow in the log of a long-running worker."""
        now = time.monotonic()
        if now - self._reported_at < every:
            return
        self._reported_at = now
        with self._lock:
            counters = (
                self.processed,
                self.duplicates,
                self.failed,
                self.dead_lettered,
                self.requeued,
            )
        if counters == self._reported:
            return
        self._reported = counters
        logger.info(
            "%s: %s; processed=%d duplicates=%d failed=%d dead_lettered=%d requeued=%d",
            self.name,
            self.state,
            *counters,
        )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "name": self.name,
                "state": self.state,
                "detail": self.detail,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
                "processed": self.processed,
                "duplicates": self.duplicates,
                "failed": self.failed,
                "dead_lettered": self.dead_lettered,
                "requeued": self.requeued,
                "started_at": self.started_at.isoformat(),
            }
