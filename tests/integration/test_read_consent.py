"""Programs and partners read, through DCI search and FHIR, only what their consent and role
allow (``registry_core.consent``, ``hub.api.visibility``).

One population, four kinds of consent for program CCT: a household's (Otieno), one person's
(Peter Kamau), a member who is not the head (Ann Odhiambo, purpose ``nutrition``) and a revoked
one (Tom Odhiambo); the Wanjiru household consented to another program only.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.group import Group
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from registry_core.consent import ConsentScope, covered_members, covers_person
from registry_core.service import Source
from tests.integration.dci_support import (
    Dci,
    check_ack,
    check_answer,
    check_sync,
    numbers,
    search_message,
    seed_population,
)

PROGRAM = "CCT"
STAFF = Source("registry_staff")


@pytest.fixture
def world(db_url: str, tmp_path: Path):
    dci = Dci(db_url, tmp_path, extra={"callback_attempts": 1}, roles=("program",), program=PROGRAM)
    people = seed_population(dci)
    registry = dci.runtime.registry

    def member(house: str, given: str) -> dict:
        return next(m for m in people[house]["members"] if m["given_name"] == given)

    registry.grant_consent(
        PROGRAM, "cash_transfer", "paper", STAFF, household_id=people["otieno"]["id"]
    )
    registry.grant_consent(
        PROGRAM, "cash_transfer", "sms", STAFF, person_id=member("kamau", "Peter")["id"]
    )
    registry.grant_consent(
        PROGRAM, "nutrition", "paper", STAFF, person_id=member("odhiambo", "Ann")["id"]
    )
    revoked = registry.grant_consent(
        PROGRAM, "cash_transfer", "paper", STAFF, person_id=member("odhiambo", "Tom")["id"]
    )
    registry.revoke_consent(revoked.record["consent_id"], STAFF)
    registry.grant_consent(
        "OTHER", "cash_transfer", "paper", STAFF, household_id=people["wanjiru"]["id"]
    )
    dci.people, dci.member = people, member  # type: ignore[attr-defined]
    yield dci
    dci.close()


def everyone(dci: Dci, headers: dict | None = None, **criteria) -> dict:
    query = {"query_type": "expression", "query": {"group_size": {"$ge": 1}}, **criteria}
    body = dci.envelope("search", search_message(query))
    response = dci.post("sync/search", body, headers=headers or dci.headers)
    assert response.status_code == 200, response.get_json()
    return check_sync(response)


def groups_by_number(answer: dict) -> dict[str, dict]:
    records = answer["message"]["search_response"][0]["data"]["reg_records"]
    return {r["group_identifier"][0]["identifier_value"]: r for r in records}


def given_names(group: dict) -> list[str]:
    return [m["demographic_info"]["name"]["given_name"] for m in group.get("member_list", [])]


def test_dci_search_shows_a_program_only_what_its_consents_cover(world):
    people = world.people
    number = {name: record["registry_number"] for name, record in people.items()}
    answer = everyone(world)
    found = groups_by_number(answer)
    assert set(found) == {number["otieno"], number["kamau"], number["odhiambo"]}
    assert answer["message"]["search_response"][0]["pagination"]["total_count"] == 3
    # the household's consent covers every member, identifiers in clear
    otieno = found[number["otieno"]]
    assert given_names(otieno) == ["Amina", "Cleo", "Dan"] and otieno["group_size"] == 3
    assert otieno["group_head_info"]["demographic_info"]["identifier"] == [
        {"identifier_type": "UIN", "identifier_value": "1111111111"}
    ]
    # one member's consent shows that member only: no head, nobody else
    odhiambo = found[number["odhiambo"]]
    assert given_names(odhiambo) == ["Ann"] and odhiambo["group_size"] == 1
    assert "group_head_info" not in odhiambo
    assert given_names(found[number["kamau"]]) == ["Peter"]

    # Criteria match covered members only: nothing can be learnt about the others.
    def search(query: dict, headers: dict | None = None) -> list[str]:
        body = dci_search(world, query, headers)
        return numbers(body)

    assert search({"type": "UIN", "value": "4444444444"}) == []  # Tom: consent revoked
    assert search({"type": "UIN", "value": "1111111111"}) == [number["otieno"]]
    assert search({"given_name": {"$eq": "Tom"}}) == []
    assert search({"given_name": {"$eq": "Ann"}}) == [number["odhiambo"]]
    assert search({"group_size": {"$ge": 2}}) == [number["otieno"]]
    assert search({"registry_number": {"$eq": number["wanjiru"]}}) == []  # other program's

    # The request may narrow the consents to one purpose (the spec's search_criteria.consent).
    narrowed = everyone(world, consent={"purpose": {"code": "nutrition"}})
    assert list(groups_by_number(narrowed)) == [number["odhiambo"]]

    # A program without any consent sees nobody; a partner system reads no personal data.
    stranger = everyone(world, headers=world.auth("program", program="NOBODY"))
    assert groups_by_number(stranger) == {}
    partner = everyone(world, headers=world.auth("partner"))
    item = partner["message"]["search_response"][0]
    assert item["status"] == "succ" and item["data"]["reg_records"] == []
    assert item["pagination"]["total_count"] == 0
    assert "program credential" in item["status_reason_message"]
    # staff read everything
    assert len(groups_by_number(everyone(world, headers=world.auth("admin")))) == 4


def dci_search(dci: Dci, query: dict, headers: dict | None = None) -> dict:
    query_type = "idtype-value" if "type" in query else "expression"
    body = dci.envelope("search", search_message({"query_type": query_type, "query": query}))
    return check_sync(dci.post("sync/search", body, headers=headers or dci.headers))


def test_async_on_search_applies_the_same_consent(world):
    number = {name: record["registry_number"] for name, record in world.people.items()}
    message = search_message({"query_type": "expression", "query": {"group_size": {"$ge": 1}}})
    ack = check_ack(world.post("search", world.envelope("search", message)))["message"]
    assert ack["ack_status"] == "ACK"
    path, callback = world.receiver.next()
    assert path == "/registry/on-search"
    check_answer("/registry/on-search", callback)
    found = groups_by_number(callback)
    assert set(found) == {number["otieno"], number["kamau"], number["odhiambo"]}
    assert given_names(found[number["odhiambo"]]) == ["Ann"]

    partner = search_message({"query_type": "expression", "query": {"group_size": {"$ge": 1}}})
    body = world.envelope("search", partner)
    assert (
        check_ack(world.post("search", body, headers=world.auth("partner")))["message"][
            "ack_status"
        ]
        == "ACK"
    )
    _, nothing = world.receiver.next()
    assert nothing["message"]["search_response"][0]["data"]["reg_records"] == []


def fhir(world: Dci, path: str, headers: dict | None = None):
    return world.client.get(f"/fhir/{path}", headers=headers or world.headers)


def test_fhir_reads_follow_the_same_consent(world):
    people, member = world.people, world.member
    amina, tom = member("otieno", "Amina"), member("odhiambo", "Tom")
    ann = member("odhiambo", "Ann")

    group = Group.model_validate_json(fhir(world, f"Group/{people['otieno']['id']}").get_data())
    assert group.quantity == 3
    patient = Patient.model_validate_json(fhir(world, f"Patient/{amina['id']}").get_data())
    assert "1111111111" in {i.value for i in patient.identifier}  # in clear under consent

    # Only the covered member of a household; no RelatedPerson pointing at an unseen head.
    bundle = Bundle.model_validate_json(
        fhir(world, f"Group/{people['odhiambo']['id']}/$everything").get_data()
    )
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds == ["Group", "Patient"] and bundle.entry[1].resource.id == ann["id"]

    # Not covered and not known look the same.
    unknown = f"Patient/{uuid.uuid4()}"
    for path in (f"Patient/{tom['id']}", unknown, f"Group/{people['wanjiru']['id']}"):
        response = fhir(world, path)
        assert response.status_code == 404, path
        outcome = OperationOutcome.model_validate_json(response.get_data())
        assert "no consent for program CCT covers it" in outcome.issue[0].diagnostics
    found = Bundle.model_validate_json(
        fhir(world, "Patient?identifier=national_id|4444444444").get_data()
    )
    assert found.total == 0
    found = Bundle.model_validate_json(
        fhir(world, "Patient?identifier=national_id|1111111111").get_data()
    )
    assert [e.resource.id for e in found.entry] == [amina["id"]]

    # A death ends the membership; the household's consent still covers the person.
    cleo = member("otieno", "Cleo")
    world.runtime.registry.record_death(cleo["id"], "2025-03-01", Source("civil_registry"))
    assert fhir(world, f"Patient/{cleo['id']}").status_code == 200
    group = Group.model_validate_json(fhir(world, f"Group/{people['otieno']['id']}").get_data())
    assert group.quantity == 2

    # A partner reads nothing personal; an auditor reads everyone, identifiers masked.
    refused = fhir(world, f"Patient/{amina['id']}", world.auth("partner"))
    assert refused.status_code == 403
    diagnostics = OperationOutcome.model_validate_json(refused.get_data()).issue[0].diagnostics
    assert "program credential" in diagnostics
    assert fhir(world, "Patient?identifier=national_id|1", world.auth("partner")).status_code == 403
    audited = Patient.model_validate_json(
        fhir(world, f"Patient/{tom['id']}", world.auth("auditor")).get_data()
    )
    assert all("*" in i.value for i in audited.identifier)

    # Revoking the household's consent closes the household at once.
    with world.runtime.sessions() as session:
        from sqlalchemy import select

        from registry_core.models import Consent

        consent_id = session.scalar(
            select(Consent.id).where(Consent.household_id == uuid.UUID(people["otieno"]["id"]))
        )
    world.runtime.registry.revoke_consent(consent_id, STAFF)
    assert fhir(world, f"Group/{people['otieno']['id']}").status_code == 404


def test_the_rule_for_one_person_and_the_rule_in_sql_agree(world):
    """``covers_person`` (dispatch, FHIR Patient) and ``covered_members`` (SQL, DCI, FHIR
    Group) are two forms of one rule: for every current member they must give one answer."""
    for purpose in (None, "nutrition", "cash_transfer"):
        scope = ConsentScope(PROGRAM, purpose)
        with world.runtime.sessions() as session:
            for record in world.people.values():
                household_id = uuid.UUID(record["id"])
                in_sql = covered_members(session, scope, household_id)
                for person in record["members"]:
                    person_id = uuid.UUID(person["id"])
                    assert covers_person(session, scope, person_id) == (person_id in in_sql), (
                        purpose,
                        person["given_name"],
                    )
