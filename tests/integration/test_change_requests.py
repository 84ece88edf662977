"""Corrections through change requests over real databases (SQLite and PostgreSQL): proposals
by field workers and supervisors in their areas, a second person's approval that applies the
correction through the registry (source ``correction``, outranking self-declared and intake
values), the optimistic check of the value seen, rejections and withdrawals with reasons,
direct corrections by registry staff, facts, each household's history, and two reviewers
approving at the same moment."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.service import Registry, Source


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    registry = app.extensions["srhub_runtime"].registry
    registry.ensure_identifier_systems()

    def auth(*roles: str, sub: str = "tester", areas: tuple[str, ...] = ()) -> dict[str, str]:
        token = issue_token(settings, subject=sub, roles=list(roles), admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.registry = registry  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def _household(registry: Registry, area: str = "R01-D02", source: str = "self_declared") -> dict:
    return registry.register_household(
        {
            "admin_area_code": area,
            "address": "12 Mango Lane",
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
        Source(source),
    ).record


def _proposal(household: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "household_id": household["id"],
        "target": "household.address",
        "old_value": household["address"],
        "proposed_value": "14 Mango Lane",
        "reason": "The house number was typed wrong at registration",
        "evidence_reference": "utility-bill-2026-11",
        "channel": "in_person",
        "on_behalf_of": "beneficiary",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _events(registry: Registry, subject: str, routing_key: str) -> list[dict[str, Any]]:
    return [
        e.data
        for e in registry.outbox_since(0, 10_000)
        if e.routing_key == routing_key and e.subject == subject
    ]


def test_proposed_by_the_field_approved_by_another_applied_with_provenance(api: Any) -> None:
    registry: Registry = api.registry
    household = _household(registry)
    worker = api.auth("field_worker", sub="enum-7", areas=("R01",))
    proposed = api.post("/api/v1/change-requests", json=_proposal(household), headers=worker)
    assert proposed.status_code == 201, proposed.json
    request = proposed.json
    assert request["state"] == "proposed" and request["proposed_by"] == "enum-7"
    assert request["proposer_role"] == "field_worker"
    assert registry.get_household(household["id"])["address"] == "12 Mango Lane"  # not yet

    url = f"/api/v1/change-requests/{request['id']}"
    # A field worker does not approve; the proposer never approves their own (four eyes).
    assert api.post(f"{url}/approve", headers=worker).status_code == 403
    own = api.auth("supervisor", sub="enum-7", areas=("R01",))
    refused = api.post(f"{url}/approve", headers=own)
    assert refused.status_code == 403 and "another person" in refused.json["detail"]
    elsewhere = api.auth("supervisor", sub="sup-2", areas=("R02",))
    assert api.post(f"{url}/approve", headers=elsewhere).status_code == 403

    supervisor = api.auth("supervisor", sub="sup-1", areas=("R01",))
    approved = api.post(f"{url}/approve", json={"reason": "bill checked"}, headers=supervisor)
    assert approved.status_code == 200, approved.json
    done = approved.json
    assert done["state"] == "applied" and done["decided_by"] == "sup-1"
    assert done["replaced_value"] == "12 Mango Lane"
    assert [(s["action"], s["to"], s["actor"]) for s in done["history"]] == [
        ("proposed", "proposed", "enum-7"),
        ("approved", "applied", "sup-1"),
    ]
    assert registry.get_household(household["id"])["address"] == "14 Mango Lane"

    # Provenance names the correction and its request; the event to programs says so too.
    assertions = [a for a in registry.provenance("household", household["id"])]
    current = [a for a in assertions if a["field"] == "address" and a["current"]]
    assert [(a["source_system"], a["source_record_id"]) for a in current] == [
        ("correction", f"change-request:{request['id']}")
    ]
    updates = _events(registry, f"household/{household['id']}", "household.updated")
    assert updates[-1]["changed_fields"] == ["address"]
    assert updates[-1]["source"]["system"] == "correction"

    # Precedence: a later self-declared or form value adds provenance, not a new address.
    registry.update_household(household["id"], {"address": "Mango Ln"}, Source("intake"))
    registry.update_household(household["id"], {"address": "Mango"}, Source("self_declared"))
    assert registry.get_household(household["id"])["address"] == "14 Mango Lane"

    # A member's field: the event names the person and the field, from the correction.
    person_id = household["members"][0]["id"]
    body = _proposal(
        household,
        target="person.given_name",
        person_id=person_id,
        old_value="Amina",
        proposed_value="Aminah",
    )
    named = api.post("/api/v1/change-requests", json=body, headers=supervisor).json
    staff = api.auth("registry_staff", sub="officer-3")
    assert (
        api.post(f"/api/v1/change-requests/{named['id']}/approve", headers=staff).status_code == 200
    )
    assert registry.get_person(person_id)["given_name"] == "Aminah"
    last = _events(registry, f"household/{household['id']}", "household.updated")[-1]
    assert last["changed_fields"] == ["person.given_name"] and last["person_id"] == person_id
    assert last["source"] == {"system": "correction", "record_id": f"change-request:{named['id']}"}

    # Decided once: a second decision is a conflict.
    again = api.post(f"{url}/reject", json={"reason": "x"}, headers=api.auth("registry_staff"))
    assert again.status_code == 409


def test_the_value_seen_must_still_hold_and_rejections_say_why(api: Any) -> None:
    registry: Registry = api.registry
    household = _household(registry)
    person = household["members"][0]
    worker = api.auth("field_worker", sub="enum-7", areas=("R01",))
    body = _proposal(
        household,
        target="person.given_name",
        person_id=person["id"],
        old_value="Amina",
        proposed_value="Aminah",
        evidence_reference=None,
    )
    made = api.post("/api/v1/change-requests", json=body, headers=worker).json
    url = f"/api/v1/change-requests/{made['id']}"
    # Meanwhile staff change the name: the proposer's view is stale.
    registry.update_person(person["id"], {"given_name": "Ameena"}, Source("registry_staff"))
    staff = api.auth("registry_staff", sub="officer-3")
    stale = api.post(f"{url}/approve", headers=staff)
    assert stale.status_code == 409 and stale.json["current_value"] == "Ameena"
    assert api.get(url, headers=staff).json["state"] == "proposed"  # nothing written
    assert registry.get_person(person["id"])["given_name"] == "Ameena"

    assert api.post(f"{url}/reject", headers=staff).status_code == 400  # no reason
    assert api.post(f"{url}/reject", json={"reason": "  "}, headers=staff).status_code == 400
    rejected = api.post(f"{url}/reject", json={"reason": "Name changed since"}, headers=staff)
    assert rejected.status_code == 200
    assert rejected.json["state"] == "rejected"
    assert rejected.json["decision_reason"] == "Name changed since"
    # The field worker reads why, in their area.
    seen = api.get(url, headers=worker).json
    assert seen["history"][-1]["reason"] == "Name changed since"


def test_a_higher_ranked_source_is_corrected_at_its_source(api: Any) -> None:
    registry: Registry = api.registry
    household = _household(registry)
    person = household["members"][0]
    registry.update_person(person["id"], {"family_name": "Otieno"}, Source("national_id"))
    staff = api.auth("registry_staff", sub="officer-3")
    body = _proposal(
        household,
        target="person.family_name",
        person_id=person["id"],
        old_value="Otieno",
        proposed_value="Otienno",
    )
    made = api.post(
        "/api/v1/change-requests", json=body, headers=api.auth("supervisor", areas=("R01",))
    ).json
    outranked = api.post(f"/api/v1/change-requests/{made['id']}/approve", headers=staff)
    assert outranked.status_code == 409
    assert outranked.json["detail"].startswith("national_id holds person.family_name")
    assert registry.get_person(person["id"])["family_name"] == "Otieno"


def test_direct_corrections_are_small_staff_only_and_need_evidence(api: Any) -> None:
    registry: Registry = api.registry
    household = _household(registry)
    person = household["members"][0]
    staff = api.auth("registry_staff", sub="officer-3")
    direct = api.post(
        "/api/v1/change-requests", json=_proposal(household, apply_directly=True), headers=staff
    )
    assert direct.status_code == 201, direct.json
    assert direct.json["state"] == "applied" and direct.json["direct"] is True
    assert [s["action"] for s in direct.json["history"]] == ["proposed", "applied"]
    assert registry.get_household(household["id"])["address"] == "14 Mango Lane"

    birth = _proposal(
        household,
        target="person.birth_date",
        person_id=person["id"],
        old_value="1985-04-02",
        proposed_value="1985-02-04",
        apply_directly=True,
    )
    refused = api.post("/api/v1/change-requests", json=birth, headers=staff)
    assert refused.status_code == 403 and "not one of the corrections" in refused.json["detail"]
    bare = _proposal(
        household,
        old_value="14 Mango Lane",
        proposed_value="16 Mango Lane",
        apply_directly=True,
        evidence_reference=None,
    )
    assert api.post("/api/v1/change-requests", json=bare, headers=staff).status_code == 403
    worker = api.auth("field_worker", areas=("R01",))
    fielded = {**bare, "evidence_reference": "photo-1"}
    assert api.post("/api/v1/change-requests", json=fielded, headers=worker).status_code == 403
    assert registry.get_household(household["id"])["address"] == "14 Mango Lane"
    # A stale direct correction writes nothing either.
    stale = {**fielded, "old_value": "12 Mango Lane"}
    assert api.post("/api/v1/change-requests", json=stale, headers=staff).status_code == 409
    listed = api.get(f"/api/v1/households/{household['id']}/change-requests", headers=staff).json
    assert listed["total"] == 1  # the refused ones left no request behind


def test_a_fact_is_corrected_beside_the_sources_that_reported_it(api: Any) -> None:
    registry: Registry = api.registry
    household = _household(registry)
    income = {"domain": "income", "name": "monthly_income", "value": 450}
    registry.record_attributes(household["id"], [income], Source("intake", "form/1"))
    body = _proposal(
        household,
        target="attribute.income.monthly_income",
        old_value=450,
        proposed_value=300,
        reason="The form recorded a yearly bonus as monthly income",
    )
    worker = api.auth("field_worker", sub="enum-7", areas=("R01",))
    made = api.post("/api/v1/change-requests", json=body, headers=worker).json
    staff = api.auth("registry_staff", sub="officer-3")
    done = api.post(f"/api/v1/change-requests/{made['id']}/approve", headers=staff)
    assert done.status_code == 200, done.json
    facts = registry.get_household(household["id"])["attributes"]
    assert sorted(f["value"] for f in facts if f["name"] == "monthly_income") == [300, 450]
    # The next correction starts from the corrected value (corrections outrank intake).
    again = _proposal(household, target=body["target"], old_value=450, proposed_value=350)
    made = api.post("/api/v1/change-requests", json=again, headers=worker).json
    stale = api.post(f"/api/v1/change-requests/{made['id']}/approve", headers=staff)
    assert stale.status_code == 409 and stale.json["current_value"] == 300


def test_areas_withdrawal_listing_and_validation(api: Any) -> None:
    registry: Registry = api.registry
    ours = _household(registry, "R01-D02")
    theirs = _household(registry, "R02-D01")
    worker = api.auth("field_worker", sub="enum-7", areas=("R01",))
    other = api.auth("field_worker", sub="enum-9", areas=("R01",))
    staff = api.auth("registry_staff", sub="officer-3")
    outside = api.post("/api/v1/change-requests", json=_proposal(theirs), headers=worker)
    assert outside.status_code == 403
    mine = api.post("/api/v1/change-requests", json=_proposal(ours), headers=worker).json
    api.post("/api/v1/change-requests", json=_proposal(theirs), headers=staff)

    listed = api.get("/api/v1/change-requests?state=proposed", headers=worker).json
    assert [i["id"] for i in listed["items"]] == [mine["id"]]
    assert api.get("/api/v1/change-requests", headers=staff).json["total"] == 2
    narrowed = api.get("/api/v1/change-requests?area=R02", headers=staff).json
    assert [i["household_id"] for i in narrowed["items"]] == [theirs["id"]]
    by_household = api.get(f"/api/v1/change-requests?household_id={ours['id']}", headers=staff)
    assert [i["id"] for i in by_household.json["items"]] == [mine["id"]]
    assert api.get("/api/v1/change-requests?state=done", headers=staff).status_code == 400
    theirs_listed = api.get("/api/v1/change-requests", headers=staff).json["items"]
    theirs_id = next(i["id"] for i in theirs_listed if i["household_id"] == theirs["id"])
    assert api.get(f"/api/v1/change-requests/{theirs_id}", headers=worker).status_code == 403
    assert api.get(f"/api/v1/change-requests/{uuid.uuid4()}", headers=staff).status_code == 404

    url = f"/api/v1/change-requests/{mine['id']}/withdraw"
    assert api.post(url, json={"reason": "not mine"}, headers=other).status_code == 403
    assert api.post(url, headers=worker).status_code == 400  # a reason is required
    gone = api.post(url, json={"reason": "The family found the bill was right"}, headers=worker)
    assert gone.status_code == 200 and gone.json["state"] == "withdrawn"
    auditor = api.auth("auditor")
    assert api.post(url, json={"reason": "x"}, headers=auditor).status_code == 403
    history = api.get(f"/api/v1/households/{ours['id']}/change-requests", headers=auditor).json
    assert [s["action"] for s in history["items"][0]["history"]] == ["proposed", "withdrawn"]
    assert (
        api.get(f"/api/v1/households/{theirs['id']}/change-requests", headers=worker).status_code
        == 403
    )

    def post(**changes: Any) -> Any:
        return api.post("/api/v1/change-requests", json=_proposal(ours, **changes), headers=staff)

    assert post(target="person.identifiers").status_code == 400
    assert post(target="person.given_name").status_code == 400  # which person?
    assert post(channel="pigeon").status_code == 400
    assert post(household_id=str(uuid.uuid4())).status_code == 404
    assert post(proposed_value="12 Mango Lane").status_code == 400  # nothing to change
    assert post(reason="   ").status_code == 400
    person_id = ours["members"][0]["id"]
    bad_sex = post(target="person.sex", person_id=person_id, old_value="female", proposed_value=7)
    assert bad_sex.status_code == 422
    assert post(person_id=theirs["members"][0]["id"], target="person.given_name").status_code == 400
    assert api.post("/api/v1/change-requests", json=_proposal(ours)).status_code == 401


def test_two_reviewers_approving_at_once_apply_it_once(api: Any) -> None:
    registry: Registry = api.registry
    household = _household(registry)
    worker = api.auth("field_worker", sub="enum-7", areas=("R01",))
    made = api.post("/api/v1/change-requests", json=_proposal(household), headers=worker).json
    url = f"/api/v1/change-requests/{made['id']}/approve"
    reviewers = [api.auth("registry_staff", sub=f"officer-{n}") for n in (1, 2)]
    app = api.application
    answers: list[int] = []
    start = threading.Barrier(2)

    def approve(headers: dict[str, str]) -> None:
        client = app.test_client()
        start.wait()
        answers.append(client.post(url, headers=headers).status_code)

    threads = [threading.Thread(target=approve, args=(h,)) for h in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [200, 409]
    updates = _events(registry, f"household/{household['id']}", "household.updated")
    assert [u["changed_fields"] for u in updates] == [["address"]]
    history = api.get(f"/api/v1/change-requests/{made['id']}", headers=reviewers[0]).json
    assert [s["action"] for s in history["history"]] == ["proposed", "approved"]
