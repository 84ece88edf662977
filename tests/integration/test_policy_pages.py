"""The policy pages through Flask's test client: a policymaker logs in with a password, lands
on ``/ui/policy`` and is refused (403, with the reason) on every household, person and staff
page; staff and auditors open the policy pages too; the nav shows Policy to those who may."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.api import create_app
from hub.settings import load_settings
from tests.integration.staff_support import add_dashboard_user, csrf_of, register
from tests.integration.test_dashboard import PASSWORD


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    made = create_app(settings)
    made.extensions["srhub_runtime"].registry.ensure_identifier_systems()
    for name, role, areas in (
        ("olga", "registry_staff", ()),
        ("audrey", "auditor", ()),
        ("pat", "policymaker", ()),
        ("sue", "supervisor", ("R01",)),
    ):
        add_dashboard_user(settings, name, role, areas)
    yield made
    made.extensions["srhub_runtime"].close()


def _log_in(client: FlaskClient, username: str, next_path: str = "") -> tuple[int, str, str]:
    """Log in without a ``next`` (as from the login page); the status, path and page landed."""
    form = client.get("/ui/login")
    data = {
        "csrf_token": csrf_of(form.get_data(as_text=True)),
        "method": "password",
        "username": username,
        "password": PASSWORD,
    }
    if next_path:
        data["next"] = next_path
    landed = client.post("/ui/login", data=data, follow_redirects=True)
    return landed.status_code, landed.request.path, landed.get_data(as_text=True)


def test_a_policymaker_lands_on_the_policy_page(app: Flask) -> None:
    client = app.test_client()
    status, path, html = _log_in(client, "pat")
    assert (status, path) == (200, "/ui/policy")
    assert "<h1>Policy" in html
    assert 'href="/ui/policy/simulations"' in html
    # The nav offers the policy pages and none of the registry's.
    assert ">Policy</a>" in html
    assert 'href="/ui/households"' not in html
    assert "(policymaker)" in html


def test_a_policymaker_is_refused_every_household_person_and_staff_page(app: Flask) -> None:
    registry = app.extensions["srhub_runtime"].registry
    household = register(registry, "R01-D01", "Wanjiku", "Kariuki", "12345678")
    client = app.test_client()
    _log_in(client, "pat")
    hid = household["id"]
    pages = [
        "/",
        "/ui/households",
        f"/ui/households/{hid}",
        f"/ui/households/{hid}/consents",
        f"/ui/households/{hid}/change-requests",
        f"/ui/households/{hid}/change-requests/new",
        "/ui/change-requests",
        "/ui/recertification",
        "/ui/queues",
        "/ui/intake/forms",
        "/ui/intake/submissions",
        "/ui/intake/conflicts",
        "/ui/duplicates",
        f"/ui/duplicates/{uuid.uuid4()}",
        "/ui/quality",
        "/ui/dead-letters",
        "/ui/review",
        "/ui/audit",
        "/ui/connectors/gis",
    ]
    for page in pages:
        answer = client.get(page)
        if page == "/":
            # The staff overview sends a policymaker home rather than refusing.
            assert answer.status_code == 302, page
            assert answer.headers["Location"].endswith("/ui/policy")
            continue
        body = answer.get_data(as_text=True)
        assert answer.status_code == 403, (page, answer.status_code)
        assert "Policymakers see aggregate figures only" in body, page
        assert "Wanjiku" not in body and "Kariuki" not in body
    # A POST is refused too (before any CSRF or form check could matter).
    page = client.get("/ui/policy").get_data(as_text=True)
    refused = client.post(
        f"/ui/households/{hid}/consents",
        data={"csrf_token": csrf_of(page)},
    )
    assert refused.status_code == 403


def test_a_policymaker_asking_for_a_household_page_at_login_is_refused_there(app: Flask) -> None:
    client = app.test_client()
    status, path, html = _log_in(client, "pat", next_path="/ui/households")
    assert (status, path) == (403, "/ui/households")
    assert "Policymakers see aggregate figures only" in html


@pytest.mark.parametrize(("username", "sees_policy"), [("olga", True), ("audrey", True)])
def test_staff_and_auditors_open_the_policy_page(
    app: Flask, username: str, sees_policy: bool
) -> None:
    client = app.test_client()
    _log_in(client, username)
    page = client.get("/ui/policy")
    assert page.status_code == 200
    assert (">Policy</a>" in page.get_data(as_text=True)) is sees_policy


def test_a_supervisor_neither_opens_nor_sees_the_policy_page(app: Flask) -> None:
    client = app.test_client()
    status, path, html = _log_in(client, "sue")
    assert (status, path) == (200, "/ui/review")
    assert ">Policy</a>" not in html
    refused = client.get("/ui/policy")
    assert refused.status_code == 403


def test_without_a_session_the_policy_page_asks_for_a_login(app: Flask) -> None:
    answer = app.test_client().get("/ui/policy")
    assert answer.status_code == 302
    assert "/ui/login" in answer.headers["Location"]
