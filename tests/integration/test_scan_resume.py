"""Background scans a stopped process left behind carry on when the hub starts (the API app is
built), once, however many processes start (both databases): a queued or stalled duplicate
scan, a stalled data-quality scan, and one whose heartbeat was still fresh at the start."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from hub.api import create_app, scan_resume
from hub.api.scan_resume import resume_quality_scan
from hub.duplicates.runner import ScanRunner
from hub.duplicates.tables import DuplicateScan
from hub.quality import scan as quality_scan
from hub.quality.tables import DataQualityScan
from hub.settings import load_settings, with_overrides
from registry_core.models import MatchReview
from registry_core.service import Source
from standards.timeutil import utcnow

LONG_AGO = timedelta(minutes=10)


def _head(given: str, family: str) -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": family,
        "birth_date": "1961-02-03",
        "sex": "female",
        "relationship": "head",
    }


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Any:
    made = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    return with_overrides(made, quality={"scan_batch_size": 2})


@pytest.fixture
def first_app(settings: Any) -> Iterator[Any]:
    """The hub as it ran before: registers people, then 'stops' (its runtime is closed last)."""
    app = create_app(settings)
    registry = app.extensions["srhub_runtime"].registry
    registry.ensure_identifier_systems()
    for index, (given, family) in enumerate(
        [("Achieng", "Otieno"), ("Achieng", "Otieeno"), ("Wambui", "Karanja"), ("Amina", "Ali")]
    ):
        registry.register_household(
            {
                "admin_area_code": f"KE-0{index}",
                "address": "Plot 4",
                "members": [_head(given, family)],
            },
            Source("program_ct_ovc", f"CT-{index}"),
        )
    yield app
    app.extensions["srhub_runtime"].close()


def _start_apps(settings: Any, count: int) -> list[Any]:
    """``count`` hub processes starting at the same moment (each its own runtime).

    Threads stand in for the processes. Building a Flask app compiles its URL rules with
    ``compile()``, which CPython 3.11 does not make safe across threads (``SystemError: AST
    constructor recursion depth mismatch``, cpython gh-106905); separate processes never share
    that state. So the apps are built one at a time, and what this module tests, each app's
    resume of stalled scans, starts in all of them at the same moment (a barrier).
    """
    apps: list[Any] = [None] * count
    building = threading.Lock()
    resume_together = threading.Barrier(count)
    real_resume = scan_resume.resume_stalled_scans

    def resume(app: Any, hub: Any) -> None:
        building.release()  # the app is built: the next one may be
        resume_together.wait(60)
        real_resume(app, hub)

    def start(index: int) -> None:
        assert building.acquire(timeout=60)
        try:
            apps[index] = create_app(settings)
        except BaseException:
            if building.locked():
                building.release()
            resume_together.abort()  # the others fail instead of waiting
            raise

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan_resume, "resume_stalled_scans", resume)
        threads = [threading.Thread(target=start, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    return apps


def _close(apps: list[Any]) -> None:
    for app in apps:
        runner = app.extensions.get("srhub_duplicate_scans")
        if runner is not None:
            runner.join(60)
        app.extensions["srhub_runtime"].close()


def _wait(read: Any, done: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


class _Crash(BaseException):
    """The process dying between two batches."""


def test_a_stalled_duplicate_scan_resumes_once_when_hubs_start(
    first_app: Any, settings: Any
) -> None:
    runtime = first_app.extensions["srhub_runtime"]

    def crash(_scan: uuid.UUID) -> None:
        raise _Crash

    dying = ScanRunner(runtime.sessions, runtime.cipher, batch_keys=2, after_batch=crash)
    scan_id = uuid.UUID(dying.request_scan("test", start=False)["id"])
    with pytest.raises(_Crash):
        dying.run_pending()
    with runtime.sessions() as session, session.begin():
        session.execute(
            update(DuplicateScan)
            .where(DuplicateScan.id == scan_id)
            .values(heartbeat_at=utcnow() - LONG_AGO)
        )
    apps = _start_apps(settings, 3)
    try:
        runners = [a.extensions.get("srhub_duplicate_scans") for a in apps]
        assert any(runners)  # at least the first to look found the stalled scan
        for runner in runners:
            if runner is not None:
                runner.join(60)
        with runtime.sessions() as session:
            scans = list(session.scalars(select(DuplicateScan)))
            reviews = session.scalars(select(MatchReview)).all()
        [scan] = scans
        assert scan.id == scan_id and scan.state == "done"
        assert scan.keys_done == scan.keys_total  # carried on after its cursor, to the end
        assert scan.candidates_found == len(reviews) >= 1  # no pair counted twice
    finally:
        _close(apps)


def test_a_queued_scan_nobody_ran_starts_with_the_hub(first_app: Any, settings: Any) -> None:
    runtime = first_app.extensions["srhub_runtime"]
    queued = ScanRunner(runtime.sessions, runtime.cipher).request_scan("test", start=False)
    [app] = _start_apps(settings, 1)
    try:
        app.extensions["srhub_duplicate_scans"].join(60)
        with runtime.sessions() as session:
            found = session.get(DuplicateScan, uuid.UUID(queued["id"]))
            assert found is not None and found.state == "done"
    finally:
        _close([app])


def _stalled_quality_scan(runtime: Any, age: timedelta) -> uuid.UUID:
    with runtime.sessions.begin() as session:
        scan = quality_scan.start_scan(session, "test")
        scan_id = scan.id
    with runtime.sessions.begin() as session:  # one batch done, then the process stopped
        quality_scan.advance(session, scan_id, runtime.settings.quality)
        session.execute(
            update(DataQualityScan)
            .where(DataQualityScan.id == scan_id)
            .values(updated_at=utcnow() - age)
        )
    return scan_id


def _quality(runtime: Any, scan_id: uuid.UUID) -> DataQualityScan:
    with runtime.sessions() as session:
        found = session.get(DataQualityScan, scan_id)
        assert found is not None
        session.expunge(found)
        return found


def test_a_stalled_quality_scan_is_claimed_by_one_process_and_finished(
    first_app: Any, settings: Any
) -> None:
    runtime = first_app.extensions["srhub_runtime"]
    scan_id = _stalled_quality_scan(runtime, LONG_AGO)
    claims: list[Any] = []
    gate = threading.Barrier(4)

    def claim() -> None:
        gate.wait()
        claims.append(quality_scan.claim_stalled(runtime.sessions)[0])

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [c for c in claims if c is not None] == [scan_id]  # exactly one took it over
    assert quality_scan.claim_stalled(runtime.sessions) == (None, True)  # fresh now

    # Stalled again: a hub starting takes it to its end, every subject checked once.
    with runtime.sessions.begin() as session:
        session.execute(
            update(DataQualityScan)
            .where(DataQualityScan.id == scan_id)
            .values(updated_at=utcnow() - LONG_AGO)
        )
    [app] = _start_apps(settings, 1)
    try:
        done = _wait(lambda: _quality(runtime, scan_id), lambda s: s.state != "running")
        assert done.state == "finished"
        assert (done.households_checked, done.persons_checked) == (
            done.households_total,
            done.persons_total,
        )
    finally:
        _close([app])


def test_a_scan_fresh_at_start_is_taken_over_once_it_goes_stale(first_app: Any) -> None:
    runtime = first_app.extensions["srhub_runtime"]
    scan_id = _stalled_quality_scan(runtime, timedelta(0))
    outcome = resume_quality_scan(runtime.sessions, runtime.settings.quality, stale_after=0.5)
    assert outcome == "waiting"
    assert _quality(runtime, scan_id).state == "running"
    done = _wait(lambda: _quality(runtime, scan_id), lambda s: s.state != "running")
    assert done.state == "finished" and done.persons_checked == done.persons_total
    assert resume_quality_scan(runtime.sessions, runtime.settings.quality) == "none"


def test_a_scan_requested_as_the_active_one_ends_is_queued_without_waiting_on_itself(
    db_engine: Any, cipher: Any
) -> None:
    """The active scan finished between the request's look and its check: the request asks
    again, and must not wait on its own still-open transaction (SQLite's write lock: before,
    the busy timeout, then a 500)."""
    from registry_core.db import make_session_factory

    runner = ScanRunner(make_session_factory(db_engine), cipher)
    real = runner._queue
    calls = {"n": 0}

    def as_if_one_was_active(requested_by: str) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(requested_by)

    runner._queue = as_if_one_was_active  # type: ignore[method-assign]
    started = time.monotonic()
    record = runner.request_scan("staff", start=False)
    assert record["state"] == "queued" and calls["n"] == 2
    assert time.monotonic() - started < 10  # not the 30 s busy timeout
