"""The message log: recording through the monitoring middleware (publishes, outcomes with
their notes, failures), sealed bodies, keyset pages served by an index, and retention that
keeps the table bounded (by age, rows and bytes) — on SQLite and PostgreSQL, directly, through
``srhub monitoring prune`` and through the scheduled job; and every package's retention job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select, text

from hub.broker.base import Delivery, Message
from hub.monitoring import message_log
from hub.monitoring.message_log import (
    INBOUND,
    MessageLogEntry,
    MessageLogWriter,
    RetentionPolicy,
    enforce_retention,
    list_messages,
    read_body,
)
from hub.monitoring.middleware import MonitoringMiddleware
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.workers.errors import PermanentError, TransientError
from hub.workers.handlers import HandlerContext, HandlerResult
from standards.timeutil import utcnow


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[HubRuntime]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False)
    hub = HubRuntime(settings)
    try:
        yield hub
    finally:
        hub.close()


def _ctx(routing_key: str) -> HandlerContext:
    """What the runtime gives middleware for one delivery of ``routing_key``."""
    message = Message(b"{}", routing_key, "unused")
    return HandlerContext("ingest", Delivery(message, "sr.ingest", "sr.inbound", 1, False, 1), None)


def _fill(
    runtime: HubRuntime,
    count: int,
    *,
    start_id: int = 1,
    age: timedelta = timedelta(0),
    size: int = 100,
    connectors: int = 10,
) -> None:
    """Bulk insert ``count`` rows (ids ascending with time, as the writer produces them)."""
    base = utcnow() - age
    rows = [
        {
            "id": start_id + i,
            "direction": INBOUND,
            "connector": f"c{i % connectors}",
            "message_id": f"m-{start_id + i}",
            "routing_key": f"c{i % connectors}.record",
            "size": size,
            "status": "applied" if i % 7 else "failed",
            "started_at": base + timedelta(milliseconds=i),
            "finished_at": base + timedelta(milliseconds=i + 5),
        }
        for i in range(count)
    ]
    with runtime.sessions.begin() as session:
        for offset in range(0, len(rows), 10_000):
            session.execute(insert(MessageLogEntry), rows[offset : offset + 10_000])


MOMENT = "2026-01-01 00:00:00.000000"  # SQLite stores naive UTC text
FILL_SQL = {
    "postgresql": (
        "INSERT INTO message_log (id, direction, connector, message_id, routing_key, size,"
        " status, started_at, finished_at)"
        " SELECT i + 1, 'in', 'c' || (i % 10), 'm-' || (i + 1), 'c' || (i % 10) || '.record',"
        " 100, CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'applied' END, :moment, :moment"
        " FROM generate_series(0, :last) AS i"
    ),
    "sqlite": (
        "INSERT INTO message_log (id, direction, connector, message_id, routing_key, size,"
        " status, started_at, finished_at)"
        " WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :last)"
        " SELECT i + 1, 'in', 'c' || (i % 10), 'm-' || (i + 1), 'c' || (i % 10) || '.record',"
        " 100, CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'applied' END, :moment, :moment FROM n"
    ),
}


def _fill_fast(runtime: HubRuntime, count: int) -> None:
    """Bulk insert in one INSERT ... SELECT (the database generates the rows): 100,000 rows in
    about a second, same layout as ``_fill`` (connector c<i % 10>, every 7th row failed)."""
    dialect = runtime.engine.dialect.name
    with runtime.engine.begin() as conn:
        conn.execute(
            text(FILL_SQL[dialect]),
            {"last": count - 1, "moment": MOMENT if dialect == "sqlite" else utcnow()},
        )


def _fix_sequence(runtime: HubRuntime) -> None:
    """Explicit ids do not advance PostgreSQL's sequence; the writer's inserts must not clash."""
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('message_log', 'id'), "
                    "(SELECT COALESCE(MAX(id), 1) FROM message_log))"
                )
            )


def _count(runtime: HubRuntime) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(MessageLogEntry)).scalar())


def test_middleware_records_publish_and_outcome_with_sealed_bodies(runtime: HubRuntime) -> None:
    writer = MessageLogWriter(runtime.sessions, runtime.cipher, body_connectors=["tax"])
    monitoring = MonitoringMiddleware(writer)
    body = b'{"data": {"payload": "NATIONAL-ID 123456789"}}'
    started = time.monotonic()
    monitoring.published("tax", [Message(body, "tax.income_row", "ev-tax-1")], started)
    monitoring.published("gis", [Message(body, "gis.location", "ev-gis-1")], started)
    monitoring.published("gis", [Message(body, "gis.location", "ev-gis-2")], started)
    monitoring.published("gis", [Message(body, "gis.location", "ev-gis-3")], started)
    writer.flush()

    event = {"id": "ev-tax-1", "time": utcnow().isoformat()}
    notes = ("father.identifiers[system=national_id].value: failed the check digit",)
    monitoring.after(_ctx("tax.income_row"), event, HandlerResult("applied", notes))
    refused = PermanentError("row 3: date 2024-13-01 is not a date", "MappingError", ("a: b",))
    monitoring.failed(_ctx("gis.location"), {"id": "ev-gis-1"}, refused)
    monitoring.failed(_ctx("gis.location"), {"id": "ev-gis-3"}, TransientError("locked"))
    writer.flush()

    with runtime.sessions() as session:
        items, cursor = list_messages(session, limit=10)
        by_id = {item["message_id"]: item for item in items}
        assert cursor is None
        assert set(by_id) == {"ev-tax-1", "ev-gis-1", "ev-gis-2", "ev-gis-3"}
        assert by_id["ev-tax-1"]["status"] == "applied"
        assert by_id["ev-tax-1"]["notes"] == notes[0]  # the handler's notes reach the log
        assert by_id["ev-tax-1"]["has_body"] is True
        assert by_id["ev-tax-1"]["size"] == len(body)
        assert by_id["ev-tax-1"]["finished_at"] is not None
        assert by_id["ev-gis-1"]["status"] == "failed"
        assert by_id["ev-gis-1"]["error"] == "MappingError"  # class only: no record content
        assert by_id["ev-gis-1"]["notes"] == "a: b"  # noted before it failed: kept too
        assert by_id["ev-gis-1"]["has_body"] is False  # bodies only where configured
        assert by_id["ev-gis-2"]["status"] == "received"
        assert by_id["ev-gis-3"]["status"] == "retrying"

        sealed = session.execute(
            select(MessageLogEntry.body_sealed).where(MessageLogEntry.message_id == "ev-tax-1")
        ).scalar_one()
        assert b"123456789" not in sealed  # encrypted at rest
        assert read_body(session, by_id["ev-tax-1"]["id"], runtime.cipher) == body
        pending = message_log.pending_by_connector(session)
    assert pending["gis"]["backlog"] == 1 and "tax" not in pending


def test_outcome_without_a_published_row_is_inserted(runtime: HubRuntime) -> None:
    writer = MessageLogWriter(runtime.sessions, runtime.cipher)
    monitoring = MonitoringMiddleware(writer)
    event = {"id": "ev-other-process"}
    monitoring.after(_ctx("civil_registry.birth"), event, HandlerResult("review"))
    monitoring.outbound(
        "program-mis", "ev-out-1", status="delivered", started_at=utcnow(), size=321
    )
    writer.flush()
    with runtime.sessions() as session:
        items, _ = list_messages(session, limit=10)
    statuses = {(i["direction"], i["connector"], i["status"]) for i in items}
    assert statuses == {("in", "civil_registry", "review"), ("out", "program-mis", "delivered")}


def test_keyset_pages_over_100k_rows_use_an_index(runtime: HubRuntime) -> None:
    _fill_fast(runtime, 100_000)
    assert _count(runtime) == 100_000
    with runtime.engine.begin() as conn:
        conn.execute(text("ANALYZE message_log"))
    seen: list[int] = []
    with runtime.sessions() as session:
        before = None
        for _ in range(5):
            items, before = list_messages(session, connector="c3", before=before, limit=200)
            seen.extend(item["id"] for item in items)
        # the last page of a filtered walk deep into the table
        deep, _ = list_messages(session, connector="c3", status="failed", before=1000, limit=5)
    assert len(seen) == 1000 == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    assert all(i % 10 == 4 for i in seen)  # c3 rows are ids 4, 14, 24, ... (start_id 1)
    assert seen[0] == 99_994
    assert [d["id"] for d in deep] == sorted((d["id"] for d in deep), reverse=True)
    assert all(d["id"] < 1000 and d["status"] == "failed" for d in deep)

    query = (
        "SELECT id FROM message_log WHERE connector = 'c3' AND id < 50000 ORDER BY id DESC LIMIT 51"
    )
    with runtime.engine.connect() as conn:
        if runtime.engine.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
            assert "INDEX" in plan.upper() and "TEMP B-TREE" not in plan.upper(), plan
        else:
            plan = " ".join(r[0] for r in conn.execute(text(f"EXPLAIN {query}")))
            assert "Index" in plan and "Sort" not in plan and "Seq Scan" not in plan, plan


def test_retention_holds_the_log_within_age_rows_and_bytes(runtime: HubRuntime) -> None:
    _fill(runtime, 1_000, start_id=1, age=timedelta(days=40))  # too old
    _fill(runtime, 6_000, start_id=1_001, size=100)  # young, 600,000 bytes
    assert _count(runtime) == 7_000

    with runtime.sessions.begin() as session:
        result = enforce_retention(
            session, RetentionPolicy(max_age=timedelta(days=30), max_rows=5_000, max_bytes=10**9)
        )
    assert (result.deleted_by_age, result.deleted_by_rows) == (1_000, 1_000)
    assert result.rows_left == _count(runtime) == 5_000

    with runtime.sessions.begin() as session:
        result = enforce_retention(
            session, RetentionPolicy(max_age=timedelta(days=30), max_rows=5_000, max_bytes=250_000)
        )
    assert result.deleted_by_bytes == 2_500 and result.bytes_left <= 250_000
    with runtime.sessions() as session:
        low, high = session.execute(
            select(func.min(MessageLogEntry.id), func.max(MessageLogEntry.id))
        ).one()
        oldest = session.execute(select(func.min(MessageLogEntry.started_at))).scalar()
    assert high == 7_000 and low == 7_000 - 2_500 + 1  # the newest kept, the oldest gone
    assert oldest > utcnow() - timedelta(days=1)

    with runtime.sessions.begin() as session:  # nothing more to do: a second run is a no-op
        again = enforce_retention(
            session, RetentionPolicy(max_age=timedelta(days=30), max_rows=5_000, max_bytes=250_000)
        )
    assert again.deleted == 0 and again.rows_left == 2_500


def test_cli_prune_applies_the_limits(runtime: HubRuntime, tmp_path: Path) -> None:
    from hub.cli import main

    _fill(runtime, 3_000)
    env = {
        "SRHUB_DATABASE_URL": runtime.settings.effective_database_url,
        "SRHUB_DATA_DIR": str(tmp_path / "var"),
        "SRHUB_EXTRA": '{"message_log_max_rows": 1200}',
    }
    result = CliRunner().invoke(main, ["monitoring", "prune"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert '"deleted_by_rows": 1800' in result.output
    assert _count(runtime) == 1_200
    result = CliRunner().invoke(
        main, ["monitoring", "prune", "--max-rows", "1000"], env=env, catch_exceptions=False
    )
    assert '"deleted": 200' in result.output and _count(runtime) == 1_000


def test_the_scheduled_job_keeps_a_growing_log_bounded(runtime: HubRuntime) -> None:
    from hub.monitoring.service import start_monitoring
    from hub.settings import with_overrides

    settings = with_overrides(
        runtime.settings,
        extra={
            "message_log_max_rows": 500,
            "monitoring_interval_seconds": 0.1,
            "message_log_retention_interval_seconds": 0.2,
            "message_log_flush_seconds": 0.05,
        },
    )
    _fill(runtime, 2_000)
    _fix_sequence(runtime)
    monitor = start_monitoring(settings, runtime)
    try:
        for batch in range(5):  # traffic keeps arriving while the job runs
            monitor.middleware.published(
                "c1",
                [Message(b"x" * 10, "c1.record", f"live-{batch}-{i}") for i in range(200)],
                time.monotonic(),
            )
            time.sleep(0.1)
        deadline = time.monotonic() + 15
        newest = None
        while time.monotonic() < deadline:
            with runtime.sessions() as session:
                newest = session.execute(
                    select(MessageLogEntry.message_id).order_by(MessageLogEntry.id.desc()).limit(1)
                ).scalar()
            if newest == "live-4-199" and _count(runtime) <= 500:
                break
            time.sleep(0.1)
        assert monitor.writer is not None and monitor.writer.written >= 1_000
        assert newest == "live-4-199"  # the newest traffic is kept ...
        assert _count(runtime) <= 500  # ... and the log is back under its limit
        assert monitor.last_retention is not None
        assert monitor.last_retention["message_log"].deleted > 0
    finally:
        monitor.stop()


# ----------------------------------------------------------------- DCI transactions, delivery log


def _fill_other_logs(runtime: HubRuntime, old: int, new: int, age: timedelta) -> None:
    """``old`` rows of each log from ``age`` ago and ``new`` rows from now."""
    from hub.dci.tables import DciTransaction
    from hub.subscriptions.tables import DeliveryAttempt

    now = utcnow()
    moments = [now - age - timedelta(seconds=i) for i in range(old)] + [now] * new
    with runtime.sessions.begin() as session:
        session.execute(
            insert(DciTransaction),
            [
                {
                    "correlation_id": f"c{i:05d}",
                    "sender_id": "spmis",
                    "transaction_id": f"t{i}",
                    "message_id": f"m{i}",
                    "txn_type": "search",
                    "status": "succ",
                    "items": [],
                    "callback_status": "none",
                    "created_at": moment,
                    "completed_at": moment,
                }
                for i, moment in enumerate(moments)
            ],
        )
        session.execute(
            insert(DeliveryAttempt),
            [
                {
                    "subscription_code": "cash-deaths",
                    "event_id": f"e{i}",
                    "event_type": "person.died",
                    "attempt": 1,
                    "status": "delivered",
                    "personal": False,
                    "started_at": moment,
                }
                for i, moment in enumerate(moments)
            ],
        )


def _other_log_counts(runtime: HubRuntime) -> tuple[int, int]:
    from hub.dci.tables import DciTransaction
    from hub.subscriptions.tables import DeliveryAttempt

    with runtime.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(DciTransaction)) or 0,
            session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0,
        )


def test_dci_transactions_and_the_delivery_log_are_kept_for_their_age(
    runtime: HubRuntime,
) -> None:
    from hub.dci.retention import prune_transactions
    from hub.subscriptions.retention import prune_delivery_log

    _fill_other_logs(runtime, old=30, new=5, age=timedelta(days=40))
    with runtime.sessions.begin() as session:
        deleted = (
            prune_transactions(session, timedelta(days=30), chunk=7),
            prune_delivery_log(session, timedelta(days=90), chunk=7),
        )
    # 40 days old: past the 30 days of DCI transactions, within the 90 of the delivery log
    assert deleted == (30, 0)
    assert _other_log_counts(runtime) == (5, 35)
    with runtime.sessions.begin() as session:
        deleted = (
            prune_transactions(session, timedelta(days=30), chunk=7),
            prune_delivery_log(session, timedelta(days=10), chunk=7),  # several chunks
        )
    assert deleted == (0, 30)
    assert _other_log_counts(runtime) == (5, 5)  # the recent rows stay


def test_every_package_brings_its_retention_job(runtime: HubRuntime) -> None:
    """The application's list runs each package's own job, by the package's own setting."""
    from hub.assembly import retention_jobs
    from hub.workers.retention import run_retention

    _fill_other_logs(runtime, old=4, new=2, age=timedelta(days=3))
    from hub.settings import with_overrides

    settings = with_overrides(
        runtime.settings,
        extra={"dci_transaction_max_age_days": 1, "delivery_log_max_age_days": 5},
    )
    jobs = retention_jobs(settings)
    assert [job.name for job in jobs] == [
        "message_log",
        "dci_transactions",
        "delivery_log",
        "processed_messages",
        "intake_requeue",  # not a log: stored field submissions nobody queued, queued again
        "recertification",  # not a log: flags households due or overdue, deletes nothing
        "quality_scan",  # not a log: starts and carries on the data-quality scan
        "revoked_tokens",  # ids of revoked bearer tokens, once the tokens have expired
        "policy_snapshot",  # not a log: today's policy headline counts, hourly
        "partner_file_archives",  # files, not rows: archived partner extracts age out
        "identifier_rekey",  # not a log: moves rows to the active identifier key version
        "read_audit",  # who read what, purged past its own retention behind an anchor
    ]
    results = run_retention(runtime.sessions, jobs)
    assert results["dci_transactions"] == 4  # 3 days old, kept for 1
    assert results["delivery_log"] == 0  # 3 days old, kept for 5
    assert results["processed_messages"] == 0
    assert results["intake_requeue"] == 0  # nothing was stuck
    assert results["recertification"] == 0  # no household is due
    assert results["quality_scan"] == 0  # a scan started: nothing in the registry to check
    assert results["revoked_tokens"] == 0  # no token was revoked
    assert results["policy_snapshot"] == 1  # today's totals (no program yet: one row)
    # Retaken only once today's row is an hour old.
    snapshot_job = [job for job in jobs if job.name == "policy_snapshot"]
    assert run_retention(runtime.sessions, snapshot_job)["policy_snapshot"] == 0
    assert results["partner_file_archives"] == 0  # no connector with a drop folder here
    assert results["identifier_rekey"] == 0  # one key version: nothing to move
    assert results["read_audit"] == 0  # nothing read yet
    assert results["message_log"].deleted == 0
    assert _other_log_counts(runtime) == (2, 6)


