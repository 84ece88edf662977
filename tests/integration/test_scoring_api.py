"""The scoring API over real databases: admins upload, activate and re-score; bad expressions
are refused at upload with where and why; who may read; the household read and DCI search
show the current score of the active model."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.queries import HouseholdQueries
from registry_core.service import Source
from standards.dci.query import parse_query

PROBLEM = "application/problem+json"
MODEL = {
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
    ],
    "intercept": 10.0,
    "weights": {"size": -1.0, "children": -2.0},
}
RULE = {"model_code": "pmt", "threshold": {"max_score": 8.0}, "condition": "children >= 1.0"}
HOUSEHOLD = {
    "admin_area_code": "R01-D02",
    "members": [
        {
            "given_name": "Amina",
            "family_name": "Otieno",
            "sex": "female",
            "birth_date": "1985-04-02",
            "relationship": "head",
        },
        {
            "given_name": "Cleo",
            "family_name": "Otieno",
            "sex": "female",
            "birth_date": "2020-09-09",
            "relationship": "child",
        },
    ],
}


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    # the subscriptions below point at a loopback receiver, which only an allow-list admits
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, outbound={"allow_hosts": ["127.0.0.1"]}
    )
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()

    def auth(*roles: str, program: str | None = None, areas: tuple[str, ...] = ()) -> dict:
        token = issue_token(
            settings, subject="tester", roles=list(roles), program=program, admin_areas=areas
        )
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def test_admin_uploads_activates_and_the_registry_is_rescored(api):
    admin = api.auth("admin")
    household = api.post("/api/v1/households", json=HOUSEHOLD, headers=admin).json
    created = api.post("/api/v1/scoring/models/pmt/versions", json=MODEL, headers=admin)
    assert created.status_code == 201, created.json
    assert created.json["version"] == 1 and created.json["status"] == "draft"
    assert created.headers["Location"].endswith("/api/v1/scoring/models/pmt/versions/1")
    activated = api.post("/api/v1/scoring/models/pmt/versions/1/activate", headers=admin)
    assert activated.status_code == 200, activated.json
    assert activated.json["status"] == "active"
    assert activated.json["rescore"]["scored"] == {"pmt": 1}
    rule = api.post("/api/v1/programs/cct/eligibility-rules", json=RULE, headers=admin)
    assert rule.status_code == 201, rule.json
    decided = api.post("/api/v1/programs/cct/eligibility-rules/1/activate", headers=admin)
    assert decided.json["decided"]["changed"] == 1

    staff = api.get(f"/api/v1/households/{household['id']}", headers=api.auth("registry_staff"))
    policy = staff.json["policy"]
    assert policy["scores"][0]["score"] == pytest.approx(10.0 - 2.0 - 2.0)
    assert policy["scores"][0]["contributions"] == {"size": -2.0, "children": -2.0}
    assert policy["eligibility"][0]["eligible"] is True
    assert policy["eligibility"][0]["rule_version"] == 1
    enumerator = api.auth("field_worker", areas=("R01",))
    field = api.get(f"/api/v1/households/{household['id']}", headers=enumerator)
    assert field.status_code == 200 and "policy" not in field.json


def test_a_bad_expression_is_refused_with_its_place(api):
    admin = api.auth("admin")
    formula = {**MODEL, "formula": "size * 2 +"}
    del formula["weights"]
    refused = api.post("/api/v1/scoring/models/pmt/versions", json=formula, headers=admin)
    assert refused.status_code == 422 and refused.mimetype == PROBLEM
    (error,) = refused.json["errors"]
    assert error["path"] == "$.formula"
    assert "syntax error" in error["message"] and "line 1, column" in error["message"]
    sandboxed = {**formula, "formula": 'size + double(open("/etc/passwd"))'}
    refused = api.post("/api/v1/scoring/models/pmt/versions", json=sandboxed, headers=admin)
    assert refused.status_code == 422
    assert "'open' is not allowed" in refused.json["errors"][0]["message"]
    shape = api.post(
        "/api/v1/scoring/models/pmt/versions",
        json={"variables": [{"name": "x", "source": "planet"}], "weights": {"x": 1}},
        headers=admin,
    )
    assert shape.status_code == 422
    assert any(e["path"] == "$.variables[0].source" for e in shape.json["errors"])
    assert api.get("/api/v1/scoring/models", headers=admin).json["items"] == []


def test_only_admins_change_and_programs_read_only_their_own_rules(api):
    admin = api.auth("admin")
    api.post("/api/v1/scoring/models/pmt/versions", json=MODEL, headers=admin)
    for role in ("registry_staff", "auditor", "field_worker"):
        response = api.post(
            "/api/v1/scoring/models/pmt/versions",
            json=MODEL,
            headers=api.auth(role, areas=("R01",) if role == "field_worker" else ()),
        )
        assert response.status_code == 403, role
    assert api.get("/api/v1/scoring/models", headers=api.auth("auditor")).status_code == 200
    assert (
        api.post("/api/v1/scoring/rescore", headers=api.auth("registry_staff")).status_code == 403
    )
    api.post("/api/v1/programs/cct/eligibility-rules", json=RULE, headers=admin)
    own = api.get(
        "/api/v1/programs/cct/eligibility-rules", headers=api.auth("program", program="cct")
    )
    assert own.status_code == 200 and own.json["items"][0]["version"] == 1
    other = api.get(
        "/api/v1/programs/cct/eligibility-rules", headers=api.auth("program", program="other")
    )
    assert other.status_code == 403
    missing = api.post("/api/v1/scoring/models/pmt/versions/7/activate", headers=admin)
    assert missing.status_code == 404


def test_dci_search_answers_the_active_models_score(api):
    admin = api.auth("admin")
    runtime = api.application.extensions["srhub_runtime"]
    household = api.post("/api/v1/households", json=HOUSEHOLD, headers=admin).json
    # a score recorded from outside first, then the active model's: DCI reports the active one
    runtime.registry.record_eligibility_score(household["id"], "partner-pmt", 99.0, {})
    api.post("/api/v1/scoring/models/pmt/versions", json=MODEL, headers=admin)
    api.post("/api/v1/scoring/models/pmt/versions/1/activate", headers=admin)
    below = parse_query("expression", {"poverty_score": {"$lt": 10}})

    found, total = HouseholdQueries(runtime.sessions, runtime.cipher).search(below)
    assert total == 1
    assert found[0].poverty_score == pytest.approx(6.0)
    assert found[0].poverty_score_type == "pmt"
    named = HouseholdQueries(runtime.sessions, runtime.cipher, score_model="partner-pmt")
    assert named.search(below)[1] == 0
    (partner,), _ = named.search(parse_query("expression", {"poverty_score": {"$gt": 50}}))
    assert partner.poverty_score == pytest.approx(99.0)


def subscription(code: str) -> dict:
    return {
        "code": code,
        "event_types": ["household.*"],
        "channel": "webhook",
        "target": "http://127.0.0.1:9/hook",
        "purpose": "cash_transfer",
    }


def test_an_eligibility_change_reaches_only_its_program_under_consent(api):
    admin = api.auth("admin")
    runtime = api.application.extensions["srhub_runtime"]
    cash, food = api.auth("program", program="cash"), api.auth("program", program="food")
    for code, headers in (("cash-h", cash), ("food-h", food)):
        created = api.post("/api/v1/subscriptions", json=subscription(code), headers=headers)
        assert created.status_code == 201, created.json
    household = api.post("/api/v1/households", json=HOUSEHOLD, headers=admin).json
    api.post("/api/v1/scoring/models/pmt/versions", json=MODEL, headers=admin)
    api.post("/api/v1/scoring/models/pmt/versions/1/activate", headers=admin)
    api.post("/api/v1/programs/cash/eligibility-rules", json=RULE, headers=admin)
    api.post("/api/v1/programs/cash/eligibility-rules/1/activate", headers=admin)

    def eligibility(headers: dict) -> list[dict]:
        page = api.get("/api/v1/events?after=0&limit=200", headers=headers).json
        return [e for e in page["events"] if e["type"].endswith("household.eligibility_changed")]

    assert eligibility(food) == []  # another program's decision
    (anonymous,) = eligibility(cash)
    assert anonymous["srpersonal"] is False
    assert set(anonymous["data"]) == {"admin_area_code", "subject_ref", "personal_data"}
    runtime.registry.grant_consent(
        "cash", "cash_transfer", "paper", Source("registry_staff"), household_id=household["id"]
    )
    (personal,) = eligibility(cash)
    assert personal["srpersonal"] is True
    assert personal["data"]["household_id"] == household["id"]
    assert personal["data"]["eligible"] is True and personal["data"]["program_code"] == "cash"


def test_a_version_valid_later_is_activated_without_scoring(api):
    admin = api.auth("admin")
    api.post("/api/v1/households", json=HOUSEHOLD, headers=admin)
    later = {**MODEL, "valid_from": "2999-01-01"}
    created = api.post("/api/v1/scoring/models/pmt/versions", json=later, headers=admin)
    assert created.status_code == 201
    activated = api.post("/api/v1/scoring/models/pmt/versions/1/activate", headers=admin)
    assert activated.status_code == 200 and activated.json["status"] == "active"
    assert "not valid" in activated.json["rescore_skipped"] and "rescore" not in activated.json
    expired = {**MODEL, "valid_from": "2000-01-01", "valid_to": "2001-01-01"}
    api.post("/api/v1/scoring/models/pmt/versions", json=expired, headers=admin)
    refused = api.post("/api/v1/scoring/models/pmt/versions/2/activate", headers=admin)
    assert refused.status_code == 422 and "valid until 2001-01-01" in refused.json["detail"]
