"""The simulations API over real databases: who may run, read and list households; a run
is saved under its name and answers what the registry's two households say; bad scenarios
are refused with where and why; small cells are suppressed when the reports ask for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings

PROBLEM = "application/problem+json"
MODEL = {
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
    ],
    "intercept": 10.0,
    "weights": {"size": -1.0, "children": -2.0},
}
RULE = {"model_code": "pmt", "threshold": {"max_score": 6.0}}


def person(given: str, born: str, relationship: str) -> dict:
    return {
        "given_name": given,
        "family_name": "Otieno",
        "sex": "female",
        "birth_date": born,
        "relationship": relationship,
    }


# score 10 - 2 - 2 = 6: eligible now; score 10 - 1 = 9: not
WITH_CHILD = {
    "admin_area_code": "R01-D02",
    "members": [person("Amina", "1985-04-02", "head"), person("Cleo", "2020-09-09", "child")],
}
ALONE = {"admin_area_code": "R02-D01", "members": [person("Zawadi", "1970-01-01", "head")]}


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = ()) -> dict:
        token = issue_token(settings, subject="tester", roles=list(roles), admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    admin = auth("admin")
    ids = [
        client.post("/api/v1/households", json=body, headers=admin).json["id"]
        for body in (WITH_CHILD, ALONE)
    ]
    client.post("/api/v1/scoring/models/pmt/versions", json=MODEL, headers=admin)
    client.post("/api/v1/scoring/models/pmt/versions/1/activate", headers=admin)
    client.post("/api/v1/programs/cct/eligibility-rules", json=RULE, headers=admin)
    client.post("/api/v1/programs/cct/eligibility-rules/1/activate", headers=admin)
    client.ids = ids  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def test_staff_run_a_scenario_and_it_is_saved_with_its_budget(api):
    admin = api.auth("admin")
    schedule = {"amount": 25.0, "per": "person", "period": "month", "periods": 12}
    stored = api.post("/api/v1/programs/cct/benefit-schedules", json=schedule, headers=admin)
    assert stored.status_code == 201 and stored.json["version"] == 1
    staff = api.auth("registry_staff")
    scenario = {"name": "everyone below 9", "rules": {"cct": {"threshold": {"max_score": 9}}}}
    ran = api.post("/api/v1/simulations", json=scenario, headers=staff)
    assert ran.status_code == 201, ran.json
    assert ran.headers["Location"].endswith(f"/api/v1/simulations/{ran.json['id']}")
    (cct,) = ran.json["result"]["programs"]
    assert (cct["current"]["households"], cct["current"]["people"]) == (1, 2)
    assert (cct["simulated"]["households"], cct["simulated"]["people"]) == (2, 3)
    assert cct["gainers"] == {"households": 1, "people": 1}
    assert cct["losers"] == {"households": 0, "people": 0}
    assert cct["simulated"]["budget"]["total"] == 25.0 * 3 * 12
    assert {row["area"] for row in cct["by_area"]} == {"R01", "R02"}

    again = api.post("/api/v1/simulations", json=scenario, headers=staff)
    assert again.status_code == 409 and again.mimetype == PROBLEM

    auditor = api.auth("auditor")
    listed = api.get("/api/v1/simulations", headers=auditor)
    assert [item["name"] for item in listed.json["items"]] == ["everyone below 9"]
    read = api.get(f"/api/v1/simulations/{ran.json['id']}", headers=staff)
    assert read.status_code == 200 and read.json["result"] == ran.json["result"]
    # An auditor reads aggregates only: the small area cells are hidden, and here the totals
    # too (two households: under the reports' k), with the budget they would give away.
    audited = api.get(f"/api/v1/simulations/{ran.json['id']}", headers=auditor).json
    (audited_cct,) = audited["result"]["programs"]
    assert all(row["suppressed"] for row in audited_cct["by_area"])
    assert audited_cct["simulated"]["households"] is None
    assert audited_cct["simulated"]["budget"]["total"] is None
    compared = api.get(f"/api/v1/simulations/compare?ids={ran.json['id']}", headers=auditor)
    assert compared.json["programs"][0]["scenarios"][0]["simulated"]["households"] is None
    compared = api.get(f"/api/v1/simulations/compare?ids={ran.json['id']}", headers=staff)
    assert compared.json["programs"][0]["scenarios"][0]["simulated"]["households"] == 2


def test_households_behind_the_figures_are_for_staff_only(api):
    staff = api.auth("registry_staff")
    scenario = {"name": "strict", "rules": {"cct": {"threshold": {"max_score": 5}}}}
    ran = api.post("/api/v1/simulations", json=scenario, headers=staff).json
    url = f"/api/v1/simulations/{ran['id']}/households?program=cct&change=lose"
    listed = api.get(url, headers=staff)
    assert listed.status_code == 200
    assert [item["household_id"] for item in listed.json["items"]] == [api.ids[0]]
    assert api.get(url, headers=api.auth("auditor")).status_code == 403
    assert api.get(url, headers=api.auth("field_worker", areas=("R01",))).status_code == 403
    bad = api.get(url.replace("lose", "sideways"), headers=staff)
    assert bad.status_code == 400


def test_who_may_run_and_what_is_refused(api):
    scenario = {"name": "n", "rules": {"cct": {"threshold": {"max_score": 9}}}}
    for role in ("auditor", "partner", "supervisor", "field_worker"):
        headers = api.auth(role, areas=("R01",) if role in ("supervisor", "field_worker") else ())
        assert api.post("/api/v1/simulations", json=scenario, headers=headers).status_code == 403
    assert api.post("/api/v1/simulations", json=scenario).status_code == 401
    staff = api.auth("registry_staff")
    refused = api.post(
        "/api/v1/simulations",
        json={"name": "x", "rules": {"cct": {"extend_to": "size >= 2"}}, "area_level": 9},
        headers=staff,
    )
    assert refused.status_code == 422 and refused.json["errors"][0]["path"] == "$.area_level"
    refused = api.post(
        "/api/v1/simulations",
        json={"name": "x", "rules": {"cct": {"condition": "size / size >= 1.0"}}},
        headers=staff,
    )
    assert refused.status_code == 422
    assert "cannot be simulated" in refused.json["errors"][0]["message"]
    assert api.get("/api/v1/simulations", headers=staff).json["items"] == []  # nothing saved
    missing = api.get("/api/v1/simulations/7d6f1c4e-2f0e-4f55-9b7c-2a1b3c4d5e6f", headers=staff)
    assert missing.status_code == 404
    schedule = {"amount": 1.0, "per": "household", "periods": 1}
    assert (
        api.post("/api/v1/programs/cct/benefit-schedules", json=schedule, headers=staff)
    ).status_code == 403


def test_small_cells_are_suppressed_when_the_reports_say_so(api, monkeypatch):
    import hub.api.simulations as view

    monkeypatch.setattr(view, "_min_cell", lambda: 3)
    staff = api.auth("registry_staff")
    scenario = {"name": "s", "rules": {"cct": {"threshold": {"max_score": 9}}}}
    ran = api.post("/api/v1/simulations", json=scenario, headers=staff).json
    (cct,) = ran["result"]["programs"]
    assert all(row["suppressed"] for row in cct["by_area"])  # one or two households each
    assert all(row["simulated_households"] is None for row in cct["by_area"])
    # two households in all: a total under k is hidden like any count, and so is its budget
    assert cct["simulated"]["households"] is None
    assert cct["suppression"]["min_cell"] == 3 and cct["suppression"]["suppressed_cells"] > 0
    audited = api.get(f"/api/v1/simulations/{ran['id']}", headers=api.auth("auditor")).json
    assert audited["result"]["programs"][0]["simulated"]["households"] is None


def test_a_policymaker_simulates_and_sees_aggregates_only(api):
    policymaker = api.auth("policymaker")
    scenario = {"name": "strict", "rules": {"cct": {"threshold": {"max_score": 5}}}}
    ran = api.post("/api/v1/simulations", json=scenario, headers=policymaker)
    assert ran.status_code == 201, ran.json
    # The fixture's areas hold one or two households each: under the reports' k, hidden.
    shown = api.get(f"/api/v1/simulations/{ran.json['id']}", headers=policymaker).json
    (cct,) = shown["result"]["programs"]
    assert cct["by_area"] and all(row["suppressed"] for row in cct["by_area"])
    # Registry staff read the same saved simulation unsuppressed.
    staff_view = api.get(f"/api/v1/simulations/{ran.json['id']}", headers=api.auth("admin")).json
    (staff_cct,) = staff_view["result"]["programs"]
    assert not any(row.get("suppressed") for row in staff_cct["by_area"])
    url = f"/api/v1/simulations/{ran.json['id']}/households?program=cct&change=lose"
    assert api.get(url, headers=policymaker).status_code == 403
