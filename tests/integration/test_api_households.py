"""The HTTP API over real databases: access control, problem+json errors, optimistic locking,
area scoping for field workers, and no 500 on malformed input."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from werkzeug.serving import make_server

from hub.api import create_app
from hub.auth.flask_auth import undeclared_endpoints
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.service import Source

PROBLEM = "application/problem+json"


def payload(area: str = "R01-D02-L003", nid: str = "1234567897") -> dict:
    return {
        "admin_area_code": area,
        "address": "12 Mango Lane",
        "members": [
            {
                "given_name": "Amina",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "1985-04-02",
                "relationship": "head",
                "identifiers": [{"system": "national_id", "value": nid}],
            },
            {
                "given_name": "Cleo",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "2012-09-09",
                "relationship": "child",
            },
        ],
    }


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, max_request_bytes=64_000
    )
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = (), program: str | None = None) -> dict:
        token = issue_token(
            settings, subject="tester", roles=list(roles), admin_areas=areas, program=program
        )
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.app_under_test = app  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def test_every_route_declares_who_may_call_it(api):
    assert undeclared_endpoints(api.app_under_test) == []


def test_health_is_open_and_data_is_not(api):
    assert api.get("/health").status_code == 200
    response = api.get("/api/v1/households")
    assert response.status_code == 401
    assert response.mimetype == PROBLEM and response.json["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = api.get("/api/v1/households", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    wrong_role = api.get("/api/v1/households", headers=api.auth("program", program="CCT"))
    assert wrong_role.status_code == 403 and wrong_role.mimetype == PROBLEM


def test_register_read_and_find(api):
    staff = api.auth("registry_staff")
    created = api.post("/api/v1/households", json=payload(), headers=staff)
    assert created.status_code == 201, created.json
    record = created.json
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"].endswith(f"/api/v1/households/{record['id']}")
    fetched = api.get(f"/api/v1/households/{record['id']}", headers=staff)
    assert fetched.status_code == 200 and fetched.json == record
    head = record["members"][0]
    person = api.get(f"/api/v1/persons/{head['id']}", headers=staff)
    assert person.json["identifiers"][0]["value"] == "1234567897"
    found = api.get(
        "/api/v1/persons", query_string={"identifier": "national_id|1234567897"}, headers=staff
    )
    assert [p["id"] for p in found.json["items"]] == [head["id"]]
    none = api.get(
        "/api/v1/persons", query_string={"identifier": "national_id|0000000000"}, headers=staff
    )
    assert none.json == {"items": [], "total": 0}
    listed = api.get("/api/v1/households", headers=staff)
    assert listed.json["total"] == 1 and listed.json["items"][0]["id"] == record["id"]


def test_auditor_reads_with_identifiers_masked(api):
    created = api.post("/api/v1/households", json=payload(), headers=api.auth("admin")).json
    audited = api.get(f"/api/v1/households/{created['id']}", headers=api.auth("auditor"))
    assert audited.status_code == 200
    assert audited.json["members"][0]["identifiers"][0]["value"] == "********97"
    denied = api.post("/api/v1/households", json=payload("R09"), headers=api.auth("auditor"))
    assert denied.status_code == 403


def test_invalid_record_gets_422_with_every_violation(api):
    bad = payload()
    bad["members"][0]["birth_date"] = "02/04/1985"
    bad["members"][1]["sex"] = "F"
    bad["colour"] = "blue"
    response = api.post("/api/v1/households", json=bad, headers=api.auth("registry_staff"))
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert {(e["path"], e["rule"]) for e in response.json["errors"]} == {
        ("$", "additionalProperties"),
        ("$.members[0].birth_date", "format"),
        ("$.members[1].sex", "enum"),
    }
    assert "1234567897" not in response.get_data(as_text=True)


def test_a_household_whose_only_member_died_reads_with_no_current_members(api):
    """The answer keeps the documented schema (no ``minItems`` on members: they are the
    current ones), and registering without members is still refused."""
    staff = api.auth("registry_staff")
    alone = payload()
    alone["members"] = alone["members"][:1]
    created = api.post("/api/v1/households", json=alone, headers=staff).json
    head = created["members"][0]["id"]
    registry = api.app_under_test.extensions["srhub_runtime"].registry
    registry.record_death(head, "2026-01-03", Source("civil_registry", "DRN-1"))
    read = api.get(f"/api/v1/households/{created['id']}", headers=staff)
    assert read.status_code == 200
    assert read.json["members"] == [] and read.json["status"] == "needs_review"
    document = api.get("/openapi.json").json
    schemas = Registry().with_resource("urn:openapi", Resource.opaque(document))
    household = {"$ref": "urn:openapi#/components/schemas/Household"}
    assert list(Draft202012Validator(household, registry=schemas).iter_errors(read.json)) == []
    person = api.get(f"/api/v1/persons/{head}", headers=staff).json
    assert [(m["end_date"], m["end_reason"]) for m in person["memberships"]] == [
        ("2026-01-03", "death")
    ]
    empty = api.post("/api/v1/households", json={**alone, "members": []}, headers=staff)
    assert empty.status_code == 422 and empty.mimetype == PROBLEM
    assert [(e["path"], e["rule"]) for e in empty.json["errors"]] == [("$.members", "minItems")]


def test_malformed_bodies_get_400_or_413(api):
    staff = api.auth("registry_staff")
    not_json = api.post(
        "/api/v1/households", data="{oops", headers=staff, content_type="application/json"
    )
    assert not_json.status_code == 400 and not_json.mimetype == PROBLEM
    array = api.post("/api/v1/households", json=[1, 2], headers=staff)
    assert array.status_code == 400
    form = api.post("/api/v1/households", data="a=b", headers=staff)
    assert form.status_code == 400
    deep = api.post(
        "/api/v1/households", data="[" * 50_000, headers=staff, content_type="application/json"
    )
    assert deep.status_code == 400 and deep.mimetype == PROBLEM
    huge = api.post(
        "/api/v1/households", data="x" * 70_000, headers=staff, content_type="application/json"
    )
    assert huge.status_code == 413 and huge.mimetype == PROBLEM


def test_unknown_ids_are_404(api):
    staff = api.auth("registry_staff")
    missing = api.get("/api/v1/households/00000000-0000-4000-8000-000000000000", headers=staff)
    assert missing.status_code == 404 and missing.mimetype == PROBLEM
    assert api.get("/api/v1/households/not-a-uuid", headers=staff).status_code == 404
    assert (
        api.get("/api/v1/persons/00000000-0000-4000-8000-000000000000", headers=staff).status_code
        == 404
    )


def test_updates_need_the_version_and_stale_ones_conflict(api):
    staff = api.auth("registry_staff")
    record = api.post("/api/v1/households", json=payload(), headers=staff).json
    url = f"/api/v1/households/{record['id']}"
    assert api.patch(url, json={"address": "New"}, headers=staff).status_code == 428
    ok = api.patch(url, json={"address": "1 New Road"}, headers={**staff, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json["version"] == 2 and ok.headers["ETag"] == '"2"'
    stale = api.patch(url, json={"address": "2 Old Road", "version": 1}, headers=staff)
    assert stale.status_code == 409 and stale.json["current_version"] == 2
    assert api.get(url, headers=staff).json["address"] == "1 New Road"


def test_field_worker_is_held_to_their_areas(api):
    admin = api.auth("admin")
    mine = api.post(
        "/api/v1/households", json=payload("R01-D02-L003", "1111111111"), headers=admin
    ).json
    theirs = api.post(
        "/api/v1/households", json=payload("R02-D01-L001", "2222222222"), headers=admin
    ).json
    worker = api.auth("field_worker", areas=("R01-D02",))
    listed = api.get("/api/v1/households", headers=worker).json
    assert [h["id"] for h in listed["items"]] == [mine["id"]]
    assert api.get(f"/api/v1/households/{theirs['id']}", headers=worker).status_code == 403
    assert api.get(f"/api/v1/households/{mine['id']}", headers=worker).status_code == 200
    other_head = theirs["members"][0]["id"]
    assert api.get(f"/api/v1/persons/{other_head}", headers=worker).status_code == 403
    outside = api.post(
        "/api/v1/households", json=payload("R02-D01-L002", "3333333333"), headers=worker
    )
    assert outside.status_code == 403
    inside = api.post(
        "/api/v1/households", json=payload("R01-D02-L009", "4444444444"), headers=worker
    )
    assert inside.status_code == 201
    provenance = api.get(
        f"/api/v1/persons/{inside.json['members'][0]['id']}/provenance", headers=admin
    ).json["items"]
    assert {p["source_system"] for p in provenance} == {"field_survey"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_random_malformed_input_over_http_never_gets_a_500(api):
    app = api.app_under_test
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    headers = {**api.auth("registry_staff"), "Content-Type": "application/json"}
    rng = random.Random(7)
    good = json.dumps(payload())
    statuses = []
    try:
        for _ in range(60):
            text = list(good)
            for _ in range(rng.randint(1, 6)):
                position = rng.randrange(len(text))
                text[position] = rng.choice(['"', "{", "]", "1", "x", ",", ":", "\\", "\u00e9"])
            response = requests.post(
                f"{base}/api/v1/households",
                data="".join(text).encode(),
                headers=headers,
                timeout=10,
            )
            statuses.append(response.status_code)
            assert response.headers["Content-Type"].startswith(("application/json", PROBLEM))
    finally:
        server.shutdown()
    assert all(status < 500 for status in statuses), statuses
    assert {400, 422} & set(statuses)
