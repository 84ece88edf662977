"""Rate limits (issue 17: 2,000 requests with bad tokens or keys were all answered, no 429).

On SQLite and PostgreSQL, with the counters in the hub's database: per client address for
requests without credentials, per credential, failed credentials per address; 429 with
``Retry-After``; the upsert counts exactly under concurrent hits.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest
from flask import Flask
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.ratelimit.flask_limits import make_storage
from hub.settings import Settings, load_settings


def limited_settings(db_url: str, tmp_path: Path, **limits: object) -> Settings:
    values: dict[str, object] = {
        "enabled": True,
        "per_address": "5/minute",
        "per_credential": "7/minute",
        "failed_credentials": "3/minute",
    }
    values.update(limits)
    return load_settings(
        env={}, data_dir=tmp_path, database_url=db_url, sandbox=False, rate_limits=values
    )


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return limited_settings(db_url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


def assert_429(response: object) -> int:
    assert response.status_code == 429  # type: ignore[attr-defined]
    assert response.mimetype == "application/problem+json"  # type: ignore[attr-defined]
    wait = int(response.headers["Retry-After"])  # type: ignore[attr-defined]
    assert 1 <= wait <= 60
    return wait


def test_requests_without_credentials_are_limited_per_address(app: Flask) -> None:
    client = app.test_client()
    assert [client.get("/health").status_code for _ in range(5)] == [200] * 5
    assert_429(client.get("/health"))
    assert_429(client.get("/ui/login"))  # every route without credentials shares the budget
    other = app.test_client()
    answer = other.get("/health", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert answer.status_code == 200  # another address has its own


def test_repeated_bad_tokens_and_keys_from_one_address_get_429(app: Flask) -> None:
    client = app.test_client()
    for _ in range(3):
        bad = {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}
        assert client.get("/api/v1/households", headers=bad).status_code == 401
    # A fourth guess, even a different kind of credential, is refused before it is checked.
    assert_429(client.get("/api/v1/households", headers={"X-API-Key": "srk_guess"}))
    assert_429(client.get("/api/v1/households", headers={"Authorization": "Bearer x"}))
    # Another address is not locked out by this one's guesses.
    elsewhere = {"REMOTE_ADDR": "198.51.100.9"}
    key = {"X-API-Key": "srk_x"}
    answer = client.get("/api/v1/households", headers=key, environ_base=elsewhere)
    assert answer.status_code == 401


def test_a_credential_is_limited_on_its_own(app: Flask, settings: Settings) -> None:
    client = app.test_client()
    token = issue_token(settings, subject="partner", roles=["admin"])
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [client.get("/api/v1/households", headers=headers).status_code for _ in range(7)]
    assert statuses == [200] * 7
    assert_429(client.get("/api/v1/households", headers=headers))
    # The same partner's budget is spent whichever address it calls from.
    moved_address = {"REMOTE_ADDR": "203.0.113.5"}
    moved = client.get("/api/v1/households", headers=headers, environ_base=moved_address)
    assert_429(moved)
    other = {"Authorization": f"Bearer {issue_token(settings, subject='b', roles=['admin'])}"}
    assert client.get("/api/v1/households", headers=other).status_code == 200


def test_limits_can_be_turned_off(db_url: str, tmp_path: Path) -> None:
    app = create_app(limited_settings(db_url, tmp_path, enabled=False))
    client = app.test_client()
    assert {client.get("/health").status_code for _ in range(12)} == {200}


def test_the_database_counter_is_exact_under_concurrent_hits(settings: Settings) -> None:
    from hub.runtime import HubRuntime

    runtime = HubRuntime(settings)
    try:
        limiter = FixedWindowRateLimiter(make_storage(settings, runtime.engine))
        item = parse("25/minute")
        allowed: list[bool] = []
        lock = threading.Lock()

        def hit() -> None:
            for _ in range(10):
                ok = limiter.hit(item, "shared")
                with lock:
                    allowed.append(ok)

        threads = [threading.Thread(target=hit) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(allowed) == 60 and allowed.count(True) == 25
        stats = limiter.get_window_stats(item, "shared")
        assert stats.remaining == 0
    finally:
        runtime.close()
