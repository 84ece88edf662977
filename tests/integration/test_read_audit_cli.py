"""``srhub audit verify|purge`` on SQLite and PostgreSQL: verify prints the verdict and exits 1
on a broken chain; purge drops old rows behind an anchor, and the rest still verifies."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from hub.auth.roles import Principal, Role
from hub.cli import main
from hub.readaudit.log import ReadAuditLog
from hub.readaudit.records import ReadEntry, ReadRecords
from registry_core.db import make_session_factory
from standards import timeutil

READER = Principal(subject="officer", roles=frozenset({Role.registry_staff}))


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {"SRHUB_DATABASE_URL": db_url, "SRHUB_DATA_DIR": str(tmp_path)}


def write(engine, count: int) -> None:
    log = ReadAuditLog(make_session_factory(engine))
    for _ in range(count):
        records = ReadRecords((str(uuid.uuid4()),), (), 1)
        log.append(ReadEntry.by(READER, "api", "GET /x", records))


def test_verify_then_purge_then_verify_then_tamper(env, db_engine, monkeypatch):
    write(db_engine, 4)
    result = CliRunner().invoke(main, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["intact"] and verdict["head"]["seq"] == 4

    later = timeutil.utcnow() + timedelta(days=3)
    monkeypatch.setattr(timeutil, "utcnow", lambda: later)
    result = CliRunner().invoke(main, ["audit", "purge", "--older-than-days", "2"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"deleted": 4, "older_than_days": 2.0}
    monkeypatch.undo()

    write(db_engine, 2)
    verdict = json.loads(CliRunner().invoke(main, ["audit", "verify"], env=env).output)
    assert verdict["intact"] and verdict["anchor"]["seq"] == 4 and verdict["checked"] == 2

    with db_engine.begin() as conn:
        if db_engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("DELETE FROM read_audit WHERE seq = 5"))
    result = CliRunner().invoke(main, ["audit", "verify"], env=env)
    assert result.exit_code == 1
    assert "broken at row 6" in result.output
    # A broken chain is not purged.
    monkeypatch.setattr(timeutil, "utcnow", lambda: later)
    result = CliRunner().invoke(main, ["audit", "purge", "--older-than-days", "1"], env=env)
    assert result.exit_code == 1 and "nothing was purged" in result.output
