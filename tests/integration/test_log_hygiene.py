"""Issue 17, logs and partner files: no national IDs in the access log, no bound parameters in
database error logs, archived partner files deleted after their retention."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from werkzeug.serving import make_server

from hub.api import create_app
from hub.assembly import partner_archive_job, retention_jobs
from hub.auth.tokens import issue_token
from hub.dbschema import upgrade_to_head
from hub.logging_setup import (
    DatabaseErrorRedaction,
    install_database_error_redaction,
    redact_query_values,
)
from hub.settings import load_settings
from registry_core.db import make_engine
from tests.services import postgres_url_or_skip

NATIONAL_ID = "1234567897"


@pytest.fixture
def werkzeug_info():
    """The werkzeug logger at INFO (srhub run holds it at WARNING unless DEBUG), as an
    operator troubleshooting would have it."""
    logger = logging.getLogger("werkzeug")
    saved = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(saved)


def test_national_id_in_identifier_search_is_not_in_the_access_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, werkzeug_info: None
):
    url = f"sqlite:///{(tmp_path / 'srhub.db').as_posix()}"
    upgrade_to_head(url)
    settings = load_settings(env={}, database_url=url, data_dir=tmp_path)
    app = create_app(settings)
    token = issue_token(settings, subject="tester", roles=["registry_staff"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            for query in (
                {"identifier": f"national_id|{NATIONAL_ID}"},
                {"q": NATIONAL_ID, "national_id": NATIONAL_ID, "area": "R01"},
            ):
                answer = requests.get(
                    f"{base}/api/v1/persons",
                    params=query,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                assert answer.status_code in (200, 400)
            deadline = time.monotonic() + 5
            while caplog.text.count("GET /api/v1/persons") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["srhub_runtime"].close()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert sum("GET /api/v1/persons" in line for line in lines) == 2, lines
    assert not any(NATIONAL_ID in line for line in lines)
    assert any("identifier=[redacted]" in line for line in lines)
    assert any("area=R01" in line for line in lines)  # other parameters stay readable


def test_access_log_redaction_keeps_the_path_and_other_parameters():
    line = '"GET /ui/households?national_id=1234567897&status=active&Q=Amina HTTP/1.1"'
    assert redact_query_values(line) == (
        '"GET /ui/households?national_id=[redacted]&status=active&Q=[redacted] HTTP/1.1"'
    )


def test_postgresql_error_log_holds_no_bound_parameters():
    url = postgres_url_or_skip()
    engine = make_engine(url)
    secret = "Amina-Otieno-1985-04-02"
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
            conn.execute(text("SELECT CAST(:v AS integer)"), {"v": secret})
    finally:
        engine.dispose()
    error = raised.value
    # SQLAlchemy's own text: the statement stays, the parameters are hidden.
    assert "hide_parameters" in str(error) or "[parameters:" not in str(error)
    # PostgreSQL's own message still quotes the value; the log handler withholds it.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(DatabaseErrorRedaction())
    logger = logging.getLogger("tests.log_hygiene")
    logger.addHandler(handler)
    try:
        logger.error("unhandled %s (incident x)", type(error).__name__, exc_info=error)
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert secret not in logged
    assert "SQLSTATE 22P02" in logged and "Traceback" in logged


def test_database_error_redaction_is_installed_on_the_root_handlers():
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        install_database_error_redaction()
        install_database_error_redaction()
        assert sum(isinstance(f, DatabaseErrorRedaction) for f in handler.filters) == 1
    finally:
        root.removeHandler(handler)


def _age(path: Path, days: float) -> None:
    moment = time.time() - days * 86_400
    os.utime(path, (moment, moment))


def test_archived_partner_files_are_deleted_after_their_retention(tmp_path: Path):
    folder = tmp_path / "tax-drops"
    for name in ("processed", "rejected"):
        (folder / name).mkdir(parents=True)
    old = folder / "processed" / "20240101T000000Z_income_2024_000001.csv"
    old_report = old.with_name(old.name + ".report.json")
    refused = folder / "rejected" / "20240101T000000Z_income_2024_000002.xml"
    recent = folder / "processed" / "20261201T000000Z_income_2026_000003.csv"
    waiting = folder / "income_2026_000004.csv"  # not yet handled: never touched
    for path in (old, old_report, refused, recent, waiting):
        path.write_text("TAXPAYER_TIN,NATIONAL_ID\n1,1234567897\n")
    for path in (old, old_report, refused, waiting):
        _age(path, 45)
    _age(recent, 3)
    settings = load_settings(
        env={"SRHUB_MONITORING__PARTNER_FILE_ARCHIVE_MAX_AGE_DAYS": "30"}, data_dir=tmp_path
    )
    job = partner_archive_job(settings, {"tax": {"kind": "tax", "drop_folder": str(folder)}})
    assert job.prune(None) == 3  # type: ignore[arg-type]
    assert not old.exists() and not old_report.exists() and not refused.exists()
    assert recent.exists() and waiting.exists()
    # It runs with the other retention jobs.
    names = [j.name for j in retention_jobs(settings, connector_configs={})]
    assert "partner_file_archives" in names
