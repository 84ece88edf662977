"""``srhub token``: issued tokens verify with the server's keys; API keys are managed in the DB.

Commands run through the real ``srhub`` entry group (so the lazy registration is exercised too)
with click's CliRunner; settings come from ``SRHUB_*`` variables as in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner, Result

from hub.auth.api_keys import ApiKeyError, authenticate_api_key
from hub.auth.roles import Role
from hub.auth.tokens import TokenSigner
from hub.cli import main
from hub.settings import load_settings
from registry_core.db import make_engine, make_session_factory, transaction


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SRHUB_DATA_DIR": str(tmp_path / "var"), "SRHUB_TOKEN_TTL_SECONDS": "900"}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["token", *args], env=env, catch_exceptions=False)


def server_signer(env: dict[str, str]) -> TokenSigner:
    return TokenSigner.from_settings(load_settings(env=env))


# --- token issue -----------------------------------------------------------------------------


def test_issued_token_verifies_with_the_server_keys(env: dict[str, str]) -> None:
    result = run(
        env,
        "issue",
        "--role",
        "field_worker",
        "--role",
        "Registry_Staff",
        "--sub",
        "amina",
        "--area",
        "KE-30",
        "--ttl",
        "120",
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert "\n" not in token  # stdout holds the token alone, ready for $(...)
    principal = server_signer(env).verify(token)
    assert principal.subject == "amina"
    assert principal.roles == frozenset({Role.field_worker, Role.registry_staff})
    assert principal.admin_areas == ("KE-30",)
    assert principal.expires_at is not None
    claims = jwt.decode(token, options={"verify_signature": False})
    assert principal.expires_at.timestamp() - claims["iat"] == 120
    assert principal.token_id in result.stderr


def test_default_lifetime_comes_from_settings(env: dict[str, str]) -> None:
    result = run(env, "issue", "--role", "auditor", "--sub", "inspector")
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900


def test_token_from_other_keys_does_not_verify(env: dict[str, str], tmp_path: Path) -> None:
    token = run(env, "issue", "--role", "admin", "--sub", "a").stdout.strip()
    other = {**env, "SRHUB_DATA_DIR": str(tmp_path / "elsewhere")}
    with pytest.raises(Exception, match="unknown or retired"):  # another hub's keyring
        server_signer(other).verify(token)


def test_unknown_role_is_rejected_with_the_valid_roles_listed(env: dict[str, str]) -> None:
    result = run(env, "issue", "--role", "superuser", "--sub", "a")
    assert result.exit_code == 2
    assert "'superuser' is not one of" in result.stderr
    assert "registry_staff" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "field_worker", "--sub", "a"], "needs at least one administrative area"),
        (["--role", "program", "--sub", "a"], "needs a program code"),
        (["--role", "admin", "--sub", "a", "--program", "CCT"], "only applies to the program"),
        (["--role", "admin", "--sub", "  "], "subject"),
        (["--role", "admin", "--sub", "a", "--ttl", "0"], "--ttl"),
        (["--sub", "a"], "--role"),
    ],
)
def test_inconsistent_requests_get_a_clear_usage_error(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = run(env, "issue", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""  # nothing that looks like a token


# --- api-key ---------------------------------------------------------------------------------


@pytest.fixture
def db_env(env: dict[str, str], db_url: str) -> dict[str, str]:
    return {**env, "SRHUB_DATABASE_URL": db_url}


def _authenticate(db_url: str, key: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return authenticate_api_key(session, key)
    finally:
        engine.dispose()


def test_api_key_create_list_revoke(db_env: dict[str, str], db_url: str) -> None:
    created = run(
        db_env, "api-key", "create", "--name", "cct-mis", "--role", "program", "--program", "CCT-01"
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("srk_")
    key_id = key.split("_")[1]
    principal = _authenticate(db_url, key)
    assert (principal.subject, principal.program, principal.kind) == (
        "cct-mis",
        "CCT-01",
        "api_key",
    )

    listed = run(db_env, "api-key", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["name"], r["active"]) for r in rows] == [(key_id, "cct-mis", True)]
    assert rows[0]["last_used_at"] is not None
    assert key.split("_", 2)[2] not in listed.stdout  # the secret is never shown again

    table = run(db_env, "api-key", "list")
    assert key_id in table.stdout and "active" in table.stdout and "program=CCT-01" in table.stdout

    revoked = run(db_env, "api-key", "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked API key {key_id}" in revoked.stdout
    with pytest.raises(ApiKeyError) as caught:
        _authenticate(db_url, key)
    assert caught.value.reason == "revoked"
    assert run(db_env, "api-key", "list", "--active", "--json").stdout.strip() == "[]"


def test_api_key_bad_input_is_refused_and_nothing_is_stored(db_env: dict[str, str]) -> None:
    unknown_role = run(db_env, "api-key", "create", "--name", "x", "--role", "root")
    assert unknown_role.exit_code == 2 and "'root' is not one of" in unknown_role.stderr
    no_area = run(db_env, "api-key", "create", "--name", "tablet", "--role", "field_worker")
    assert no_area.exit_code == 2 and "--area" in no_area.stderr
    assert json.loads(run(db_env, "api-key", "list", "--json").stdout) == []


def test_revoking_an_unknown_key_says_so(db_env: dict[str, str]) -> None:
    result = run(db_env, "api-key", "revoke", "0000000000000000")
    assert result.exit_code == 1
    assert "no API key has id '0000000000000000'" in result.stderr


def test_api_key_commands_refuse_a_fresh_database_until_it_is_upgraded(
    env: dict[str, str], tmp_path: Path
) -> None:
    fresh = {**env, "SRHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh' / 'srhub.db'}"}
    refused = run(fresh, "api-key", "create", "--name", "gis", "--role", "partner")
    assert refused.exit_code == 6
    assert "Error: " in refused.stderr and "run `srhub db upgrade`" in refused.stderr
    upgraded = CliRunner().invoke(main, ["db", "upgrade"], env=fresh, catch_exceptions=False)
    assert upgraded.exit_code == 0, upgraded.output
    created = run(fresh, "api-key", "create", "--name", "gis", "--role", "partner")
    assert created.exit_code == 0, created.output
    assert len(json.loads(run(fresh, "api-key", "list", "--json").stdout)) == 1
