"""Running duplicate scans in the background: a persisted job row, one thread per process.

``POST /api/v1/duplicates/scans`` writes a ``queued`` row and wakes this process's runner
thread; the thread claims the row (``queued`` -> ``running``, a conditional UPDATE, so two
processes never run one scan), then runs it batch by batch, each batch its own transaction
that also saves the counts, the cursor and a heartbeat: the API and the dashboard watch the
progress as it is made. One scan at a time: a second request while one is queued or running
is answered with the active one (409).

A process that stops mid-scan leaves the row ``running`` with an old heartbeat. The next hub
process to start (``hub.api.scan_resume``), or whoever looks at it next (``GET`` of the scan,
the dashboard page, the next ``POST``), wakes a runner, which claims a scan whose heartbeat
is older than ``stale_after`` seconds and resumes it after its cursor. A failing batch marks
the scan ``failed`` with the error's class name (never data).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.duplicates.scan import BATCH_KEYS, count_keys, run_batch, scan_record
from hub.duplicates.tables import DuplicateScan, ScanState
from registry_core.crypto import IdentifierCipher
from registry_core.matching import Matcher
from registry_core.matching.matcher import PairJudge
from registry_core.matching.trained_matcher import TrainedMatcher
from standards.timeutil import utcnow

log = logging.getLogger(__name__)
STALE_AFTER_SECONDS = 120.0


class ScanAlreadyActive(Exception):
    """A scan is queued or running; ``scan`` is its record."""

    def __init__(self, scan: dict[str, Any]) -> None:
        super().__init__(f"duplicate scan {scan['id']} is {scan['state']}")
        self.scan = scan


class ScanRunner:
    """Starts, claims and runs duplicate scans (see the module docstring)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: IdentifierCipher,
        *,
        matcher: PairJudge | None = None,
        batch_keys: int = BATCH_KEYS,
        stale_after: float = STALE_AFTER_SECONDS,
        after_batch: Callable[[uuid.UUID], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._matcher: PairJudge = matcher or Matcher()
        self._batch_keys = batch_keys
        self._stale_after = stale_after
        self._after_batch = after_batch  # tests: observe (or interrupt) between batches
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- requests -----------------------------------------------------------------------------

    def request_scan(self, requested_by: str, *, start: bool = True) -> dict[str, Any]:
        """Queue a scan and (``start``) wake the runner; ``ScanAlreadyActive`` when one is
        active. Without ``start`` the caller runs it (``run_pending``)."""
        try:
            record = self._queue(requested_by)
        except IntegrityError:  # another request queued one at the same instant
            record = None
        if record is None:
            with self._sessions() as session:
                active = session.scalar(
                    select(DuplicateScan)
                    .where(DuplicateScan.state.in_(ScanState.ACTIVE))
                    .order_by(DuplicateScan.created_at)
                    .limit(1)
                )
                found = scan_record(active) if active is not None else None
            # Asked again only once this session is closed: on SQLite its transaction holds
            # the write lock (BEGIN IMMEDIATE), and the new request's would wait on it for
            # the whole busy timeout, then fail (a 500 seen by the API's contract test).
            if found is None:  # it finished meanwhile: ask again
                return self.request_scan(requested_by, start=start)
            raise ScanAlreadyActive(found)
        if start:
            self.wake()
        return record

    def _queue(self, requested_by: str) -> dict[str, Any] | None:
        """A new queued scan's record, or None when one is active."""
        with self._sessions() as session, session.begin():
            active = session.scalar(
                select(DuplicateScan.id).where(DuplicateScan.state.in_(ScanState.ACTIVE)).limit(1)
            )
            if active is not None:
                return None
            scan = DuplicateScan(
                id=uuid.uuid4(),
                state=ScanState.QUEUED,
                requested_by=requested_by[:200],
                created_at=utcnow(),
                keys_total=0,
                keys_done=0,
                blocks_too_large=0,
                pairs_compared=0,
                candidates_found=0,
                already_known=0,
                active_slot=1,
            )
            session.add(scan)
            session.flush()
            return scan_record(scan)

    def get(self, scan_id: uuid.UUID | str) -> dict[str, Any] | None:
        """A scan's record (None if unknown); a stalled one wakes the runner to resume it."""
        with self._sessions() as session:
            scan = session.get(DuplicateScan, uuid.UUID(str(scan_id)))
            if scan is None:
                return None
            record = scan_record(scan)
            stalled = self._claimable(scan)
        if stalled:
            self.wake()
        return record

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest scans; a stalled one among them wakes the runner to resume it."""
        with self._sessions() as session:
            rows = session.scalars(
                select(DuplicateScan)
                .order_by(DuplicateScan.created_at.desc(), DuplicateScan.id)
                .limit(limit)
            ).all()
            records = [scan_record(s) for s in rows]
            stalled = any(self._claimable(s) for s in rows)
        if stalled:
            self.wake()
        return records

    # -- running ------------------------------------------------------------------------------

    def _claimable(self, scan: DuplicateScan) -> bool:
        if scan.state == ScanState.QUEUED:
            return True
        if scan.state != ScanState.RUNNING:
            return False
        beat = scan.heartbeat_at or scan.started_at
        return beat is None or utcnow() - beat > timedelta(seconds=self._stale_after)

    def wake(self) -> None:
        """Run pending scans on a background thread (one per runner at a time)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run_quietly, name="duplicate-scan", daemon=True
            )
            self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run_quietly(self) -> None:
        try:
            self.run_pending()
        except Exception as exc:  # the scan row says failed; the thread must not die loudly
            log.error("duplicate scan runner stopped: %s", type(exc).__name__)
            log.debug("duplicate scan runner failure", exc_info=exc)

    def run_pending(self) -> int:
        """Claim and run scans until none is claimable; returns how many were run."""
        done = 0
        while (scan_id := self._claim()) is not None:
            self._run(scan_id)
            done += 1
        return done

    def _claimable_condition(self) -> Any:
        stale = utcnow() - timedelta(seconds=self._stale_after)
        return or_(
            DuplicateScan.state == ScanState.QUEUED,
            (DuplicateScan.state == ScanState.RUNNING)
            & or_(DuplicateScan.heartbeat_at.is_(None), DuplicateScan.heartbeat_at < stale),
        )

    def pending(self) -> tuple[bool, bool]:
        """(a scan is claimable now, a scan is active at all): what a starting process
        checks before waking the runner (``hub.api.scan_resume``)."""
        with self._sessions() as session:
            claimable = session.scalar(
                select(DuplicateScan.id).where(self._claimable_condition()).limit(1)
            )
            active = session.scalar(
                select(DuplicateScan.id).where(DuplicateScan.state.in_(ScanState.ACTIVE)).limit(1)
            )
        return claimable is not None, active is not None

    @property
    def stale_after(self) -> float:
        return self._stale_after

    def _claim(self) -> uuid.UUID | None:
        claimable = self._claimable_condition()
        with self._sessions() as session, session.begin():
            candidate = session.scalar(
                select(DuplicateScan.id)
                .where(claimable)
                .order_by(DuplicateScan.created_at)
                .limit(1)
            )
            if candidate is None:
                return None
            now = utcnow()
            result = session.execute(
                update(DuplicateScan)
                .where(DuplicateScan.id == candidate, claimable)
                .values(state=ScanState.RUNNING, heartbeat_at=now)
            )
            claimed = int(getattr(result, "rowcount", 0) or 0)
            if not claimed:
                return None  # another process took it first
            scan = session.get(DuplicateScan, candidate)
            assert scan is not None
            if scan.started_at is None:
                scan.started_at = now
                scan.keys_total = count_keys(session)
            return candidate

    def _run(self, scan_id: uuid.UUID) -> None:
        try:
            while True:
                with self._sessions() as session, session.begin():
                    scan = session.get(DuplicateScan, scan_id, with_for_update=True)
                    if scan is None or scan.state != ScanState.RUNNING:
                        return
                    more = run_batch(session, self._cipher, self._matcher, scan, self._batch_keys)
                    if not more:
                        scan.state = ScanState.DONE
                        scan.active_slot = None
                        scan.finished_at = utcnow()
                        scan.heartbeat_at = scan.finished_at
                        scan.keys_total = max(scan.keys_total, scan.keys_done)
                if self._after_batch is not None:
                    self._after_batch(scan_id)
                if not more:
                    log.info("duplicate scan %s done", scan_id)
                    return
        except Exception as exc:
            # The class only: a driver's message may quote the row it failed on (names). The
            # traceback is for whoever runs at DEBUG.
            log.error("duplicate scan %s failed: %s", scan_id, type(exc).__name__)
            log.debug("duplicate scan %s failure", scan_id, exc_info=exc)
            with self._sessions() as session, session.begin():
                session.execute(
                    update(DuplicateScan)
                    .where(DuplicateScan.id == scan_id)
                    .values(
                        state=ScanState.FAILED,
                        active_slot=None,
                        finished_at=utcnow(),
                        error=f"{type(exc).__name__}; see the hub log and start a new scan",
                    )
                )


def scan_matcher(runtime: Any) -> PairJudge:
    """The matcher a scan judges pairs with: the hub's own (``runtime.matcher``: the trained
    model ``settings.matcher_model`` names, or the built-in one), so the scan and the
    resolution of incoming records decide alike; the built-in one if the hub's cannot judge
    a pair on its own."""
    matcher = getattr(runtime, "matcher", None)
    if isinstance(matcher, Matcher | TrainedMatcher):
        return matcher
    return Matcher()
