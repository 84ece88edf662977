"""Outbound HTTP from the registry: webhook deliveries, DCI callbacks, with bounded retries.

Why one worker: a real registry pushes to subscribers from a background job, retries a
subscriber that cannot be reached, then gives up. The hub must cope with exactly that
(duplicates after a lost answer, gaps after give-up), so the mock does the same and records every
attempt where a test or the dashboard demo can read it (``/_admin/deliveries``).

Each job may carry its own policy. OpenCRVS's webhook deliveries are a BullMQ job with
``attempts: 3`` and no backoff whose worker POSTs with node-fetch, which resolves on *any* HTTP
answer: so a webhook is retried (at once, 3 attempts in all) only when the subscriber cannot be
reached, and an error answer (a 500, a 503) ends it (``retry_on_answer=False``). DCI callbacks
and the like keep the growing pauses of ``RetryPolicy``.

A few daemon worker threads share one due-time heap, so one hanging subscriber does not hold up
the others; ``stop()`` ends them (registered as a server shutdown hook). Secrets and bodies are
never logged or recorded; only URL, status and timing.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

log = logging.getLogger(__name__)

MAX_RECORDED_ATTEMPTS = 10_000


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries in total; pause ``base_delay_s * factor**(n-1)``, capped."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    timeout_s: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.base_delay_s * self.factor ** (attempt - 1), self.max_delay_s)


@dataclass
class Job:
    """One message to deliver. ``check`` decides whether an answer counts as delivered."""

    kind: str  # "webhook", "verify", "dci-callback"
    method: str
    url: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    check: Callable[[requests.Response], bool] | None = None
    on_done: Callable[[bool], None] | None = None
    label: dict[str, Any] = field(default_factory=dict)  # safe metadata recorded with attempts
    policy: RetryPolicy | None = None  # None: the deliverer's
    retry_on_answer: bool = True  # False: an HTTP answer, even an error, ends the job
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    attempt: int = 0


class Deliverer:
    """Background sender with retries and an attempt log."""

    def __init__(self, policy: RetryPolicy | None = None, workers: int = 4) -> None:
        self.policy = policy or RetryPolicy()
        self._heap: list[tuple[float, int, Job]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._busy = 0
        self.attempts: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED_ATTEMPTS)
        self.outcomes: dict[str, str] = {}  # job id -> delivered | failed | pending
        self._threads = [
            threading.Thread(target=self._run, name=f"crvs-deliverer-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> str:
        with self._cond:
            self.outcomes[job.id] = "pending"
            heapq.heappush(self._heap, (time.monotonic(), next(self._counter), job))
            self._cond.notify()
        return job.id

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(5)

    def idle(self) -> bool:
        with self._cond:
            return not self._heap and self._busy == 0

    def _run(self) -> None:
        session = requests.Session()  # one per thread: Session is not thread-safe
        try:
            self._loop(session)
        finally:
            session.close()

    def _loop(self, session: requests.Session) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, job = heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._attempt(session, job)
            except Exception:  # never let one bad job kill the worker
                log.exception("delivery job %s crashed", job.id)
            finally:
                with self._cond:
                    self._busy -= 1

    def _attempt(self, session: requests.Session, job: Job) -> None:
        job.attempt += 1
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        ok = False
        answered = False
        policy = job.policy or self.policy
        try:
            response = session.request(
                job.method,
                job.url,
                data=job.body,
                headers=job.headers,
                params=job.params,
                timeout=policy.timeout_s,
                allow_redirects=False,
            )
            status = response.status_code
            answered = True
            ok = job.check(response) if job.check else 200 <= status < 300
            if not ok:
                error = f"unexpected answer: HTTP {status}"
        except requests.RequestException as exc:
            error = type(exc).__name__
        record = {
            "job_id": job.id,
            "kind": job.kind,
            "url": job.url,
            "attempt": job.attempt,
            "status_code": status,
            "ok": ok,
            "error": error,
            "at": datetime.now(UTC).isoformat(),
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
            **job.label,
        }
        retry = not ok and job.attempt < policy.max_attempts
        if answered and not job.retry_on_answer:
            retry = False
        with self._cond:
            self.attempts.append(record)
            if ok:
                self.outcomes[job.id] = "delivered"
            elif not retry:
                self.outcomes[job.id] = "failed"
            if retry:
                due = time.monotonic() + policy.delay(job.attempt)
                heapq.heappush(self._heap, (due, next(self._counter), job))
                self._cond.notify()
        if (ok or not retry) and job.on_done is not None:
            job.on_done(ok)

    def snapshot(self, limit: int = 1000) -> dict[str, Any]:
        with self._cond:
            attempts = list(self.attempts)[-limit:]
            outcomes = dict(self.outcomes)
            pending = len(self._heap) + self._busy
        summary = {"delivered": 0, "failed": 0, "pending": 0}
        for outcome in outcomes.values():
            summary[outcome] += 1
        return {"attempts": attempts, "summary": summary, "queued": pending}
