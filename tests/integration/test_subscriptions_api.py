"""``/api/v1/subscriptions`` and ``/api/v1/events`` over real databases: CRUD, validation with
problem+json, ownership (a program sees only its own), 401/403, the secret shown once and
stored sealed, and replay that applies consent."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from hub.subscriptions.tables import Subscription
from registry_core.service import Source

PROBLEM = "application/problem+json"


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    # Targets on loopback (never called here): allowed explicitly, as an operator would.
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, outbound={"allow_hosts": ["127.0.0.1"]}
    )
    app = create_app(settings)
    runtime = app.extensions["srhub_runtime"]
    runtime.registry.ensure_identifier_systems()

    def auth(*roles: str, program: str | None = None) -> dict:
        token = issue_token(settings, subject="tester", roles=list(roles), program=program)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.runtime = runtime  # type: ignore[attr-defined]
    yield client
    runtime.close()


def webhook(code: str = "cash-deaths", **extra) -> dict:
    body = {
        "code": code,
        "event_types": ["person.died", "household.*"],
        "filters": {"admin_areas": ["R01"]},
        "channel": "webhook",
        "target": "http://127.0.0.1:9/hook",
        "purpose": "cash_transfer",
    }
    body.update(extra)
    return body


def test_program_creates_lists_pauses_and_deletes_its_subscription(api):
    cash = api.auth("program", program="cash")
    created = api.post("/api/v1/subscriptions", json=webhook(), headers=cash)
    assert created.status_code == 201, created.get_json()
    doc = created.get_json()
    assert doc["program_code"] == "cash"
    assert doc["queue"] == "sr.deliver.cash-deaths"
    assert doc["status"] == "active" and doc["signed"] is True
    secret = doc["secret"]
    assert len(secret) >= 32
    assert created.headers["Location"].endswith("/cash-deaths")

    # The secret is never shown again and is stored sealed, not in clear.
    again = api.get("/api/v1/subscriptions/cash-deaths", headers=cash).get_json()
    assert "secret" not in again
    with api.runtime.sessions() as session:
        row = session.scalar(select(Subscription).where(Subscription.code == "cash-deaths"))
        assert secret.encode() not in row.secret_sealed
        assert (
            api.runtime.cipher.unseal("subscription-secret", row.secret_sealed) == secret.encode()
        )

    listed = api.get("/api/v1/subscriptions", headers=cash).get_json()
    assert [s["code"] for s in listed["items"]] == ["cash-deaths"]

    paused = api.patch("/api/v1/subscriptions/cash-deaths", json={"status": "paused"}, headers=cash)
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    bad = api.patch("/api/v1/subscriptions/cash-deaths", json={"status": "gone"}, headers=cash)
    assert bad.status_code == 400 and bad.mimetype == PROBLEM

    assert api.delete("/api/v1/subscriptions/cash-deaths", headers=cash).status_code == 204
    gone = api.get("/api/v1/subscriptions/cash-deaths", headers=cash)
    assert gone.status_code == 404 and gone.mimetype == PROBLEM


def test_a_program_cannot_see_or_change_another_programs_subscriptions(api):
    cash = api.auth("program", program="cash")
    food = api.auth("program", program="food")
    assert api.post("/api/v1/subscriptions", json=webhook(), headers=cash).status_code == 201
    assert api.get("/api/v1/subscriptions", headers=food).get_json()["items"] == []
    # Another program's subscription answers as an unknown one (404, not 403): no enumeration.
    for method in ("get", "delete"):
        response = getattr(api, method)("/api/v1/subscriptions/cash-deaths", headers=food)
        assert response.status_code == 404, method
        assert response.mimetype == PROBLEM
    patched = api.patch(
        "/api/v1/subscriptions/cash-deaths", json={"status": "paused"}, headers=food
    )
    assert patched.status_code == 404
    # ... nor create one in its name.
    stolen = api.post(
        "/api/v1/subscriptions", json=webhook("steal", program_code="cash"), headers=food
    )
    assert stolen.status_code == 403
    # Admins see all; unauthenticated callers and other roles get 401 / 403.
    admin = api.get("/api/v1/subscriptions", headers=api.auth("admin")).get_json()
    assert [s["code"] for s in admin["items"]] == ["cash-deaths"]
    assert api.get("/api/v1/subscriptions").status_code == 401
    staff = api.get("/api/v1/subscriptions", headers=api.auth("registry_staff"))
    assert staff.status_code == 403


BAD_SUBSCRIPTIONS = [
    ({"event_types": []}, "$.event_types"),
    ({"event_types": ["person.married"]}, "$.event_types[0]"),
    ({"channel": "carrier-pigeon"}, "$.channel"),
    ({"target": "ftp://example.org/x"}, "$.target"),
    ({"code": "Bad Code!"}, "$.code"),
    ({"filters": {"admin_areas": ["r01 lower"]}}, "$.filters.admin_areas[0]"),
    ({"secret": "short"}, "$.secret"),
    ({"channel": "amqp", "target": None}, "$.channel"),  # the embedded broker has no AMQP
    ({"surprise": 1}, "$"),
]


def test_bad_subscriptions_are_refused_with_the_reason(api):
    cash = api.auth("program", program="cash")
    for change, path in BAD_SUBSCRIPTIONS:
        body = {k: v for k, v in {**webhook(), **change}.items() if v is not None}
        response = api.post("/api/v1/subscriptions", json=body, headers=cash)
        assert response.status_code == 422, (change, response.get_json())
        assert response.mimetype == PROBLEM
        paths = [e["path"] for e in response.get_json()["errors"]]
        assert path in paths, (change, paths)
    not_json = api.post("/api/v1/subscriptions", data="code=x", headers=cash)
    assert not_json.status_code == 400 and not_json.mimetype == PROBLEM
    assert api.get("/api/v1/subscriptions", headers=cash).get_json()["items"] == []


def test_duplicate_code_conflicts_and_admin_must_name_the_program(api):
    cash = api.auth("program", program="cash")
    assert api.post("/api/v1/subscriptions", json=webhook(), headers=cash).status_code == 201
    assert api.post("/api/v1/subscriptions", json=webhook(), headers=cash).status_code == 409
    admin = api.auth("admin")
    nameless = api.post("/api/v1/subscriptions", json=webhook("other"), headers=admin)
    assert nameless.status_code == 422
    named = api.post(
        "/api/v1/subscriptions", json=webhook("other", program_code="food"), headers=admin
    )
    assert named.status_code == 201 and named.get_json()["program_code"] == "food"


def _register(registry, area: str, nid: str) -> dict:
    result = registry.register_household(
        {
            "admin_area_code": area,
            "members": [
                {
                    "given_name": "Amina",
                    "family_name": "Otieno",
                    "sex": "female",
                    "birth_date": "1985-04-02",
                    "relationship": "head",
                    "identifiers": [{"system": "national_id", "value": nid}],
                }
            ],
        },
        Source("registry_staff"),
    )
    return result.record


def test_event_replay_shows_a_program_only_its_matching_events_with_consent_applied(api):
    registry = api.runtime.registry
    cash = api.auth("program", program="cash")
    assert api.post("/api/v1/subscriptions", json=webhook(), headers=cash).status_code == 201
    inside = _register(registry, "R01-D02-L003", "1234567897")
    outside = _register(registry, "R09-D01-L001", "2234567891")
    consenting_id = inside["members"][0]["id"]
    registry.record_death(consenting_id, "2025-01-02", Source("civil_registry"))
    registry.record_death(outside["members"][0]["id"], "2025-01-03", Source("civil_registry"))

    page = api.get("/api/v1/events?after=0&limit=50", headers=cash).get_json()
    died = [e for e in page["events"] if e["type"].endswith("person.died")]
    assert len(died) == 1  # the R09 death is outside the area filter
    assert died[0]["srpersonal"] is False
    assert "person_id" not in died[0]["data"] and "Amina" not in str(died[0])
    assert "1234567897" not in str(page)

    registry.grant_consent(
        "cash", "cash_transfer", "paper", Source("registry_staff"), person_id=consenting_id
    )
    page = api.get("/api/v1/events?after=0&limit=50", headers=cash).get_json()
    died = [e for e in page["events"] if e["type"].endswith("person.died")]
    assert died[0]["srpersonal"] is True
    assert died[0]["data"]["person_id"] == consenting_id
    assert died[0]["data"]["death_date"] == "2025-01-02"
    ids = {i["system"]: i["value"] for i in died[0]["data"]["person"]["identifiers"]}
    assert ids["national_id"] == "1234567897"

    # Another program subscribed to nothing sees nothing; paging moves on regardless.
    food = api.get("/api/v1/events?after=0", headers=api.auth("program", program="food"))
    assert food.get_json()["events"] == []
    assert food.get_json()["next_after"] >= page["next_after"]
    admin = api.get("/api/v1/events?after=0&limit=500", headers=api.auth("admin")).get_json()
    assert len(admin["events"]) > len(page["events"])
    assert api.get("/api/v1/events?after=-1", headers=cash).status_code == 400
