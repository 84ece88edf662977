"""Field users: ``srhub users add`` with roles and areas, what is stored for them, HTTP Basic
refused over plain HTTP from the network, and supervisors (not field workers) on the
dashboard."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from hub.api import create_app
from hub.cli import main
from hub.openrosa.credentials import open_digest_secret
from hub.openrosa.digest import ha1
from hub.runtime import HubRuntime
from hub.settings import Settings, load_settings
from hub.ui.tables import UiUser

PASSWORD = "correct horse battery staple"
OR = {"X-OpenRosa-Version": "1.0"}


def _env(settings: Settings) -> dict[str, str]:
    return {"SRHUB_DATABASE_URL": settings.database_url, "SRHUB_DATA_DIR": str(settings.data_dir)}


def _users(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(main, ["users", *args], input=PASSWORD + "\n", env=_env(settings))


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return load_settings(env={}, data_dir=tmp_path, database_url=db_url, sandbox=False)


def _row(settings: Settings, name: str) -> UiUser:
    runtime = HubRuntime(settings)
    try:
        with runtime.sessions() as db:
            row = db.scalars(select(UiUser).where(UiUser.username == name)).one()
            db.expunge(row)
            return row
    finally:
        runtime.close()


def test_field_roles_need_areas_and_staff_roles_take_none(settings: Settings) -> None:
    missing = _users(settings, "add", "amina", "--role", "field_worker", "--password-stdin")
    assert missing.exit_code == 2 and "needs at least one administrative area" in missing.output
    staff = _users(
        settings, "add", "clerk", "--role", "registry_staff", "--area", "KE", "--password-stdin"
    )
    assert staff.exit_code == 2 and "only apply to the field_worker and supervisor" in staff.output
    colon = _users(settings, "add", "a:b", "--role", "admin", "--password-stdin")
    assert colon.exit_code == 2, "a colon would break Basic and Digest"


def test_a_field_worker_gets_areas_and_a_sealed_digest_secret_and_staff_none(
    settings: Settings,
) -> None:
    added = _users(
        settings,
        "add",
        "amina",
        "--role",
        "field_worker",
        "--area",
        "KE-30",
        "--area",
        "KE-31",
        "--password-stdin",
    )
    assert added.exit_code == 0, added.output
    assert "for KE-30, KE-31" in added.output
    assert PASSWORD not in added.output
    row = _row(settings, "amina")
    assert row.role == "field_worker" and row.area_codes == ("KE-30", "KE-31")
    assert row.digest_ha1 is not None
    wanted = ha1("MD5", "amina", settings.openrosa.realm, PASSWORD)
    assert wanted.encode() not in row.digest_ha1, "sealed, not in clear"
    runtime = HubRuntime(settings)
    try:
        opened = open_digest_secret(
            runtime.cipher, settings.openrosa.realm, "amina", row.digest_ha1, "MD5"
        )
    finally:
        runtime.close()
    assert opened == wanted

    assert (
        _users(settings, "add", "clerk", "--role", "registry_staff", "--password-stdin").exit_code
        == 0
    )
    clerk = _row(settings, "clerk")
    assert clerk.digest_ha1 is None and clerk.area_codes == ()

    again = _users(
        settings, "add", "amina", "--role", "supervisor", "--area", "KE-4", "--password-stdin"
    )
    assert again.exit_code == 1 and "--replace" in again.output
    reset = _users(
        settings,
        "add",
        "amina",
        "--role",
        "supervisor",
        "--area",
        "KE-4",
        "--replace",
        "--password-stdin",
    )
    assert reset.exit_code == 0, reset.output
    assert _row(settings, "amina").area_codes == ("KE-4",)
    listed = _users(settings, "list")
    assert re.search(r"^amina\tsupervisor\tactive\tnever\tKE-4$", listed.output, re.M), (
        listed.output
    )


def test_basic_is_refused_over_plain_http_from_the_network(settings: Settings) -> None:
    assert (
        _users(
            settings, "add", "amina", "--role", "field_worker", "--area", "KE", "--password-stdin"
        ).exit_code
        == 0
    )
    runtime = HubRuntime(settings)
    try:
        app = create_app(settings, runtime)
        client = app.test_client()
        basic = "Basic " + base64.b64encode(f"amina:{PASSWORD}".encode()).decode()
        remote = {"REMOTE_ADDR": "10.20.30.40"}
        answer = client.head(
            "/openrosa/submission", headers={**OR, "Authorization": basic}, environ_base=remote
        )
        assert answer.status_code == 401
        offered = [h.split(" ")[0] for h in answer.headers.getlist("WWW-Authenticate")]
        assert offered == ["Digest", "Digest"], "no Basic challenge over plain HTTP"
        secure = client.head(
            "/openrosa/submission",
            headers={**OR, "Authorization": basic},
            environ_base=remote,
            base_url="https://localhost",
        )
        assert secure.status_code == 204
        offered = client.head("/openrosa/submission", headers=OR, environ_base=remote)
        assert "Basic" not in " ".join(offered.headers.getlist("WWW-Authenticate"))
    finally:
        runtime.close()


def _login(client: Any, username: str) -> Any:
    page = client.get("/ui/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    return client.post(
        "/ui/login",
        data={
            "csrf_token": token.group(1),
            "method": "password",
            "username": username,
            "password": PASSWORD,
            "next": "/",
        },
    )


def test_supervisors_may_log_into_the_dashboard_with_their_areas_field_workers_may_not(
    settings: Settings,
) -> None:
    from hub.ui import security

    for name, role in (("sam", "supervisor"), ("fatuma", "field_worker")):
        assert (
            _users(
                settings, "add", name, "--role", role, "--area", "KE-30", "--password-stdin"
            ).exit_code
            == 0
        )
    runtime = HubRuntime(settings)
    try:
        app = create_app(settings, runtime)
        worker = app.test_client()
        assert _login(worker, "fatuma").status_code == 401
        supervisor = app.test_client()
        assert _login(supervisor, "sam").status_code == 302
        assert supervisor.get("/ui/dead-letters").status_code == 403, "staff pages stay staff's"
        with supervisor.session_transaction() as stored:
            assert stored["ui"]["role"] == "supervisor"
            assert stored["ui"]["areas"] == ["KE-30"]
        staff = security.StaffUser("sam", "supervisor", "password", ("KE-30",))
        principal = staff.principal()
        assert principal.may_touch_area("KE-30-01") and not principal.may_touch_area("KE-31")
        assert _users(settings, "disable", "sam").exit_code == 0
        assert supervisor.get("/ui/dead-letters").status_code == 302, "disabled: back to login"
    finally:
        runtime.close()


@pytest.mark.parametrize("trusted", [0, 1])
def test_behind_a_tls_proxy_the_hub_trusts_only_the_proxies_it_is_told_of(
    settings: Settings, trusted: int
) -> None:
    """A TLS-terminating proxy speaks plain HTTP to the hub and says X-Forwarded-Proto:
    https. Trusted (SRHUB_TRUSTED_PROXIES=1), the hub sees HTTPS: Basic is accepted and the
    form list prints the public https URLs. Not trusted, the same headers change nothing (a
    client could forge them)."""
    from dataclasses import replace

    from hub.intake.contract import INTAKE_EXTENSION_KEY
    from hub.intake.setup import load_sample_form

    assert (
        _users(
            settings, "add", "amina", "--role", "field_worker", "--area", "KE", "--password-stdin"
        ).exit_code
        == 0
    )
    settings = replace(settings, trusted_proxies=trusted)
    runtime = HubRuntime(settings)
    try:
        app = create_app(settings, runtime)
        load_sample_form(app.extensions[INTAKE_EXTENSION_KEY])
        client = app.test_client()
        basic = "Basic " + base64.b64encode(f"amina:{PASSWORD}".encode()).decode()
        forwarded = {
            "X-Forwarded-For": "41.90.1.2",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "registry.gov.example",
        }
        listed = client.get(
            "/openrosa/formList",
            headers={**OR, **forwarded, "Authorization": basic},
            environ_base={"REMOTE_ADDR": "10.0.0.5"},  # the proxy, on the network
        )
        if trusted:
            assert listed.status_code == 200
            assert "https://registry.gov.example/openrosa/forms/" in listed.get_data(as_text=True)
        else:
            assert listed.status_code == 401  # Basic over plain HTTP from the network
    finally:
        runtime.close()
