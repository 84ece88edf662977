"""Deny-by-default access control on a real Flask app: tokens, API keys, roles, area scope.

The app is built here with a few declared routes and one undeclared one; it is exercised with
the Flask test client and once over real HTTP on a loopback port. API key tests use the
``db_engine`` fixture, so they run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask, jsonify
from flask.views import MethodView
from sqlalchemy import Column, MetaData, String, Table, create_engine, select
from sqlalchemy.engine import Engine
from werkzeug.serving import make_server

from hub.auth import Role, current_principal, init_app, public, require_area, requires
from hub.auth.api_keys import create_api_key, revoke_api_key
from hub.auth.flask_auth import access_table, undeclared_endpoints
from hub.auth.roles import Principal
from hub.auth.scope import area_condition
from hub.auth.signing_keys import Keyring
from hub.auth.tables import ApiKeyRow
from hub.auth.tokens import TokenSigner
from hub.settings import Settings, load_settings
from registry_core.db import make_session_factory, transaction

PROBLEM = "application/problem+json"


class AuditLog(MethodView):
    decorators = [requires(Role.auditor, Role.admin)]

    def get(self) -> object:
        return jsonify(entries=[], reader=current_principal().subject)


def build_app(settings: Settings, session_factory: object | None) -> Flask:
    app = Flask("auth_test_app")

    @app.get("/health")
    @public
    def health() -> object:
        return jsonify(status="ok")

    @app.get("/households")
    @requires(Role.registry_staff, Role.auditor)
    def list_households() -> object:
        principal = current_principal()
        return jsonify(subject=principal.subject, kind=principal.kind)

    @app.post("/households/<area>")
    @requires(Role.field_worker, Role.registry_staff)
    def register_household(area: str) -> object:
        require_area(area)
        return jsonify(area=area, by=current_principal().subject), 201

    @app.get("/admin/settings")
    @requires(Role.admin)
    def admin_settings() -> object:
        return jsonify(ok=True)

    @app.get("/forgotten")
    def forgotten() -> object:  # declares nothing: must be closed
        return jsonify(secret="leak")

    app.add_url_rule("/audit", view_func=AuditLog.as_view("audit"))
    init_app(app, settings, session_factory)  # type: ignore[arg-type]
    return app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, data_dir=tmp_path / "var")


@pytest.fixture
def signer(settings: Settings) -> TokenSigner:
    return TokenSigner.from_settings(settings)


@pytest.fixture
def token_app(settings: Settings) -> Flask:
    return build_app(settings, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.mimetype == PROBLEM  # type: ignore[attr-defined]
    body = json.loads(response.get_data(as_text=True))  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


# --- declarations ----------------------------------------------------------------------------


def test_the_undeclared_view_is_listed_and_everything_else_is_declared(token_app: Flask) -> None:
    assert undeclared_endpoints(token_app) == ["forgotten"]
    table = access_table(token_app)
    assert table["health"] == "public"
    assert table["audit"] == "admin, auditor"
    assert table["forgotten"] == "undeclared (closed)"


def test_undeclared_route_is_closed_even_to_admin(token_app: Flask, signer: TokenSigner) -> None:
    client = token_app.test_client()
    admin = signer.issue(subject="root", roles=["admin"])
    body = assert_problem(client.get("/forgotten", headers=bearer(admin)), 403)
    assert "declares no access rule" in str(body["detail"])
    assert "leak" not in json.dumps(body)


def test_requires_without_roles_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        requires()
    with pytest.raises(TypeError):
        requires("admin")  # type: ignore[arg-type]


def test_public_route_needs_no_credentials(token_app: Flask) -> None:
    client = token_app.test_client()
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/health", headers=bearer("garbage")).status_code == 200


def test_unknown_path_is_still_404(token_app: Flask) -> None:
    assert token_app.test_client().get("/no-such-thing").status_code == 404


# --- 401 --------------------------------------------------------------------------------------


def test_missing_token_is_401_with_a_bearer_challenge(token_app: Flask) -> None:
    response = token_app.test_client().get("/households")
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in str(body["detail"])
    assert response.headers["Cache-Control"] == "no-store"


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_every_kind_of_bad_token_gets_the_same_generic_401(
    token_app: Flask, settings: Settings, signer: TokenSigner
) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    good_claims = {
        "sub": "x",
        "roles": ["registry_staff"],
        "iss": "srhub",
        "jti": "j",
        "iat": int(datetime.now(UTC).timestamp()),
        "exp": 2**40,
    }
    bad_tokens = {
        "unknown key": TokenSigner.with_keyring(Keyring.generate()).issue(
            subject="x", roles=["registry_staff"]
        ),
        "expired": signer.issue(subject="x", roles=["registry_staff"], ttl_seconds=60, now=past),
        "wrong issuer": TokenSigner(keys=signer.keys, issuer="evil").issue(
            subject="x", roles=["registry_staff"]
        ),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good_claims)}.",
        "garbage": "not.a.token",
    }
    client = token_app.test_client()
    details = set()
    for label, token in bad_tokens.items():
        response = client.get("/households", headers=bearer(token))
        body = assert_problem(response, 401)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], label
        details.add(body["detail"])
    assert len(details) == 1  # no hint about why a token failed


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}, {"X-API-Key": "x"}],
)
def test_unsupported_or_empty_credentials_are_401(
    token_app: Flask, headers: dict[str, str]
) -> None:
    response = token_app.test_client().get("/households", headers=headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- 403 and success -----------------------------------------------------------------------


def test_valid_token_reaches_the_view_with_its_principal(
    token_app: Flask, signer: TokenSigner
) -> None:
    token = signer.issue(subject="officer-7", roles=["registry_staff"])
    response = token_app.test_client().get("/households", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {"subject": "officer-7", "kind": "token"}


def test_wrong_role_is_403_naming_the_roles_needed(token_app: Flask, signer: TokenSigner) -> None:
    token = signer.issue(subject="cct", roles=["program"], program="CCT")
    response = token_app.test_client().get("/admin/settings", headers=bearer(token))
    body = assert_problem(response, 403)
    assert "admin" in str(body["detail"])


def test_class_based_view_declared_through_decorators(
    token_app: Flask, signer: TokenSigner
) -> None:
    client = token_app.test_client()
    auditor = signer.issue(subject="aud", roles=["auditor"])
    staff = signer.issue(subject="st", roles=["registry_staff"])
    assert client.get("/audit", headers=bearer(auditor)).get_json()["reader"] == "aud"
    assert_problem(client.get("/audit", headers=bearer(staff)), 403)


def test_field_worker_may_only_touch_households_in_their_areas(
    token_app: Flask, signer: TokenSigner
) -> None:
    client = token_app.test_client()
    worker = signer.issue(subject="enum-1", roles=["field_worker"], admin_areas=["KE-30"])
    inside = client.post("/households/KE-30-02", headers=bearer(worker))
    assert inside.status_code == 201 and inside.get_json()["by"] == "enum-1"
    body = assert_problem(client.post("/households/KE-31-01", headers=bearer(worker)), 403)
    assert "areas" in str(body["detail"])
    staff = signer.issue(subject="st", roles=["registry_staff"])
    assert client.post("/households/KE-31-01", headers=bearer(staff)).status_code == 201
    # A field worker is still not admitted to staff-only routes.
    assert_problem(client.get("/households", headers=bearer(worker)), 403)


def test_api_keys_are_refused_when_no_key_store_is_configured(token_app: Flask) -> None:
    key = "srk_0123456789abcdef_" + "A" * 43
    assert_problem(token_app.test_client().get("/households", headers={"X-API-Key": key}), 401)


def test_tokens_and_keys_never_reach_the_log(
    token_app: Flask, signer: TokenSigner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = token_app.test_client()
    good = signer.issue(subject="w", roles=["field_worker"], admin_areas=["KE"])
    expired = signer.issue(
        subject="w", roles=["admin"], ttl_seconds=1, now=datetime.now(UTC) - timedelta(hours=1)
    )
    client.get("/households", headers=bearer(good))
    client.get("/households", headers=bearer(expired))
    client.get("/households", headers={"X-API-Key": "srk_0123456789abcdef_" + "B" * 43})
    assert "token_expired" in caplog.text  # the reason is logged...
    for secret in (good, expired, good.split(".")[2], "B" * 43):
        assert secret not in caplog.text  # ...the credential is not


# --- API keys (database) ---------------------------------------------------------------------


@pytest.fixture
def key_app(settings: Settings, db_engine: Engine) -> Flask:
    return build_app(settings, make_session_factory(db_engine))


def _new_key(db_engine: Engine, **kwargs: object) -> str:
    with transaction(make_session_factory(db_engine)) as session:
        return create_api_key(session, **kwargs).key  # type: ignore[arg-type]


def test_api_key_authenticates_in_both_header_forms(key_app: Flask, db_engine: Engine) -> None:
    key = _new_key(db_engine, name="national-id-adapter", roles=["registry_staff"])
    client = key_app.test_client()
    for headers in ({"X-API-Key": key}, {"Authorization": f"ApiKey {key}"}):
        response = client.get("/households", headers=headers)
        assert response.status_code == 200
        assert response.get_json() == {"subject": "national-id-adapter", "kind": "api_key"}
    with make_session_factory(db_engine)() as session:
        row = session.scalars(select(ApiKeyRow)).one()
        assert row.last_used_at is not None
        assert key.split("_", 2)[2] not in row.secret_sha256  # only a hash is stored


def test_revoked_wrong_and_unknown_keys_are_401(key_app: Flask, db_engine: Engine) -> None:
    key = _new_key(db_engine, name="opencrvs", roles=["registry_staff"])
    key_id = key.split("_")[1]
    client = key_app.test_client()
    wrong_secret = key[:-3] + ("AAA" if not key.endswith("AAA") else "BBB")
    unknown_id = "srk_ffffffffffffffff_" + key.split("_", 2)[2]
    assert_problem(client.get("/households", headers={"X-API-Key": wrong_secret}), 401)
    assert_problem(client.get("/households", headers={"X-API-Key": unknown_id}), 401)
    assert client.get("/households", headers={"X-API-Key": key}).status_code == 200
    with transaction(make_session_factory(db_engine)) as session:
        revoke_api_key(session, key_id)
    assert_problem(client.get("/households", headers={"X-API-Key": key}), 401)


def test_api_key_roles_and_scopes_apply(key_app: Flask, db_engine: Engine) -> None:
    partner = _new_key(db_engine, name="tax-authority", roles=["partner"])
    tablet = _new_key(db_engine, name="tablet-7", roles=["field_worker"], admin_areas=["UG-1"])
    client = key_app.test_client()
    assert_problem(client.get("/households", headers={"X-API-Key": partner}), 403)
    assert client.post("/households/UG-1-2", headers={"X-API-Key": tablet}).status_code == 201
    assert_problem(client.post("/households/UG-12", headers={"X-API-Key": tablet}), 403)
    assert_problem(client.post("/households/KE-1", headers={"X-API-Key": tablet}), 403)


def test_sending_two_credentials_is_refused(
    key_app: Flask, db_engine: Engine, signer: TokenSigner
) -> None:
    key = _new_key(db_engine, name="x", roles=["registry_staff"])
    token = signer.issue(subject="y", roles=["registry_staff"])
    headers = {**bearer(token), "X-API-Key": key}
    assert_problem(key_app.test_client().get("/households", headers=headers), 401)


def test_key_store_outage_is_503_not_a_crash(settings: Settings, tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    app = build_app(settings, make_session_factory(broken))
    key = "srk_0123456789abcdef_" + "C" * 43
    client = app.test_client()
    assert_problem(client.get("/households", headers={"X-API-Key": key}), 503)
    assert client.get("/health").status_code == 200
    broken.dispose()


# --- over real HTTP --------------------------------------------------------------------------


@pytest.fixture
def served(key_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, key_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_access_control_over_real_http(served: str, db_engine: Engine, signer: TokenSigner) -> None:
    with requests.Session() as http:
        missing = http.get(f"{served}/households", timeout=5)
        assert missing.status_code == 401
        assert missing.headers["Content-Type"] == PROBLEM
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert missing.json()["status"] == 401

        staff = signer.issue(subject="officer", roles=["registry_staff"])
        ok = http.get(f"{served}/households", headers=bearer(staff), timeout=5)
        assert ok.status_code == 200 and ok.json()["subject"] == "officer"

        wrong_role = http.get(f"{served}/admin/settings", headers=bearer(staff), timeout=5)
        assert wrong_role.status_code == 403 and wrong_role.json()["title"] == "Forbidden"

        closed = http.get(f"{served}/forgotten", headers=bearer(staff), timeout=5)
        assert closed.status_code == 403 and "leak" not in closed.text

        key = _new_key(db_engine, name="program-mis", roles=["auditor"])
        by_key = http.get(f"{served}/audit", headers={"X-API-Key": key}, timeout=5)
        assert by_key.status_code == 200 and by_key.json()["reader"] == "program-mis"
        with transaction(make_session_factory(db_engine)) as session:
            revoke_api_key(session, key.split("_")[1])
        assert http.get(f"{served}/audit", headers={"X-API-Key": key}, timeout=5).status_code == 401


# --- area scope inside SQL -------------------------------------------------------------------


def test_area_condition_filters_rows_like_may_touch_area(db_engine: Engine) -> None:
    metadata = MetaData()
    probe = Table(f"auth_scope_probe_{uuid.uuid4().hex[:8]}", metadata, Column("code", String(64)))
    codes = ["KE-30", "KE-30-01", "KE-31", "KE_30", "ke-30-02", "UG-1", "UG-12", "KEX30"]
    metadata.create_all(db_engine)
    try:
        with db_engine.begin() as conn:
            conn.execute(probe.insert(), [{"code": c} for c in codes])
        principals = [
            Principal("w", frozenset({Role.field_worker}), admin_areas=("KE-30", "UG-1")),
            Principal("u", frozenset({Role.field_worker}), admin_areas=("KE_3",)),  # "_" literal
            Principal("s", frozenset({Role.registry_staff})),
            Principal("p", frozenset({Role.partner})),
        ]
        with db_engine.connect() as conn:
            for principal in principals:
                condition = area_condition(principal, probe.c.code)
                query = select(probe.c.code)
                if condition is not None:
                    query = query.where(condition)
                seen = set(conn.scalars(query))
                assert seen == {c for c in codes if principal.may_touch_area(c)}, principal.subject
        assert area_condition(principals[2], probe.c.code) is None
    finally:
        metadata.drop_all(db_engine)
