"""Data-quality checks over real databases (SQLite and PostgreSQL).

- The scan: one issue per kind and subject across batch boundaries, nothing duplicated by a
  second run, a fixed problem resolved by the next check, a dismissed issue left dismissed, a
  resolved one that comes back reopened.
- On change: the quality worker consuming the registry's events through the relay and the
  embedded queue opens an issue when a change makes one and resolves it when a change fixes it.
- ``issues_for_household``, the summary's counts and trend, the scheduled job.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hub.broker import connect
from hub.pipeline.relay_worker import RelayWorker
from hub.quality import scan as scans
from hub.quality import service
from hub.quality.handlers import quality_handlers
from hub.quality.tables import DataQualityIssue, DataQualityScan
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.settings.quality import QualitySettings
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import QUALITY_QUEUE
from registry_core.models import Membership
from standards.timeutil import utcnow
from tests.quality_support import STAFF, issues, make_problems, member_id, person, register

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

QUALITY = QualitySettings(max_household_size=3, scan_batch_size=2)


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[HubRuntime]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var")
    hub = HubRuntime(settings)
    hub.registry.ensure_identifier_systems()
    yield hub
    hub.close()


def scan(runtime: HubRuntime, config: QualitySettings = QUALITY) -> dict[str, Any]:
    with runtime.sessions.begin() as session:
        scan_id = scans.start_scan(session, "test").id
    return scans.run_to_end(runtime.sessions, scan_id, config)


def live_issues(runtime: HubRuntime) -> set[tuple[str, str]]:
    """(kind, subject id) of every open or acknowledged issue."""
    return {
        (row.kind, row.dedupe_key.split(":", 1)[1])
        for row in issues(runtime.sessions)
        if row.state in ("open", "acknowledged")
    }


def test_a_scan_finds_each_problem_once_and_a_second_scan_duplicates_nothing(
    runtime: HubRuntime,
) -> None:
    problems = make_problems(runtime.registry, runtime.sessions)
    first = scan(runtime)
    expected = {
        ("household_size", problems.big),
        ("household_size", problems.emptied),
        ("household_composition", problems.young_head),
        ("multiple_households", problems.twice),
        ("impossible_age", problems.ancient),
        ("impossible_date", problems.died_before_birth),
        ("income_mismatch", problems.income),
        ("deceased_notified", problems.notified),
    }
    assert live_issues(runtime) == expected
    assert first["state"] == "finished" and first["percent"] == 100
    assert first["opened"] == len(expected) and first["resolved"] == 0
    assert first["households_checked"] == first["households_total"] == 10
    assert first["persons_checked"] == first["persons_total"]

    assert ("deceased_notified", problems.late) not in live_issues(runtime)  # told before known
    rows = {row.kind: row for row in issues(runtime.sessions)}
    assert rows["income_mismatch"].details["tax_period"] == "2025"
    assert rows["income_mismatch"].details["declared_annual"] == 1200.0
    assert rows["deceased_notified"].details["subscriptions"] == ["cash-transfer"]
    assert rows["multiple_households"].details["households"] == 2
    assert rows["impossible_age"].admin_area_code == "R01-D02-L003"
    # No personal data in what an issue keeps: no names, no birth dates. The ids it does keep
    # are blanked first and the year is looked for as a word of its own: a random UUID once
    # held "1880".
    for row in rows.values():
        text = UUID_TEXT.sub("<id>", repr((row.details, row.reasons)))
        assert "Otieno" not in text and "2003-03-03" not in text
        assert not re.search(r"(?<![0-9A-Za-z])1880(?![0-9A-Za-z])", text), text

    before = {row.id: row.last_seen_at for row in issues(runtime.sessions)}
    second = scan(runtime)
    assert second["opened"] == 0 and second["resolved"] == 0
    after = issues(runtime.sessions)
    assert {row.id for row in after} == set(before)  # the same rows, none added
    assert all(row.last_seen_at >= before[row.id] for row in after)


def test_fixing_a_problem_resolves_its_issue_at_the_next_scan_and_people_keep_control(
    runtime: HubRuntime,
) -> None:
    problems = make_problems(runtime.registry, runtime.sessions)
    scan(runtime)
    now = utcnow()

    # Fixed: the second membership ended.
    with runtime.sessions.begin() as session:
        session.execute(
            update(Membership)
            .where(
                Membership.person_id == uuid.UUID(problems.twice),
                Membership.household_id == uuid.UUID(problems.twice_other),
            )
            .values(end_date=now.date(), end_reason="correction")
        )
    # Judged not a problem: dismissed with a reason. Resolved by hand though still true.
    with runtime.sessions.begin() as session:
        by_kind = {row.kind: row for row in session.scalars(select(DataQualityIssue))}
        service.change_state(
            by_kind["impossible_age"], "dismiss", "officer", "verified: she is 146", now
        )
        service.change_state(by_kind["income_mismatch"], "resolve", "officer", None, now)
        service.change_state(by_kind["household_composition"], "acknowledge", "officer", None, now)

    result = scan(runtime)
    rows = {row.kind: row for row in issues(runtime.sessions)}
    assert rows["multiple_households"].state == "resolved"
    assert rows["multiple_households"].state_changed_by == service.CHECK_ACTOR
    assert rows["impossible_age"].state == "dismissed"  # stays: someone judged it
    assert rows["impossible_age"].state_reason == "verified: she is 146"
    assert rows["income_mismatch"].state == "open"  # found again: reopened
    assert rows["income_mismatch"].times_reopened == 1
    assert rows["household_composition"].state == "acknowledged"  # still true, still owned
    assert result["resolved"] == 1 and result["opened"] == 1

    with runtime.sessions() as session:
        household = service.issues_for_household(session, problems.twice_other)
        assert household == []  # the person's issue left with the person
        # The person's open issues show on the household they still live in.
        mine = service.issues_for_household(session, problems.income)
        assert [i["kind"] for i in mine] == ["income_mismatch"]
        assert mine[0]["reasons"][0]["code"] == "declared_far_from_tax"
        closed = service.issues_for_household(session, problems.twice_other, include_closed=False)
        assert closed == []


def test_the_summary_counts_by_kind_and_area_and_the_trend_by_day(runtime: HubRuntime) -> None:
    make_problems(runtime.registry, runtime.sessions)
    scan(runtime)
    today = utcnow().date()
    with runtime.sessions.begin() as session:
        row = session.scalars(
            select(DataQualityIssue).where(DataQualityIssue.kind == "impossible_age")
        ).one()
        service.change_state(row, "dismiss", "officer", "known", utcnow())
    with runtime.sessions() as session:
        found = service.summary(session, service.IssueFilter(), level=1, days=7, today=today)
        scoped = service.summary(
            session,
            service.IssueFilter(area_prefixes=["R02"]),
            level=2,
            days=7,
            today=today,
        )
    grid = {(c["kind"], c["area"]): c["count"] for c in found["by_kind_area"]}
    assert grid[("household_size", "R01")] == 2
    assert grid[("household_composition", "R02")] == 1
    # Filed under one of the person's two households (R01 or R02), counted once.
    twice = [grid.get(("multiple_households", area), 0) for area in ("R01", "R02")]
    assert sorted(twice) == [0, 1]
    assert ("impossible_age", "R01") not in grid  # dismissed: not live
    assert found["by_state"] == {"open": 7, "dismissed": 1}
    assert found["trend"]["days"][-1] == today.isoformat()
    assert found["trend"]["opened"][-1] == 8 and sum(found["trend"]["opened"]) == 8
    assert found["trend"]["dismissed"][-1] == 1 and found["trend"]["resolved"][-1] == 0
    # A supervisor of R02 counts only what is filed there (grouped at level 2).
    cells = {(c["kind"], c["area"]) for c in scoped["by_kind_area"]}
    assert ("household_composition", "R02-D01") in cells
    assert all(area.startswith("R02") for _, area in cells)
    assert scoped["by_state"].get("dismissed", 0) == 0  # the dismissed one is in R01


def test_one_scan_at_a_time_and_the_schedule_starts_and_carries_on_scans(
    runtime: HubRuntime,
) -> None:
    for k in range(5):
        register(runtime.registry, "R01-D02", person(f"P{k}", "1880-01-01"))
    with runtime.sessions.begin() as session:
        running = scans.start_scan(session, "test")
    with runtime.sessions.begin() as session, pytest.raises(scans.ScanRunning) as refused:
        scans.start_scan(session, "again")
    assert refused.value.scan_id == running.id

    clock = [utcnow()]
    job = scans.scheduled_job(replace(QUALITY, scan_interval_hours=24), lambda: clock[0])
    checked = 0
    for _ in range(5):  # the schedule carries the running scan on, a few batches a round
        with runtime.sessions.begin() as session:
            checked += job(session)
    assert checked == 10  # 5 households and 5 persons, each once
    with runtime.sessions() as session:
        done = session.get(DataQualityScan, running.id)
        assert done is not None and done.state == "finished"
    assert len([i for i in issues(runtime.sessions) if i.kind == "impossible_age"]) == 5
    with runtime.sessions.begin() as session:
        assert job(session) == 0  # the last scan is recent: nothing starts
    clock[0] += timedelta(hours=25)
    with runtime.sessions.begin() as session:
        assert job(session) > 0  # a day later a new scan starts on its own
        assert scans.running_scan(session) is not None or scans.latest_scan(session) is not None


def test_two_scans_started_at_the_same_moment_become_one(runtime: HubRuntime) -> None:
    """The first start is not committed yet when the second looks: the one-running index
    (PostgreSQL) or the write lock (SQLite) makes the second refuse, naming the first."""
    outcome: list[Any] = []
    first = runtime.sessions()
    first.begin()
    mine = scans.start_scan(first, "first")

    def second() -> None:
        try:
            with runtime.sessions.begin() as session:
                outcome.append(scans.start_scan(session, "second").id)
        except scans.ScanRunning as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second is waiting on the first's uncommitted row
    first.commit()
    first.close()
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], scans.ScanRunning)
    assert outcome[0].scan_id == mine.id
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DataQualityScan)) == 1


# --- on change, through the broker -----------------------------------------------------------


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout}s"
        time.sleep(0.1)


@pytest.fixture(params=["embedded", pytest.param("amqp", marks=pytest.mark.amqp)])
def live(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path
) -> Iterator[tuple[HubRuntime, ConsumerRuntime]]:
    """A runtime with the relay and the quality worker running as threads, on the embedded
    queue (SQLite, PostgreSQL) or on RabbitMQ (with PostgreSQL)."""
    if request.param == "amqp" and db_url.startswith("sqlite"):
        pytest.skip("RabbitMQ runs with PostgreSQL here")
    amqp_url = request.getfixturevalue("amqp_url") if request.param == "amqp" else ""
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path / "live", amqp_url=amqp_url
    )
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()

    def factory() -> Any:
        return connect(settings, wait_for=0)

    quality = ConsumerRuntime(
        "quality",
        QUALITY_QUEUE,
        factory,
        runtime.sessions,
        quality_handlers(runtime),
        retry=RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.2, jitter=0.05),
        receive_timeout=0.1,
    )
    relay = RelayWorker(factory, runtime.sessions, poll_interval=0.05)
    threads = [threading.Thread(target=w.run, daemon=True) for w in (quality, relay)]
    for thread in threads:
        thread.start()
    yield runtime, quality
    for worker in (quality, relay):
        worker.stop()
    for thread in threads:
        thread.join(20)
    runtime.close()


def issue_of(runtime: HubRuntime, kind: str, subject: str) -> DataQualityIssue | None:
    found = issues(runtime.sessions, dedupe_key=f"{kind}:{subject}")
    return found[0] if found else None


def test_a_change_that_makes_a_problem_opens_an_issue_and_one_that_fixes_it_resolves_it(
    live: tuple[HubRuntime, ConsumerRuntime],
) -> None:
    runtime, workers = live
    registry = runtime.registry
    household = register(
        registry,
        "R01-D02-L003",
        person("Mama", "1980-01-01"),
        person("Kid", "1975-06-01", "child"),  # older than the head: a typo
    )
    hid, kid = str(household["id"]), member_id(household, "Kid")
    opened = wait_for(
        lambda: issue_of(runtime, "household_composition", hid), "composition issue opened"
    )
    assert opened.state == "open" and opened.reasons == ["child_too_old"]
    assert opened.household_id == uuid.UUID(hid)

    registry.update_person(kid, {"birth_date": "2010-06-01"}, STAFF)
    resolved = wait_for(
        lambda: (
            (row := issue_of(runtime, "household_composition", hid))
            and row.state == "resolved"
            and row
        ),
        "composition issue resolved by the fix",
    )
    assert resolved.state_changed_by == service.CHECK_ACTOR

    # A later change to the same household finds nothing new: still the one row.
    before = _processed(workers)
    registry.add_member(hid, person("Baby", "2024-01-01", "child"), STAFF)
    wait_for(lambda: _processed(workers) > before, "member added handled")
    assert len(issues(runtime.sessions, household_id=uuid.UUID(hid))) == 1

    # A death recorded, then the birth date "corrected" past it: caught on the person's event.
    registry.record_death(kid, "2015-01-01", STAFF)
    registry.update_person(kid, {"birth_date": "2016-02-02"}, STAFF)
    dated = wait_for(lambda: issue_of(runtime, "impossible_date", kid), "impossible date opened")
    assert dated.reasons == ["death_before_birth"]


def _processed(worker: ConsumerRuntime) -> int:
    return int(worker.status.snapshot()["processed"])


def test_a_failing_check_never_fails_the_registry_write(
    live: tuple[HubRuntime, ConsumerRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, workers = live
    import hub.quality.handlers as handlers

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("check broke")

    monkeypatch.setattr(handlers, "check_subjects", broken)
    household = register(runtime.registry, "R01-D02", person("Ok", "1980-01-01"))
    assert runtime.registry.get_household(household["id"])["id"] == household["id"]
    wait_for(lambda: int(workers.status.snapshot()["dead_lettered"]) >= 1, "dead-lettered")
    assert issues(runtime.sessions) == []
