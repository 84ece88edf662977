"""Consent through the API (``hub.api.consents``): recorded with who, how, when and on what
evidence; captured at registration in the registration's transaction; withdrawn with a reason,
history kept; and a withdrawal takes effect end to end on the three paths a program sees people
by — the next dispatch, the next DCI search, the next FHIR read."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from hub.auth.tokens import issue_token
from hub.subscriptions import service
from hub.workers.egress import EgressPolicy
from registry_core.service import Source
from tests.integration.dci_support import Dci, check_sync, numbers, search_message
from tests.integration.notification_support import notification_workers, receiver, wait_until

PROGRAM = "CCT"
FIELD_AREA = "R01"


def member(area: str, given: str, nid: str, relationship: str = "head") -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": "Mwangi",
        "sex": "female",
        "birth_date": "1980-04-02",
        "relationship": relationship,
        "identifiers": [{"system": "national_id", "value": nid}],
    }


def registration(area: str, nids: list[str], **extra: Any) -> dict[str, Any]:
    members = [
        member(area, f"Given{i}", nid, "head" if i == 0 else "other_relative")
        for i, nid in enumerate(nids)
    ]
    return {"admin_area_code": area, "members": members, **extra}


@pytest.fixture
def world(db_url: str, tmp_path: Path):
    dci = Dci(db_url, tmp_path, extra={"callback_attempts": 1}, roles=("program",), program=PROGRAM)
    dci.staff = dci.auth("registry_staff")  # type: ignore[attr-defined]
    yield dci
    dci.close()


def register(world: Dci, body: dict[str, Any], headers: dict | None = None) -> Any:
    return world.client.post("/api/v1/households", json=body, headers=headers or world.staff)


def record(world: Dci, body: dict[str, Any], headers: dict | None = None) -> Any:
    return world.client.post("/api/v1/consents", json=body, headers=headers or world.staff)


def withdraw(world: Dci, consent_id: str, reason: str, headers: dict | None = None) -> Any:
    return world.client.post(
        f"/api/v1/consents/{consent_id}/withdraw",
        json={"reason": reason},
        headers=headers or world.staff,
    )


def test_record_withdraw_and_history(world):
    house = register(world, registration("R01-D01", ["1234567897", "2234567891"])).get_json()
    person = house["members"][1]["id"]
    created = record(
        world,
        {
            "household_id": house["id"],
            "program": PROGRAM,
            "purpose": "cash_transfer",
            "channel": "paper",
            "evidence_reference": "scan:2026/0042",
        },
    )
    assert created.status_code == 201, created.get_json()
    given = created.get_json()
    assert created.headers["Location"].endswith(f"/api/v1/consents/{given['consent_id']}")
    assert given["status"] == "active" and given["evidence_reference"] == "scan:2026/0042"
    assert given["recorded_by"] == "token:spmis" and given["granted_at"]
    own = record(
        world,
        {"person_id": person, "program": "NUT", "purpose": "nutrition", "channel": "verbal"},
    ).get_json()

    # Withdrawing needs a reason; the row stays with who withdrew it, when and why.
    assert withdraw(world, given["consent_id"], "").status_code == 400
    done = withdraw(world, given["consent_id"], "moved away, asked to stop")
    assert done.status_code == 200
    assert done.get_json()["status"] == "withdrawn"
    assert done.get_json()["revocation_reason"] == "moved away, asked to stop"
    assert done.get_json()["revoked_by"] == "token:spmis" and done.get_json()["revoked_at"]
    again = withdraw(world, given["consent_id"], "a second reason").get_json()
    assert again["revocation_reason"] == "moved away, asked to stop"  # the first one is kept

    auditor = world.auth("auditor")
    history = world.client.get(f"/api/v1/households/{house['id']}/consents", headers=auditor)
    assert history.status_code == 200
    assert [(c["program_code"], c["status"]) for c in history.get_json()["items"]] == [
        (PROGRAM, "withdrawn")
    ]
    # A person's list holds their own consents and their household's (which covered them).
    mine = world.client.get(f"/api/v1/persons/{person}/consents", headers=auditor).get_json()
    assert [(c["consent_id"], c["status"]) for c in mine["items"]] == [
        (given["consent_id"], "withdrawn"),
        (own["consent_id"], "active"),
    ]
    assert world.client.get(f"/api/v1/consents/{own['consent_id']}", headers=auditor).status_code
    # auditors read, they do not record or withdraw
    assert withdraw(world, own["consent_id"], "no", headers=auditor).status_code == 403


def test_bodies_are_validated_and_field_workers_act_in_their_areas(world):
    inside = register(world, registration("R01-D02", ["3234567895"])).get_json()
    outside = register(world, registration("R02-D01", ["4234567899"])).get_json()
    terms = {"program": PROGRAM, "purpose": "cash_transfer", "channel": "paper"}

    both = record(world, {**terms, "household_id": inside["id"], "person_id": inside["id"]})
    assert both.status_code == 400 and "oneOf" in both.get_json()["detail"]
    bad_channel = record(world, {**terms, "channel": "pigeon", "household_id": inside["id"]})
    assert bad_channel.status_code == 400 and "channel" in bad_channel.get_json()["detail"]
    missing = record(world, {**terms, "household_id": "00000000-0000-4000-8000-000000000000"})
    assert missing.status_code == 404

    token = issue_token(
        world.settings, subject="fw1", roles=["field_worker"], admin_areas=[FIELD_AREA]
    )
    field = {"Authorization": f"Bearer {token}"}
    ok = record(world, {**terms, "household_id": inside["id"]}, headers=field)
    assert ok.status_code == 201 and ok.get_json()["recorded_by"] == "token:fw1"
    head = outside["members"][0]["id"]
    assert record(world, {**terms, "person_id": head}, headers=field).status_code == 403
    theirs = record(world, {**terms, "person_id": head}).get_json()
    assert withdraw(world, theirs["consent_id"], "x", headers=field).status_code == 403
    assert (
        world.client.get(f"/api/v1/households/{outside['id']}/consents", headers=field).status_code
        == 403
    )
    # a program's system reads consents through its reads, not this API
    assert (
        record(world, {**terms, "household_id": inside["id"]}, headers=world.headers).status_code
        == 403
    )


def test_consents_given_at_registration_commit_with_it_or_not_at_all(world):
    consents = [
        {
            "program": PROGRAM,
            "purpose": "cash_transfer",
            "channel": "form",
            "evidence_reference": "uuid:abc",
        },
        {"program": "NUT", "purpose": "nutrition", "channel": "verbal", "member": 1},
    ]
    created = register(
        world, registration("R01-D03", ["5234567892", "6234567896"], consents=consents)
    )
    assert created.status_code == 201, created.get_json()
    house = created.get_json()
    listed = world.client.get(
        f"/api/v1/persons/{house['members'][1]['id']}/consents", headers=world.staff
    ).get_json()["items"]
    assert {(c["program_code"], c["household_id"] is not None, c["channel"]) for c in listed} == {
        (PROGRAM, True, "form"),
        ("NUT", False, "verbal"),
    }
    assert all(c["recorded_by"] == "token:spmis" for c in listed)

    before = world.client.get("/api/v1/households", headers=world.staff).get_json()["total"]
    bad_member = [{"program": PROGRAM, "purpose": "x", "channel": "paper", "member": 5}]
    refused = register(world, registration("R01-D03", ["7234567890"], consents=bad_member))
    assert refused.status_code == 400 and "member 5" in refused.get_json()["detail"]
    bad_item = [{"program": PROGRAM, "channel": "paper"}]
    assert (
        register(world, registration("R01-D03", ["7234567890"], consents=bad_item)).status_code
        == 400
    )
    after = world.client.get("/api/v1/households", headers=world.staff).get_json()["total"]
    assert after == before  # nothing of the refused registrations was written


def dci_numbers(world: Dci, query: dict) -> list[str]:
    query_type = "idtype-value" if "type" in query else "expression"
    body = world.envelope("search", search_message({"query_type": query_type, "query": query}))
    return numbers(check_sync(world.post("sync/search", body)))


def test_a_withdrawal_closes_dci_search_and_fhir_read_at_once(world):
    given = register(
        world,
        registration(
            "R01-D04",
            ["8234567893"],
            consents=[{"program": PROGRAM, "purpose": "cash_transfer", "channel": "paper"}],
        ),
    ).get_json()
    person = given["members"][0]["id"]
    by_uin = {"type": "UIN", "value": "8234567893"}
    assert dci_numbers(world, by_uin) == [given["registry_number"]]
    assert world.client.get(f"/fhir/Patient/{person}", headers=world.headers).status_code == 200
    assert world.client.get(f"/fhir/Group/{given['id']}", headers=world.headers).status_code == 200

    consent_id = world.client.get(
        f"/api/v1/households/{given['id']}/consents", headers=world.staff
    ).get_json()["items"][0]["consent_id"]
    assert withdraw(world, consent_id, "withdrawn at the help desk").status_code == 200

    assert dci_numbers(world, by_uin) == []
    assert dci_numbers(world, {"registry_number": {"$eq": given["registry_number"]}}) == []
    assert world.client.get(f"/fhir/Patient/{person}", headers=world.headers).status_code == 404
    assert world.client.get(f"/fhir/Group/{given['id']}", headers=world.headers).status_code == 404
    found = world.client.get(
        "/fhir/Patient?identifier=national_id|8234567893", headers=world.headers
    ).get_json()
    assert found["total"] == 0
    # staff still read the person: a withdrawal limits programs, it deletes nothing
    admin = world.auth("admin")
    assert world.client.get(f"/fhir/Patient/{person}", headers=admin).status_code == 200


SECRET = "a-test-secret-of-some-length"


def test_a_withdrawal_makes_the_next_dispatch_carry_no_personal_data(world):
    runtime = world.runtime
    with receiver() as rx:
        body = {
            "code": "cct-deaths",
            "event_types": ["person.died"],
            "channel": "webhook",
            "target": rx.url,
            "purpose": "cash_transfer",
            "secret": SECRET,
        }
        service.validate_create(
            body, amqp_available=False, egress=EgressPolicy.from_settings(world.settings)
        )
        with runtime.sessions() as session, session.begin():
            service.create(session, runtime.cipher, body, program_code=PROGRAM, created_by="test")
        house = register(
            world,
            registration(
                "R01-D05",
                ["9234567897", "1334567894"],
                consents=[{"program": PROGRAM, "purpose": "cash_transfer", "channel": "paper"}],
            ),
        ).get_json()
        first, second = (m["id"] for m in house["members"])
        consent_id = world.client.get(
            f"/api/v1/households/{house['id']}/consents", headers=world.staff
        ).get_json()["items"][0]["consent_id"]
        with notification_workers(world.settings, runtime):
            died = {"death_date": "2025-01-02"}
            runtime.registry.record_death(first, died["death_date"], _civil())
            wait_until(lambda: len(rx.requests) >= 1, 20, "the first death at CCT")
            assert withdraw(world, consent_id, "the family asked to stop").status_code == 200
            runtime.registry.record_death(second, "2025-01-03", _civil())
            wait_until(lambda: len(rx.requests) >= 2, 20, "the second death at CCT")
            time.sleep(0.3)
    before, after = rx.requests[0], rx.requests[1]
    assert before["json"]["srpersonal"] is True
    assert before["json"]["data"]["person_id"] == first
    assert after["json"]["srpersonal"] is False
    assert set(after["json"]["data"]) == {"admin_area_code", "subject_ref", "personal_data"}
    text = after["body"].decode()
    for secret_value in (second, "1334567894", "Given1", "Mwangi", "2025-01-03"):
        assert secret_value not in text


def _civil() -> Source:
    return Source("civil_registry")
