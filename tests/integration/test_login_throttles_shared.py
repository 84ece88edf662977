"""Login throttles hold across API processes (issue 17: the dashboard's and OpenRosa's
failed-login throttles were counted in each process's memory, so N gunicorn processes allowed
N times the guesses). Two apps on one database stand for two processes; the failures are
spread over both and the limit still holds. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from flask.testing import FlaskClient

from hub.api import create_app
from hub.runtime import HubRuntime
from hub.settings import Settings, load_settings
from hub.ui.views import MAX_FAILED_LOGINS
from tests.openrosa_support import add_user

PASSWORD = "correct horse battery 9"
OPENROSA = {"X-OpenRosa-Version": "1.0"}


def _settings(db_url: str, tmp_path: Path) -> Settings:
    # The request limits off: only the login throttles are under test here.
    return load_settings(
        env={},
        data_dir=tmp_path,
        database_url=db_url,
        sandbox=False,
        openrosa={"max_failed_logins": 3},
        rate_limits={"enabled": False, "storage": "database"},
    )


def _two_processes(settings: Settings) -> list[FlaskClient]:
    return [create_app(settings, HubRuntime(settings)).test_client() for _ in range(2)]


def _dashboard_login(client: FlaskClient, token: str) -> int:
    form = client.get("/ui/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf, form[:300]
    answer = client.post(
        "/ui/login",
        data={"csrf_token": csrf.group(1), "method": "token", "token": token, "next": "/"},
    )
    return answer.status_code


def test_dashboard_login_failures_are_counted_across_processes(db_url: str, tmp_path: Path):
    clients = _two_processes(_settings(db_url, tmp_path))
    answers = [
        _dashboard_login(clients[i % 2], f"not-a-token-{i}") for i in range(MAX_FAILED_LOGINS)
    ]
    assert answers == [401] * MAX_FAILED_LOGINS
    # Each process saw half the failures; the shared count refuses both now.
    assert [_dashboard_login(c, "not-a-token-again") for c in clients] == [429, 429]


def _basic(name: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {**OPENROSA, "Authorization": f"Basic {raw}"}


def test_openrosa_login_failures_are_counted_across_processes(db_url: str, tmp_path: Path):
    settings = _settings(db_url, tmp_path)
    add_user(settings, "enumerator7", "field_worker", PASSWORD, "KE-30")
    add_user(settings, "enumerator8", "field_worker", PASSWORD, "KE-30")
    first, second = _two_processes(settings)
    wrong = _basic("enumerator7", "wrong guess 123")
    assert first.head("/openrosa/submission", headers=wrong).status_code == 401
    assert second.head("/openrosa/submission", headers=wrong).status_code == 401
    assert first.head("/openrosa/submission", headers=wrong).status_code == 401
    refused = second.head("/openrosa/submission", headers=_basic("ENUMERATOR7", PASSWORD))
    assert refused.status_code == 429, "the right password waits too, in the other process"
    assert int(refused.headers["Retry-After"]) > 0
    # The throttle is per user and address: a colleague on the same address logs in.
    colleague = first.head("/openrosa/submission", headers=_basic("enumerator8", PASSWORD))
    assert colleague.status_code == 204


def test_the_counters_hold_no_user_name_or_address_in_clear(db_url: str, tmp_path: Path):
    from sqlalchemy import select

    from hub.ratelimit.tables import RateLimitCounter

    settings = _settings(db_url, tmp_path)
    add_user(settings, "enumerator9", "field_worker", PASSWORD, "KE-30")
    client, _ = _two_processes(settings)
    client.head("/openrosa/submission", headers=_basic("enumerator9", "wrong guess 123"))
    assert _dashboard_login(client, "not-a-token") == 401
    runtime = HubRuntime(settings)
    try:
        with runtime.sessions() as session:
            keys = [row.key for row in session.scalars(select(RateLimitCounter))]
    finally:
        runtime.close()
    logins = [k for k in keys if "login-" in k]
    assert len(logins) == 2, keys
    assert not any("enumerator9" in k or "127.0.0.1" in k for k in keys)
