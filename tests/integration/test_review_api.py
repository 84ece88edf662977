"""The review queue over HTTP: supervisors decide in their areas only (403 with the reason
otherwise), the transition table is enforced (409), field workers read their own items'
reasons, every decision is in the history, and visits are kept per household."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.intake.contract import ReviewRequest
from hub.review.service import ReviewQueue
from hub.settings import load_settings
from registry_core.service import Source

PROBLEM = "application/problem+json"
AREA_A, AREA_B = "R01-D01", "R02-D05"


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    runtime = app.extensions["srhub_runtime"]
    runtime.registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = (), sub: str = "tester") -> dict[str, str]:
        token = issue_token(settings, subject=sub, roles=list(roles), admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.runtime = runtime  # type: ignore[attr-defined]
    yield client
    runtime.close()


def household(api: Any, area: str) -> str:
    record = api.runtime.registry.register_household(
        {
            "admin_area_code": area + "-L001",
            "members": [
                {
                    "given_name": "Amina",
                    "family_name": "Otieno",
                    "sex": "female",
                    "birth_date": "1985-04-02",
                    "relationship": "head",
                }
            ],
        },
        Source("field_survey"),
    ).record
    return str(record["id"])


def submit(api: Any, household_id: str, area: str, by: str = "enumerator-1", **extra: Any) -> str:
    instance = extra.pop("instance_id", f"uuid:{uuid.uuid4()}")
    with api.runtime.sessions() as session, session.begin():
        ReviewQueue().submitted(
            session,
            ReviewRequest(
                instance_id=instance,
                form_id="household_survey",
                form_version="2026031501",
                submitted_by=by,
                admin_area_code=area + "-L001",
                household_id=household_id,
                summary="household of 1, head Amina",
                **extra,
            ),
        )
    return instance


def only_item(api: Any, headers: dict[str, str], **query: str) -> dict[str, Any]:
    response = api.get("/api/v1/review/items", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    items = response.get_json()["items"]
    assert len(items) == 1, items
    return items[0]


def test_a_supervisor_decides_only_in_their_area(api):
    hid_b = household(api, AREA_B)
    submit(api, hid_b, AREA_B)
    staff = api.auth("registry_staff")
    item = only_item(api, staff)
    supervisor_a = api.auth("supervisor", areas=(AREA_A,), sub="sup-a")

    refused = api.post(
        f"/api/v1/review/items/{item['id']}/decision",
        json={"decision": "verified"},
        headers=supervisor_a,
    )
    assert refused.status_code == 403
    assert refused.mimetype == PROBLEM
    detail = refused.get_json()["detail"]
    assert f"area {AREA_B}-L001" in detail and AREA_A in detail
    # ... and does not see it in the queue, nor open it.
    listed = api.get("/api/v1/review/items", headers=supervisor_a).get_json()
    assert listed["total"] == 0
    assert api.get(f"/api/v1/review/items/{item['id']}", headers=supervisor_a).status_code == 403

    supervisor_b = api.auth("supervisor", areas=(AREA_B,), sub="sup-b")
    done = api.post(
        f"/api/v1/review/items/{item['id']}/decision",
        json={"decision": "verified"},
        headers=supervisor_b,
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["state"] == "verified"
    assert done.get_json()["decided_by"] == "sup-b"


def test_return_needs_reasons_the_field_worker_then_reads(api):
    hid = household(api, AREA_A)
    submit(api, hid, AREA_A, by="amina")
    supervisor = api.auth("supervisor", areas=(AREA_A,), sub="sup-a")
    item = only_item(api, supervisor, state="submitted")
    url = f"/api/v1/review/items/{item['id']}/decision"

    no_reason = api.post(url, json={"decision": "returned"}, headers=supervisor)
    assert no_reason.status_code == 400 and no_reason.mimetype == PROBLEM
    assert "reasons" in no_reason.get_json()["detail"]
    unknown = api.post(url, json={"decision": "approved"}, headers=supervisor)
    assert unknown.status_code == 400

    returned = api.post(
        url, json={"decision": "returned", "reasons": ["photo of ID missing"]}, headers=supervisor
    )
    assert returned.status_code == 200
    assert returned.headers["ETag"] == '"2"'

    # The field worker sees their own item and why it came back; another sees nothing.
    mine = only_item(api, api.auth("field_worker", areas=(AREA_A,), sub="amina"))
    assert mine["state"] == "returned" and mine["reasons"] == ["photo of ID missing"]
    other = api.auth("field_worker", areas=(AREA_A,), sub="someone-else")
    assert api.get("/api/v1/review/items", headers=other).get_json()["total"] == 0
    assert api.get(f"/api/v1/review/items/{item['id']}", headers=other).status_code == 403
    # Field workers do not decide.
    assert (
        api.post(
            url,
            json={"decision": "verified"},
            headers=api.auth("field_worker", areas=(AREA_A,), sub="amina"),
        ).status_code
        == 403
    )

    # From returned, verifying is not in the table: 409 naming what is allowed.
    refused = api.post(url, json={"decision": "verified"}, headers=supervisor)
    assert refused.status_code == 409 and refused.mimetype == PROBLEM
    assert refused.get_json()["allowed_decisions"] == ["rejected"]

    # The field worker's next submission for the household brings the item back.
    second = submit(api, hid, AREA_A, by="amina")
    again = only_item(api, supervisor)
    assert again["id"] == item["id"] and again["state"] == "submitted"
    assert again["instance_id"] == second

    # A stale version is refused; the current one decides.
    stale = api.post(url, json={"decision": "verified", "version": 1}, headers=supervisor)
    assert stale.status_code == 409 and stale.get_json()["current_version"] == 3
    verified = api.post(
        url, json={"decision": "verified"}, headers={**supervisor, "If-Match": '"3"'}
    )
    assert verified.status_code == 200

    history = api.get(f"/api/v1/review/items/{item['id']}", headers=supervisor).get_json()
    steps = [(h["from"], h["to"], h["actor"], h["via"]) for h in history["history"]]
    assert steps == [
        (None, "submitted", "amina", "submission"),
        ("submitted", "returned", "sup-a", "api"),
        ("returned", "submitted", "amina", "submission"),
        ("submitted", "verified", "sup-a", "api"),
    ]
    assert history["history"][1]["reasons"] == ["photo of ID missing"]
    assert len(history["submissions"]) == 2

    # Final: nothing more, and a later submission opens a new item.
    final = api.post(url, json={"decision": "rejected", "reasons": ["x"]}, headers=supervisor)
    assert final.status_code == 409 and "final" in final.get_json()["detail"]
    submit(api, hid, AREA_A, by="amina")
    assert api.get("/api/v1/review/items", headers=supervisor).get_json()["total"] == 2


def test_submitted_is_idempotent_on_the_instance_id_and_filters_work(api):
    hid_a, hid_b = household(api, AREA_A), household(api, AREA_B)
    instance = submit(api, hid_a, AREA_A, by="amina")
    submit(api, hid_a, AREA_A, by="amina", instance_id=instance)
    submit(api, hid_b, AREA_B, by="baraka", conflict=True, notes=("household changed since",))
    staff = api.auth("registry_staff")
    page = api.get("/api/v1/review/items", headers=staff).get_json()
    assert page["total"] == 2
    assert only_item(api, staff, submitter="baraka")["conflict"] is True
    assert only_item(api, staff, area=AREA_A)["submitted_by"] == "amina"
    assert api.get("/api/v1/review/items?form=other", headers=staff).get_json()["total"] == 0
    assert api.get("/api/v1/review/items?state=bogus", headers=staff).status_code == 400
    auditor = api.auth("auditor")
    assert api.get("/api/v1/review/items", headers=auditor).get_json()["total"] == 2
    item = only_item(api, staff, area=AREA_A)
    assert (
        api.post(
            f"/api/v1/review/items/{item['id']}/decision",
            json={"decision": "verified"},
            headers=auditor,
        ).status_code
        == 403
    )
    assert api.get(f"/api/v1/review/items/{uuid.uuid4()}", headers=staff).status_code == 404


def test_visits_are_kept_per_household_within_the_callers_areas(api):
    hid = household(api, AREA_A)
    worker = api.auth("field_worker", areas=(AREA_A,), sub="amina")
    url = f"/api/v1/households/{hid}/visits"
    first = api.post(
        url,
        json={
            "visited_at": "2026-03-01T09:30:00Z",
            "outcome": "not_home",
            "location": {"lat": -1.28, "lon": 36.82, "accuracy_m": 12.5},
        },
        headers=worker,
    )
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["visited_by"] == "amina"
    body = {
        "visited_at": "2026-03-02T10:00:00+03:00",
        "outcome": "completed",
        "instance_id": "uuid:abc",
    }
    assert api.post(url, json=body, headers=worker).status_code == 201
    assert api.post(url, json=body, headers=worker).status_code == 201  # kept once
    other = api.post(
        url, json={"visited_at": "2026-03-02T10:00:00Z", "outcome": "other"}, headers=worker
    )
    assert other.status_code == 400 and "note" in other.get_json()["detail"]
    naive = api.post(
        url, json={"visited_at": "2026-03-02T10:00:00", "outcome": "moved"}, headers=worker
    )
    assert naive.status_code == 400
    impostor = api.post(url, json={**body, "visited_by": "someone"}, headers=worker)
    assert impostor.status_code == 403

    listed = api.get(url, headers=api.auth("supervisor", areas=(AREA_A,))).get_json()
    assert listed["total"] == 2
    assert [v["outcome"] for v in listed["items"]] == ["completed", "not_home"]
    assert listed["items"][1]["location"] == {"lat": -1.28, "lon": 36.82, "accuracy_m": 12.5}

    outside = api.auth("supervisor", areas=(AREA_B,))
    assert api.get(url, headers=outside).status_code == 403
    assert api.post(url, json=body, headers=outside).status_code == 403
    assert api.get(f"/api/v1/households/{uuid.uuid4()}/visits", headers=outside).status_code == 404
