"""The read-audit log on SQLite and PostgreSQL: appends chain, the database refuses updates,
a tampered, deleted or reordered row is found by the verifier, a purge leaves an anchor from
which the rest verifies, and a purge refuses to erase a broken chain."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from hub.auth.roles import Principal, Role
from hub.readaudit.log import ChainBroken, ReadAuditLog, ReadFilters
from hub.readaudit.records import ReadEntry, ReadRecords
from hub.readaudit.retention import retention_job
from hub.workers.retention import run_retention
from registry_core.db import make_session_factory
from standards.timeutil import utcnow

STAFF = Principal(subject="officer-1", roles=frozenset({Role.registry_staff}))
PROGRAM = Principal(subject="spmis", roles=frozenset({Role.program}), program="cash")


@pytest.fixture
def audit(db_engine):
    return ReadAuditLog(make_session_factory(db_engine))


def entry(principal=STAFF, households=1, purpose=None) -> tuple[ReadEntry, list[str]]:
    ids = [str(uuid.uuid4()) for _ in range(households)]
    records = ReadRecords(tuple(ids), (str(uuid.uuid4()),), households)
    return ReadEntry.by(principal, "api", "GET /x", records, purpose), ids


def tamper(engine, statement: str, **params) -> None:
    """Change the table behind the guards' back, as someone with the database's keys could."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS read_audit_no_update"))
        conn.execute(text(statement), params)


def test_appends_chain_and_verify(audit):
    for _ in range(4):
        audit.append(entry()[0])
    verdict = audit.verify()
    assert verdict.intact and verdict.checked == 4 and verdict.head_seq == 4


def test_concurrent_appends_keep_one_chain(audit):
    def write() -> None:
        for _ in range(10):
            audit.append(entry()[0])

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = audit.verify()
    assert verdict.intact and verdict.checked == 40


def test_the_database_refuses_updates(audit, db_engine):
    audit.append(entry()[0])
    refused = (DBAPIError, IntegrityError, OperationalError)
    with pytest.raises(refused, match="append-only"), db_engine.begin() as conn:
        conn.execute(text("UPDATE read_audit SET subject = 'x'"))


def test_postgresql_refuses_deletes_outside_the_purge(audit, db_engine):
    if db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no session setting a trigger could read: UPDATE only")
    audit.append(entry()[0])
    with pytest.raises(DBAPIError, match="append-only"), db_engine.begin() as conn:
        conn.execute(text("DELETE FROM read_audit"))


def test_an_edited_row_is_detected(audit, db_engine):
    for _ in range(5):
        audit.append(entry()[0])
    tamper(db_engine, "UPDATE read_audit SET subject = 'nobody' WHERE seq = 3")
    verdict = audit.verify()
    assert not verdict.intact and verdict.broken_seq == 3 and verdict.checked == 2


def test_a_deleted_row_is_detected(audit, db_engine):
    for _ in range(5):
        audit.append(entry()[0])
    tamper(db_engine, "DELETE FROM read_audit WHERE seq = 2")
    verdict = audit.verify()
    assert not verdict.intact and verdict.broken_seq == 3 and "missing" in verdict.reason


def test_reordered_rows_are_detected(audit, db_engine):
    for _ in range(4):
        audit.append(entry()[0])
    # Swap the subjects and hashes of rows 2 and 3 (seq stays in order).
    tamper(
        db_engine,
        "UPDATE read_audit SET subject = CASE seq WHEN 2 THEN 'b' ELSE 'a' END WHERE seq IN (2, 3)",
    )
    assert audit.verify().broken_seq == 2


def test_purge_leaves_an_anchor_and_the_rest_verifies(audit, db_engine):
    for _ in range(6):
        audit.append(entry()[0])
    cutoff = utcnow() + timedelta(seconds=1)  # everything so far is "old"
    sessions = make_session_factory(db_engine)
    assert run_retention(sessions, [retention_job(36500)])["read_audit"] == 0  # none old
    assert audit.purge(cutoff) == 6
    for _ in range(3):
        audit.append(entry()[0])
    verdict = audit.verify()
    assert verdict.intact and verdict.checked == 3
    assert verdict.anchor.seq == 6 and verdict.head_seq == 9
    # Deleting the first row after the anchor is still found.
    tamper(db_engine, "DELETE FROM read_audit WHERE seq = 7")
    assert audit.verify().broken_seq == 8


def test_purge_keeps_rows_newer_than_the_cutoff(audit, db_engine):
    for _ in range(3):
        audit.append(entry()[0])
    cutoff = utcnow()
    for _ in range(2):
        audit.append(entry()[0])
    assert audit.purge(cutoff) == 3
    assert audit.verify().intact and audit.verify().checked == 2
    assert audit.purge(cutoff) == 0  # the anchor is where the chain starts now


def test_purge_refuses_a_broken_chain(audit, db_engine):
    for _ in range(4):
        audit.append(entry()[0])
    tamper(db_engine, "UPDATE read_audit SET record_count = 99 WHERE seq = 2")
    with pytest.raises(ChainBroken, match="row 2"):
        audit.purge(utcnow() + timedelta(seconds=1))
    assert audit.verify().broken_seq == 2  # nothing was deleted


def test_filters_and_keyset_pages(audit):
    first, first_ids = entry(households=2, purpose="social-assistance")
    audit.append(first)
    for _ in range(5):
        audit.append(entry()[0])
    audit.append(entry(PROGRAM)[0])
    page = audit.page(ReadFilters(), limit=3)
    assert [r["seq"] for r in page.items] == [7, 6, 5] and page.next_before == 5
    page = audit.page(ReadFilters(), before=page.next_before, limit=3)
    assert [r["seq"] for r in page.items] == [4, 3, 2]
    assert audit.page(ReadFilters(), before=2, limit=3).next_before is None
    found = audit.page(ReadFilters(household_id=first_ids[1])).items
    assert [r["seq"] for r in found] == [1]
    assert found[0]["household_ids"] == first_ids and found[0]["record_count"] == 2
    assert found[0]["roles"] == ["registry_staff"]
    person = found[0]["person_ids"][0]
    assert [r["seq"] for r in audit.page(ReadFilters(person_id=person)).items] == [1]
    assert [r["seq"] for r in audit.page(ReadFilters(purpose="social-assistance")).items] == [1]
    assert [r["seq"] for r in audit.page(ReadFilters(subject="spmis")).items] == [7]
    program_row = audit.page(ReadFilters(subject="spmis")).items[0]
    assert program_row["program"] == "cash" and program_row["purpose"] == "unspecified"
    later = audit.page(ReadFilters(since=utcnow() + timedelta(seconds=5))).items
    assert later == []
    assert len(audit.page(ReadFilters(until=utcnow() + timedelta(seconds=5))).items) == 7
