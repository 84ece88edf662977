"""Shared by the staff-page tests (Flask test client and headless Chromium): dashboard users of
each role, households with a national ID, and a test-client login."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from flask.testing import FlaskClient

from hub.cli import main
from hub.settings import Settings
from registry_core.service import Registry, Source
from tests.integration.test_dashboard import CSRF_RE, PASSWORD

STAFF = Source("registry_staff")


def add_dashboard_user(
    settings: Settings, username: str, role: str, areas: tuple[str, ...] = ()
) -> None:
    """A password user through the CLI, as an administrator adds one."""
    args = ["users", "add", username, "--role", role, "--password-stdin"]
    for area in areas:
        args += ["--area", area]
    result = CliRunner().invoke(
        main,
        args,
        input=PASSWORD + "\n",
        env={"SRHUB_DATABASE_URL": settings.database_url, "SRHUB_DATA_DIR": str(settings.data_dir)},
    )
    assert result.exit_code == 0, result.output


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def log_in(client: FlaskClient, username: str) -> Any:
    """Log ``client`` in with the password form; returns the page it lands on."""
    form = client.get("/ui/login")
    return client.post(
        "/ui/login",
        data={
            "csrf_token": csrf_of(form.get_data(as_text=True)),
            "method": "password",
            "username": username,
            "password": PASSWORD,
            "next": "/ui/households",
        },
        follow_redirects=True,
    )


def register(
    registry: Registry,
    area: str,
    given: str,
    family: str,
    national_id: str | None = None,
    *,
    second: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A household of a head (with a national ID when given) and optionally a spouse."""
    head: dict[str, Any] = {
        "given_name": given,
        "family_name": family,
        "sex": "female",
        "birth_date": "1984-01-02",
        "relationship": "head",
    }
    if national_id:
        head["identifiers"] = [{"system": "national_id", "value": national_id}]
    members = [head]
    if second:
        members.append(
            {
                "given_name": second[0],
                "family_name": second[1],
                "sex": "male",
                "birth_date": "1980-05-06",
                "relationship": "spouse",
            }
        )
    record = {"admin_area_code": area, "address": "12 Mango Lane", "members": members}
    return registry.register_household(record, STAFF).record
