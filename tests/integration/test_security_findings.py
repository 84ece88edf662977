"""Regression tests for issue 17's findings, each named after it, over real databases (SQLite
and PostgreSQL): the open redirect after login, areas as a hierarchy of segments, SSRF at
creation and at send time, enumeration (subscriptions, members, readiness) and DCI signature
lifetimes."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import select

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from hub.subscriptions.tables import DEAD_LETTERED, DeliveryAttempt, Subscription
from hub.workers.egress import REFUSED_ERROR
from registry_core.areas import is_within, narrowed, within_any
from registry_core.service import Source
from tests.integration.notification_support import notification_workers, receiver, wait_until

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SURVEY = Source("survey", "2025-01-01")


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    runtime = app.extensions["srhub_runtime"]
    runtime.registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = (), program: str | None = None) -> dict:
        token = issue_token(
            settings, subject="tester", roles=list(roles), admin_areas=areas, program=program
        )
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.app_under_test = app  # type: ignore[attr-defined]
    client.runtime = runtime  # type: ignore[attr-defined]
    client.settings = settings  # type: ignore[attr-defined]
    yield client
    runtime.close()


def household(area: str, nid: str | None = None, given: str = "Amina") -> dict[str, Any]:
    head: dict[str, Any] = {
        "given_name": given,
        "family_name": "Otieno",
        "sex": "female",
        "birth_date": "1985-04-02",
        "relationship": "head",
    }
    if nid:
        head["identifiers"] = [{"system": "national_id", "value": nid}]
    return {"admin_area_code": area, "address": "12 Mango Lane", "members": [head]}


# --- open redirect after dashboard login ---------------------------------------------------------

HOSTILE_NEXT = [
    "/\t/evil.example/phish",
    "/%09/evil.example/phish",
    "/\n/evil.example",
    "/\r\nSet-Cookie: x=1",
    "/%0d%0aSet-Cookie:%20x=1",
    "/\\evil.example",
    "\\\\evil.example",
    "/%5Cevil.example",
    "//evil.example",
    "///evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    " /ui/",
    "evil.example",
]


def _login(app: Any, token: str, next_value: str) -> Any:
    client = app.test_client()
    form = client.get("/ui/login", query_string={"next": next_value})
    assert form.status_code == 200, form.status_code  # never a 500, whatever next holds
    csrf = CSRF_RE.search(form.get_data(as_text=True))
    assert csrf
    return client.post(
        "/ui/login",
        data={"csrf_token": csrf.group(1), "method": "token", "token": token, "next": next_value},
    )


@pytest.mark.parametrize("next_value", HOSTILE_NEXT)
def test_open_redirect_after_login_stays_on_this_site(api, next_value: str) -> None:
    token = issue_token(api.settings, subject="ops", roles=["admin"])
    answer = _login(api.app_under_test, token, next_value)
    assert answer.status_code in (302, 303), answer.status_code
    location = answer.headers["Location"]
    assert location == "/", location  # the overview, not the hostile target
    assert urlsplit(location).netloc == ""


def test_open_redirect_fix_keeps_a_genuine_next(api) -> None:
    token = issue_token(api.settings, subject="ops", roles=["admin"])
    target = "/ui/households?q=" + quote("Amina Otieno")
    answer = _login(api.app_under_test, token, target)
    assert answer.headers["Location"] == target


# --- areas as a hierarchy of segments ------------------------------------------------------------


def test_area_prefix_helper_reads_segments() -> None:
    assert is_within("R01", "R01") and is_within("R01-D02-L003", "R01")
    assert is_within("R01-D02", "R01-")  # a trailing separator names the same area
    assert not is_within("R011-D01", "R01") and not is_within("R010-EVIL", "R01")
    assert not is_within("R01", "R01-D02") and not is_within("R01-D02", "")
    assert within_any("R02-D01", ["R01", "R02"]) and not within_any(None, ["R01"])
    assert narrowed("R01-D02", ["R01"]) == ["R01-D02"]
    assert narrowed("R01", ["R01-D02", "R011"]) == ["R01-D02"]


def test_area_prefix_field_worker_cannot_create_in_a_sibling_area(api) -> None:
    worker = api.auth("field_worker", areas=("R01",))
    refused = api.post("/api/v1/households", json=household("R010-EVIL"), headers=worker)
    assert refused.status_code == 403, refused.get_json()
    ok = api.post("/api/v1/households", json=household("R01-D02-L003"), headers=worker)
    assert ok.status_code == 201, ok.get_json()


def test_area_prefix_field_worker_cannot_read_a_sibling_area(api) -> None:
    staff = api.auth("registry_staff")
    inside = api.post("/api/v1/households", json=household("R01-D01"), headers=staff).get_json()
    sibling = api.post(
        "/api/v1/households", json=household("R011-D01", given="Baraka"), headers=staff
    ).get_json()
    worker = api.auth("field_worker", areas=("R01",))
    assert api.get(f"/api/v1/households/{sibling['id']}", headers=worker).status_code in (403, 404)
    assert api.get(f"/api/v1/households/{inside['id']}", headers=worker).status_code == 200
    listed = api.get("/api/v1/households", headers=worker).get_json()
    assert [h["id"] for h in listed["items"]] == [inside["id"]] and listed["total"] == 1


def test_area_prefix_sql_condition_on_both_backends(api) -> None:
    registry = api.runtime.registry
    for index, area in enumerate(("R01", "R01-D02", "R011-D01", "R010-EVIL", "R02", "R0")):
        registry.register_household(household(area, given=f"P{index}"), SURVEY)
    rows, total = registry.list_households(area_prefixes=["R01"], limit=50)
    assert sorted(h["admin_area_code"] for h in rows) == ["R01", "R01-D02"] and total == 2
    rows, _ = registry.list_households(area_prefixes=["R01-"], limit=50)
    assert sorted(h["admin_area_code"] for h in rows) == ["R01", "R01-D02"]
    rows, _ = registry.list_households(area_prefixes=["r01"], limit=50)
    assert rows == []  # SQLite's LIKE ignores case; the area rule does not


# --- SSRF at creation and at send time -----------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:5432/",
        "http://localhost/",
        "http://[::1]/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://10.0.0.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_ssrf_subscription_refused_at_creation_with_422(api, target: str) -> None:
    body = {
        "code": "probe",
        "event_types": ["person.*"],
        "channel": "webhook",
        "target": target,
        "purpose": "cash_transfer",
    }
    answer = api.post(
        "/api/v1/subscriptions", json=body, headers=api.auth("program", program="cash")
    )
    assert answer.status_code == 422, answer.get_json()
    problem = answer.get_json()
    text = str(problem)
    assert "$.target" in text and ("non-public" in text or "resolve" in text or "form" in text)


def test_ssrf_subscription_allowed_only_when_the_operator_lists_the_host(
    db_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        env={},
        database_url=db_url,
        data_dir=tmp_path,
        outbound={"allow_hosts": ["127.0.0.1:8105"]},
    )
    app = create_app(settings)
    try:
        client = app.test_client()
        token = issue_token(settings, subject="t", roles=["program"], program="cash")
        headers = {"Authorization": f"Bearer {token}"}
        body = {
            "code": "mis",
            "event_types": ["person.*"],
            "channel": "webhook",
            "target": "http://127.0.0.1:8105/cash",
            "purpose": "cash_transfer",
        }
        assert client.post("/api/v1/subscriptions", json=body, headers=headers).status_code == 201
        other = {**body, "code": "db", "target": "http://127.0.0.1:5432/"}
        assert client.post("/api/v1/subscriptions", json=other, headers=headers).status_code == 422
    finally:
        app.extensions["srhub_runtime"].close()


def test_ssrf_delivery_to_an_internal_target_is_refused_at_send_time(
    db_url: str, tmp_path: Path
) -> None:
    """A subscription row pointing at loopback (DNS rebinding, or one stored before the
    check) gets nothing: no request, and a log entry without status or network detail."""
    from hub.runtime import HubRuntime

    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    try:
        with receiver() as rx:
            with runtime.sessions() as session, session.begin():
                session.add(
                    Subscription(
                        code="rebound",
                        program_code="cash",
                        event_types=["person.*", "household.*"],
                        filters={},
                        channel="webhook",
                        target=rx.url,
                        purpose="cash_transfer",
                        status="active",
                        created_by="test",
                    )
                )
            from hub.subscriptions.queues import declare_queues

            declare_queues(settings, "rebound", "webhook")
            with notification_workers(settings, runtime):
                runtime.registry.register_household(household("R01-D01", "1234567897"), SURVEY)

                def logged() -> list[DeliveryAttempt]:
                    with runtime.sessions() as session:
                        return list(
                            session.scalars(
                                select(DeliveryAttempt).where(
                                    DeliveryAttempt.subscription_code == "rebound"
                                )
                            )
                        )

                rows = wait_until(
                    lambda: [r for r in logged() if r.status == DEAD_LETTERED], 20, "dead letter"
                )
            assert rx.requests == []  # the internal endpoint never heard from the hub
            for row in logged():
                assert row.http_status is None
                assert row.error is not None and REFUSED_ERROR in row.error
                assert "network" not in row.error.lower()
            assert rows
    finally:
        runtime.close()


# --- enumeration ---------------------------------------------------------------------------------


def test_enumeration_foreign_subscription_answers_like_an_unknown_one(db_url, tmp_path) -> None:
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, outbound={"allow_hosts": ["127.0.0.1"]}
    )
    app = create_app(settings)
    try:
        client = app.test_client()

        def program(code: str) -> dict[str, str]:
            token = issue_token(settings, subject=code, roles=["program"], program=code)
            return {"Authorization": f"Bearer {token}"}

        body = {
            "code": "cash-hook",
            "event_types": ["person.*"],
            "channel": "webhook",
            "target": "http://127.0.0.1:9/hook",
            "purpose": "cash_transfer",
        }
        assert (
            client.post("/api/v1/subscriptions", json=body, headers=program("cash")).status_code
            == 201
        )
        spy = program("nutrition")
        for method, suffix in (("get", ""), ("get", "/deliveries"), ("delete", "")):
            foreign = getattr(client, method)(
                f"/api/v1/subscriptions/cash-hook{suffix}", headers=spy
            )
            unknown = getattr(client, method)(f"/api/v1/subscriptions/no-such{suffix}", headers=spy)
            assert foreign.status_code == unknown.status_code == 404
            assert foreign.get_json()["title"] == unknown.get_json()["title"]
        paused = client.patch(
            "/api/v1/subscriptions/cash-hook", json={"status": "paused"}, headers=spy
        )
        assert paused.status_code == 404
        assert (
            client.get("/api/v1/subscriptions/cash-hook", headers=program("cash")).status_code
            == 200
        )
    finally:
        app.extensions["srhub_runtime"].close()


def test_enumeration_member_conflict_does_not_name_the_other_person(api) -> None:
    staff = api.auth("registry_staff")
    elsewhere = api.post(
        "/api/v1/households", json=household("R02-D01", "1234567897"), headers=staff
    ).get_json()
    other_id = elsewhere["members"][0]["id"]
    worker = api.auth("field_worker", areas=("R01",))
    mine = api.post("/api/v1/households", json=household("R01-D01"), headers=worker).get_json()
    member = {
        "given_name": "Juma",
        "family_name": "Otieno",
        "sex": "male",
        "birth_date": "1990-01-01",
        "relationship": "spouse",
        "identifiers": [{"system": "national_id", "value": "1234567897"}],
    }
    answer = api.post(
        f"/api/v1/households/{mine['id']}/members",
        json=member,
        headers={**worker, "If-Match": '"1"'},
    )
    assert answer.status_code == 409, answer.get_json()
    text = answer.get_data(as_text=True)
    assert other_id not in text and elsewhere["id"] not in text
    assert str(uuid.UUID(other_id)).replace("-", "") not in text
    assert "1234567897" not in text


def test_enumeration_public_readiness_shows_only_up_or_down(api) -> None:
    public = api.get("/health/ready")
    assert public.status_code == 200
    assert public.get_json() == {"status": "up"}
    for headers in (api.auth("program", program="cash"), api.auth("field_worker", areas=("R01",))):
        assert api.get("/health/ready", headers=headers).get_json() == {"status": "up"}
    staff = api.get("/health/ready", headers=api.auth("registry_staff")).get_json()
    assert staff["checks"]["database"]["ok"] is True and "broker" in staff["checks"]
    bad = api.get("/health/ready", headers={"Authorization": "Bearer forged"})
    assert bad.status_code == 200 and bad.get_json() == {"status": "up"}
