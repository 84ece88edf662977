"""The full scan: every household, then every person, checked in batches.

A scan is a row of ``data_quality_scans`` with a phase (``households``, then ``persons``) and a
cursor (the last id checked, in id order). ``advance`` checks the next batch in one
transaction, with the scan row locked and its cursor moved in the same commit, so any process
may carry on a scan another started — the API's background thread, ``srhub quality scan``, the
scheduled job — and a batch is never checked twice at once nor lost to a crash (a crashed
batch rolls back and is done again).

One scan runs at a time: ``start_scan`` refuses while another is running (``ScanRunning``
names it). The scheduled job (``scheduled_job``, with the retention jobs) starts one every
``scan_interval_hours`` and carries on an unfinished one a few batches at a time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.quality.checks import check_subjects
from hub.quality.tables import DataQualityScan, ScanState
from hub.settings.quality import QualitySettings
from registry_core.models import Household, Person
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

PHASES = ("households", "persons")
SCHEDULED_BY = "schedule"
# The scheduled job's share of a retention round, in that round's one transaction: up to 20
# batches (4,000 subjects at the default size, about 2 s measured), never past 2 s of work,
# so writers waiting on SQLite's lock are held up briefly; the rest in the next round.
SCHEDULED_BATCHES = 20
SCHEDULED_SECONDS = 2.0
# A running scan whose last batch is older than this is stalled: its process stopped, and the
# next one to start takes it over (``claim_stalled``). Batches take well under a second.
STALE_AFTER_SECONDS = 120.0


class ScanRunning(RuntimeError):
    """Another scan is running; ``scan_id`` names it."""

    def __init__(self, scan_id: uuid.UUID) -> None:
        super().__init__(f"scan {scan_id} is still running; wait for it or follow its progress")
        self.scan_id = scan_id


def running_scan(session: Session) -> DataQualityScan | None:
    return session.scalars(
        select(DataQualityScan)
        .where(DataQualityScan.state == ScanState.RUNNING)
        .order_by(DataQualityScan.started_at)
        .limit(1)
    ).first()


def start_scan(session: Session, requested_by: str, now: datetime | None = None) -> DataQualityScan:
    """A new running scan with its totals counted now; ``ScanRunning`` if one runs (two
    starting at once: the unique index on the running state lets one in)."""
    current = running_scan(session)
    if current is not None:
        raise ScanRunning(current.id)
    now = now or utcnow()
    scan = DataQualityScan(
        state=ScanState.RUNNING,
        requested_by=requested_by[:200],
        started_at=now,
        updated_at=now,
        phase=PHASES[0],
        households_total=session.scalar(select(func.count()).select_from(Household)) or 0,
        persons_total=session.scalar(select(func.count()).select_from(Person)) or 0,
        households_checked=0,
        persons_checked=0,
        opened=0,
        resolved=0,
    )
    try:
        with session.begin_nested():
            session.add(scan)
    except IntegrityError:
        current = running_scan(session)
        raise ScanRunning(current.id if current is not None else uuid.UUID(int=0)) from None
    return scan


def advance(
    session: Session,
    scan_id: uuid.UUID,
    config: QualitySettings,
    now: datetime | None = None,
) -> DataQualityScan:
    """Check the next batch of ``scan_id`` in ``session``'s transaction (its row locked);
    a finished or failed scan is returned as it is."""
    # Locked and read afresh: the cursor as the last committed batch left it.
    scan = session.scalars(
        select(DataQualityScan)
        .where(DataQualityScan.id == scan_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if scan is None:
        raise LookupError(f"no scan {scan_id}")
    if scan.state != ScanState.RUNNING:
        return scan
    now = now or utcnow()
    model: Any = Household if scan.phase == "households" else Person
    query = select(model.id).order_by(model.id).limit(config.scan_batch_size)
    if scan.cursor:
        query = query.where(model.id > uuid.UUID(scan.cursor))
    ids = list(session.scalars(query))
    if ids:
        if scan.phase == "households":
            done = check_subjects(session, config, now, households=ids)
            scan.households_checked += len(ids)
        else:
            done = check_subjects(session, config, now, persons=ids)
            scan.persons_checked += len(ids)
        scan.opened += done.opened
        scan.resolved += done.resolved
        scan.cursor = str(ids[-1])
    if len(ids) < config.scan_batch_size:  # this phase is done
        if scan.phase == PHASES[0]:
            scan.phase, scan.cursor = PHASES[1], None
        else:
            scan.state = ScanState.FINISHED
            scan.finished_at = now
    scan.updated_at = now
    return scan


def progress(scan: DataQualityScan) -> dict[str, Any]:
    """A scan as the API and the command show it."""
    total = scan.households_total + scan.persons_total
    checked = scan.households_checked + scan.persons_checked
    if scan.state == ScanState.FINISHED:
        percent = 100
    else:  # rows added during the scan may push "checked" past the count taken at its start
        percent = min(99, checked * 100 // total) if total else 0
    return {
        "id": str(scan.id),
        "state": scan.state,
        "phase": scan.phase,
        "requested_by": scan.requested_by,
        "started_at": _iso(scan.started_at),
        "finished_at": _iso(scan.finished_at),
        "households_total": scan.households_total,
        "households_checked": scan.households_checked,
        "persons_total": scan.persons_total,
        "persons_checked": scan.persons_checked,
        "percent": percent,
        "opened": scan.opened,
        "resolved": scan.resolved,
        "error": scan.error,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def run_to_end(
    sessions: sessionmaker[Session],
    scan_id: uuid.UUID,
    config: QualitySettings,
    *,
    report: Callable[[dict[str, Any]], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """Advance ``scan_id`` batch by batch, each in its own transaction, until it ends; a
    failure marks the scan failed (its reason, never data) and is raised."""
    while True:
        try:
            with sessions.begin() as session:
                scan = advance(session, scan_id, config, clock())
                state = progress(scan)
        except Exception as exc:
            _fail(sessions, scan_id, exc)
            raise
        if report is not None:
            report(state)
        if state["state"] != ScanState.RUNNING:
            return state


def _fail(sessions: sessionmaker[Session], scan_id: uuid.UUID, exc: Exception) -> None:
    log.exception("data-quality scan %s failed", scan_id)
    try:
        with sessions.begin() as session:
            scan = session.get(DataQualityScan, scan_id)
            if scan is not None and scan.state == ScanState.RUNNING:
                scan.state = ScanState.FAILED
                scan.error = f"{type(exc).__name__}"[:300]
                scan.finished_at = utcnow()
    except Exception:
        log.exception("could not mark data-quality scan %s failed", scan_id)


def start_in_background(
    sessions: sessionmaker[Session], config: QualitySettings, requested_by: str
) -> dict[str, Any]:
    """Start a scan and run it to its end on a thread of this process (the API's and the
    dashboard's way); returns its first progress. ``ScanRunning`` if one runs. Should the
    process stop first, the next hub process to start takes it over (``claim_stalled``,
    ``hub.api.scan_resume``) and the scheduled job carries it on meanwhile."""
    with sessions.begin() as session:
        state = progress(start_scan(session, requested_by))
    continue_in_background(sessions, config, uuid.UUID(state["id"]))
    return state


def continue_in_background(
    sessions: sessionmaker[Session], config: QualitySettings, scan_id: uuid.UUID
) -> threading.Thread:
    """Run ``scan_id`` to its end on a daemon thread of this process."""

    def work() -> None:
        try:
            run_to_end(sessions, scan_id, config)
        except Exception:  # run_to_end marked it failed and logged why
            log.warning("data-quality scan %s stopped with an error", scan_id)

    thread = threading.Thread(target=work, name=f"quality-scan-{scan_id}", daemon=True)
    thread.start()
    return thread


def claim_stalled(
    sessions: sessionmaker[Session],
    stale_after: float = STALE_AFTER_SECONDS,
    now: datetime | None = None,
) -> tuple[uuid.UUID | None, bool]:
    """Take over the running scan if its last batch is older than ``stale_after`` seconds:
    (its id, True). A conditional UPDATE of its ``updated_at`` claims it, so of several
    processes starting at once exactly one gets it; the batches it runs then keep
    ``updated_at`` fresh, so nobody else does. (None, True): a scan runs and is not stalled
    (yet); (None, False): none runs."""
    now = now or utcnow()
    with sessions.begin() as session:
        scan = running_scan(session)
        if scan is None:
            return None, False
        claimed = session.execute(
            update(DataQualityScan)
            .where(
                DataQualityScan.id == scan.id,
                DataQualityScan.state == ScanState.RUNNING,
                DataQualityScan.updated_at < now - timedelta(seconds=stale_after),
            )
            .values(updated_at=now)
        )
        taken = int(getattr(claimed, "rowcount", 0) or 0) == 1
        return (scan.id if taken else None), True


def latest_scan(session: Session) -> DataQualityScan | None:
    return session.scalars(
        select(DataQualityScan).order_by(DataQualityScan.started_at.desc()).limit(1)
    ).first()


def scheduled_job(
    config: QualitySettings, clock: Callable[[], datetime] = utcnow
) -> Callable[[Session], int]:
    """The scan's share of a retention round, in the round's transaction: start a scan when
    the last one finished ``scan_interval_hours`` ago (never, at 0), and check a few batches
    of the running one. Returns the number of subjects checked."""

    def run(session: Session) -> int:
        now = clock()
        scan = running_scan(session)
        if scan is None:
            if not config.scan_interval_hours:
                return 0
            last = session.scalar(
                select(func.max(DataQualityScan.started_at)).where(
                    DataQualityScan.state != ScanState.RUNNING
                )
            )
            if last is not None and _aware(last) > now - timedelta(
                hours=config.scan_interval_hours
            ):
                return 0
            scan = start_scan(session, SCHEDULED_BY, now)
        before = scan.households_checked + scan.persons_checked
        deadline = time.monotonic() + SCHEDULED_SECONDS
        for _ in range(SCHEDULED_BATCHES):
            scan = advance(session, scan.id, config, now)
            if scan.state != ScanState.RUNNING or time.monotonic() > deadline:
                break
        return scan.households_checked + scan.persons_checked - before

    return run


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