def test_cli_prune_reports_the_other_logs(runtime: HubRuntime, tmp_path: Path) -> None:
    from hub.cli import main

    _fill_other_logs(runtime, old=12, new=3, age=timedelta(days=5))
    env = {
        "SRHUB_DATABASE_URL": runtime.settings.effective_database_url,
        "SRHUB_DATA_DIR": str(tmp_path / "var"),
        "SRHUB_EXTRA": '{"dci_transaction_max_age_days": 1, "delivery_log_max_age_days": 2}',
    }
    result = CliRunner().invoke(main, ["monitoring", "prune"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    others = json.loads(result.output)["other_logs"]
    assert others == {
        "dci_transactions": 12,
        "delivery_log": 12,
        "processed_messages": 0,
        "intake_requeue": 0,
        "recertification": 0,
        "quality_scan": 0,
        "revoked_tokens": 0,
        "policy_snapshot": 1,
        "partner_file_archives": 0,
        "identifier_rekey": 0,
        "read_audit": 0,
    }
    assert _other_log_counts(runtime) == (3, 3)


@pytest.mark.parametrize("bad", [0, -3, "thirty", True, None])
def test_a_bad_log_age_is_refused_with_its_name(bad: object) -> None:
    from hub.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"extra\.delivery_log_max_age_days"):
        load_settings(env={}, extra={"delivery_log_max_age_days": bad})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_separate_ingest_worker_records_its_outcomes(runtime: HubRuntime, tmp_path: Path) -> None:
    """``srhub worker ingest`` configures the monitoring middleware like ``srhub run``: a
    record it refuses shows in the message log with the reason's class."""
    import os
    import signal
    import subprocess
    import sys

    from connectors.base.envelope import raw_event
    from connectors.base.records import RawRecord
    from hub.broker import connect
    from hub.broker.base import EXCHANGE_INBOUND
    from hub.workers.topology import WORKER_QUEUES
    from standards.cloudevents import to_json_bytes

    record = RawRecord("income_row", {"RECORD_NO": "1"}, source_id="f:1")
    event = raw_event("tax", record, time=utcnow())
    broker = connect(runtime.settings)
    try:
        broker.declare_topology(list(WORKER_QUEUES))
        broker.publish(
            EXCHANGE_INBOUND, [Message(to_json_bytes(event), "tax.income_row", event["id"])]
        )
    finally:
        broker.close()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "SRHUB_DATABASE_URL": runtime.settings.effective_database_url,
        "SRHUB_DATA_DIR": str(runtime.settings.data_dir),
    }
    env.pop("SRHUB_AMQP_URL", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "worker", "ingest"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        found: list[dict[str, object]] = []
        while not found and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.2)
            with runtime.sessions() as session:
                found, _ = list_messages(session, connector="tax")
        child.send_signal(signal.SIGTERM)
        _out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert found, f"no message log entry; worker said:\n{err}"
    assert (found[0]["message_id"], found[0]["status"], found[0]["error"]) == (
        event["id"],
        "failed",
        "MappingError",
    )
    assert child.returncode == 0 and "dead_lettered=1" in err
