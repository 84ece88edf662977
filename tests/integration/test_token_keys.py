"""Token signing keys and revocations across the whole app: two API processes (two apps over
one data folder and database) see a rotation and a revocation made by the other; the JWKS
lets a program check a token offline; a revoked token's dashboard session ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from flask import Flask

from hub.api import create_app
from hub.auth import revocations
from hub.auth.tokens import TokenSigner
from hub.cli import main
from hub.settings import Settings, load_settings
from hub.workers.retention import run_retention


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False)


@pytest.fixture
def two_apps(settings: Settings) -> Iterator[tuple[Flask, Flask]]:
    """Two API processes of one hub: each has its own keyring cache and revocation list."""
    from hub.api.context import EXTENSION_KEY

    first, second = create_app(settings), create_app(settings)
    yield first, second
    for app in (first, second):
        app.extensions[EXTENSION_KEY].close()


def _env(settings: Settings) -> dict[str, str]:
    return {
        "SRHUB_DATA_DIR": str(settings.data_dir),
        "SRHUB_DATABASE_URL": settings.effective_database_url,
        "SRHUB_SANDBOX": "false",
    }


def test_a_rotation_in_one_process_reaches_the_other(
    settings: Settings, two_apps: tuple[Flask, Flask]
) -> None:
    first, second = two_apps
    old = TokenSigner.from_settings(settings).issue(subject="ops", roles=["admin"])
    old_kid = jwt.get_unverified_header(old)["kid"]
    rotated = CliRunner().invoke(main, ["token", "keys", "rotate"], env=_env(settings))
    assert rotated.exit_code == 0, rotated.output
    new = TokenSigner.from_settings(settings).issue(subject="ops", roles=["admin"])
    new_kid = jwt.get_unverified_header(new)["kid"]
    assert new_kid != old_kid
    for app in (first, second):  # the new kid is looked up at once, the old one still trusted
        client = app.test_client()
        assert client.get("/api/v1/tokens/revocations", headers=bearer(new)).status_code == 200
        assert client.get("/api/v1/tokens/revocations", headers=bearer(old)).status_code == 200
        published = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
        assert {old_kid, new_kid} <= published

    refused = CliRunner().invoke(main, ["token", "keys", "retire", new_kid], env=_env(settings))
    assert refused.exit_code == 1 and "rotate first" in refused.output
    retired = CliRunner().invoke(main, ["token", "keys", "retire", old_kid], env=_env(settings))
    assert retired.exit_code == 0, retired.output
    time.sleep(2.1)  # each process re-reads the keyring file at most every 2 s
    for app in (first, second):
        client = app.test_client()
        assert client.get("/api/v1/tokens/revocations", headers=bearer(old)).status_code == 401
        assert client.get("/api/v1/tokens/revocations", headers=bearer(new)).status_code == 200
        published = {k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
        assert published == {new_kid}


def test_jwks_verifies_a_hub_token_without_any_secret(
    settings: Settings, two_apps: tuple[Flask, Flask]
) -> None:
    first, _ = two_apps
    token = TokenSigner.from_settings(settings).issue(
        subject="cct", roles=["program"], program="CCT"
    )
    answer = first.test_client().get("/.well-known/jwks.json")
    assert answer.status_code == 200 and "max-age" in answer.headers["Cache-Control"]
    keys = jwt.PyJWKSet.from_dict(answer.get_json())
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [k for k in keys.keys if k.key_id == kid]
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=settings.jwt_issuer)
    assert claims["program"] == "CCT"
    assert all("d" not in k for k in answer.get_json()["keys"])  # no private half, ever


def test_a_revoked_token_is_refused_by_every_process_and_its_session_ends(
    settings: Settings, two_apps: tuple[Flask, Flask]
) -> None:
    first, second = two_apps
    signer = TokenSigner.from_settings(settings)
    admin = signer.issue(subject="ops", roles=["admin"])
    victim = signer.issue(subject="amina.k", roles=["registry_staff"])
    victim_id = signer.verify(victim).token_id

    # The victim's token opens a dashboard session on the second process.
    dashboard = second.test_client()
    page = dashboard.get("/ui/login")
    csrf = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    login = dashboard.post(
        "/ui/login", data={"method": "token", "token": victim, "csrf_token": csrf}
    )
    assert login.status_code == 302
    assert dashboard.get("/").status_code == 200
    assert second.test_client().get("/api/v1/households", headers=bearer(victim)).status_code == 200

    api = first.test_client()
    bad = api.post("/api/v1/tokens/revocations", json={"jti": victim_id}, headers=bearer(admin))
    assert bad.status_code == 400 and "reason" in bad.get_json()["detail"]
    refused = api.post(
        "/api/v1/tokens/revocations",
        json={"token": victim, "reason": "laptop stolen"},
        headers=bearer(victim),
    )
    assert refused.status_code == 403  # staff cannot revoke, not even their own
    made = api.post(
        "/api/v1/tokens/revocations",
        json={"token": victim, "reason": "laptop stolen"},
        headers=bearer(admin),
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["jti"] == victim_id
    # at once in the process that revoked it
    assert api.get("/api/v1/households", headers=bearer(victim)).status_code == 401
    # within the refresh time in the other one, dashboard session included
    time.sleep(revocations.REFRESH_SECONDS + 0.2)
    assert second.test_client().get("/api/v1/households", headers=bearer(victim)).status_code == 401
    assert dashboard.get("/").status_code == 302  # back to the login page
    again = api.post(
        "/api/v1/tokens/revocations",
        json={"jti": victim_id, "reason": "again"},
        headers=bearer(admin),
    )
    assert again.status_code == 200
    listed = api.get("/api/v1/tokens/revocations", headers=bearer(admin)).get_json()["items"]
    assert [(i["jti"], i["reason"], i["revoked_by"]) for i in listed] == [
        (victim_id, "laptop stolen", "token:ops")
    ]


def test_revocations_are_pruned_once_the_token_has_expired(settings: Settings) -> None:
    from datetime import timedelta

    from hub.runtime import HubRuntime
    from standards.timeutil import utcnow

    runtime = HubRuntime(settings)
    try:
        with runtime.sessions.begin() as session:
            for jti, days in (("gone", -1), ("live", 1)):
                revocations.revoke(
                    session,
                    jti=jti,
                    expires_at=utcnow() + timedelta(days=days),
                    revoked_by="test",
                    reason="test",
                )
        result = run_retention(runtime.sessions, [revocations.retention_job()])
        assert result["revoked_tokens"] == 1
        with runtime.sessions() as session:
            assert [i["jti"] for i in revocations.list_revoked(session)] == ["live"]
            from sqlalchemy import func, select

            from hub.auth.tables import RevokedTokenRow

            assert session.scalar(select(func.count()).select_from(RevokedTokenRow)) == 1
    finally:
        runtime.close()
