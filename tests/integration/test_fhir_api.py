"""The FHIR R4B read API over real databases: every body is re-parsed with fhir.resources.R4B
(strict: unknown fields and bad values are rejected), so invalid output fails here."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.group import Group
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.service import Source

FHIR = "application/fhir+json"
NID_URI = "https://socialregistry.example/id/national_id"


def household(area: str = "R01-D02-L003", nid: str = "1234567897") -> dict:
    return {
        "admin_area_code": area,
        "address": "12 Mango Lane",
        "location": {"lat": -1.28, "lon": 36.82},
        "members": [
            {
                "given_name": "Amina",
                "family_name": "Otieno",
                "other_names": "W.",
                "sex": "female",
                "birth_date": "1985-04-02",
                "relationship": "head",
                "identifiers": [
                    {"system": "national_id", "value": nid},
                    {"system": "tax_id", "value": "T" + nid},
                ],
            },
            {
                "given_name": "Cleo",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "2012-09-09",
                "relationship": "child",
                "identifiers": [{"system": "birth_registration", "value": "BRN" + nid}],
            },
            {
                "given_name": "Baraka",
                "family_name": "Otieno",
                "sex": "male",
                "birth_date": "1950-01-01",
                "relationship": "parent",
            },
        ],
    }


@pytest.fixture
def fhir(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    runtime = app.extensions["srhub_runtime"]
    runtime.registry.ensure_identifier_systems()
    client = app.test_client()

    def auth(*roles: str, areas: tuple[str, ...] = (), program: str | None = None) -> dict:
        token = issue_token(
            settings, subject="tester", roles=list(roles), admin_areas=areas, program=program
        )
        return {"Authorization": f"Bearer {token}"}

    client.auth = auth  # type: ignore[attr-defined]
    client.registry = runtime.registry  # type: ignore[attr-defined]
    yield client
    runtime.close()


def parse(response, model):
    assert response.mimetype == FHIR, response.get_data(as_text=True)[:300]
    return model.model_validate_json(response.get_data())


def test_metadata_is_public_and_a_valid_capability_statement(fhir):
    response = fhir.get("/fhir/metadata")
    assert response.status_code == 200
    statement = parse(response, CapabilityStatement)
    assert statement.fhirVersion == "4.3.0" and statement.kind == "instance"
    resources = {r.type: r for r in statement.rest[0].resource}
    assert set(resources) == {"Patient", "Group"}
    assert resources["Group"].operation[0].name == "everything"
    assert resources["Patient"].searchParam[0].name == "identifier"


def test_patient_group_everything_and_identifier_search(fhir):
    created = fhir.registry.register_household(household(), Source("registry_staff")).record
    staff = fhir.auth("registry_staff")
    by_role = {p["relationship"]: p for p in created["members"]}
    head, child = by_role["head"], by_role["child"]

    patient = parse(fhir.get(f"/fhir/Patient/{head['id']}", headers=staff), Patient)
    assert patient.id == head["id"] and patient.gender == "female"
    assert str(patient.birthDate) == "1985-04-02"
    assert patient.name[0].family == "Otieno" and patient.name[0].given == ["Amina", "W."]
    assert {(i.system, i.value) for i in patient.identifier} == {
        (NID_URI, "1234567897"),
        ("https://socialregistry.example/id/tax_id", "T1234567897"),
    }
    assert patient.meta.versionId == str(head["version"])

    group = parse(fhir.get(f"/fhir/Group/{created['id']}", headers=staff), Group)
    assert group.type == "person" and group.actual is True and group.quantity == 3
    assert group.code.coding[0].code == "household"
    assert [m.entity.reference for m in group.member] == [
        f"Patient/{p['id']}" for p in created["members"]
    ]
    roles = [m.extension[0].valueCodeableConcept.coding[0].code for m in group.member]
    expected = {"head": "ONESELF", "child": "CHILD", "parent": "PRN"}
    assert roles == [expected[p["relationship"]] for p in created["members"]]
    assert group.identifier[0].value == created["registry_number"]

    bundle = parse(fhir.get(f"/fhir/Group/{created['id']}/$everything", headers=staff), Bundle)
    assert bundle.type == "searchset"
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds == ["Group", "Patient", "Patient", "Patient", "RelatedPerson", "RelatedPerson"]
    related = [
        e.resource for e in bundle.entry if e.resource.get_resource_type() == "RelatedPerson"
    ]
    assert {r.relationship[0].coding[0].code for r in related} == {"CHILD", "PRN"}
    assert all(r.patient.reference == f"Patient/{head['id']}" for r in related)
    assert all(e.fullUrl.startswith("http://localhost/fhir/") for e in bundle.entry)
    # Every entry is a strict resource on its own, too.
    for entry in bundle.entry:
        type(entry.resource).model_validate_json(entry.resource.model_dump_json())

    for query in (f"{NID_URI}|1234567897", "national_id|1234567897"):
        found = parse(fhir.get(f"/fhir/Patient?identifier={quote(query)}", headers=staff), Bundle)
        assert found.total == 1 and found.entry[0].resource.id == head["id"]
    by_brn = parse(
        fhir.get("/fhir/Patient?identifier=birth_registration|BRN1234567897", headers=staff),
        Bundle,
    )
    assert [e.resource.id for e in by_brn.entry] == [child["id"]]
    none = parse(fhir.get("/fhir/Patient?identifier=national_id|000", headers=staff), Bundle)
    assert none.total == 0 and not none.entry


def test_deceased_person_and_masked_identifiers(fhir):
    created = fhir.registry.register_household(household(nid="555"), Source("registry_staff"))
    household_id = created.record["id"]
    child = created.record["members"][1]
    fhir.registry.record_death(child["id"], "2025-03-01", Source("civil_registry"), "DRN1")
    staff = fhir.auth("registry_staff")
    dead = parse(fhir.get(f"/fhir/Patient/{child['id']}", headers=staff), Patient)
    assert str(dead.deceasedDateTime) == "2025-03-01"
    assert ("https://socialregistry.example/id/death_registration", "DRN1") in {
        (i.system, i.value) for i in dead.identifier
    }
    group = parse(fhir.get(f"/fhir/Group/{household_id}", headers=staff), Group)
    assert group.quantity == 2  # the membership ended with the death
    head = created.record["members"][0]
    auditor = parse(fhir.get(f"/fhir/Patient/{head['id']}", headers=fhir.auth("auditor")), Patient)
    values = {i.value for i in auditor.identifier}
    assert "555" not in values and all("*" in v for v in values)
    # A program reads only what its consents cover (tests/integration/test_read_consent.py):
    # without one, this household is not there for it; with one, identifiers are in clear.
    program = fhir.auth("program", program="CCT")
    hidden = fhir.get(f"/fhir/Group/{household_id}/$everything", headers=program)
    assert hidden.status_code == 404
    assert parse(hidden, OperationOutcome).issue[0].code == "not-found"
    fhir.registry.grant_consent(
        "CCT", "cash_transfer", "paper", Source("registry_staff"), household_id=household_id
    )
    everything = parse(fhir.get(f"/fhir/Group/{household_id}/$everything", headers=program), Bundle)
    shown = {
        i.value
        for e in everything.entry
        if e.resource.get_resource_type() == "Patient"
        for i in (e.resource.identifier or [])
    }
    assert "555" in shown


def test_errors_are_operation_outcomes(fhir):
    created = fhir.registry.register_household(household(), Source("registry_staff")).record
    staff = fhir.auth("registry_staff")
    cases = [
        (fhir.get("/fhir/Patient/not-a-uuid", headers=staff), 404, "not-found"),
        (
            fhir.get("/fhir/Patient/00000000-0000-0000-0000-000000000000", headers=staff),
            404,
            "not-found",
        ),
        (
            fhir.get("/fhir/Group/00000000-0000-0000-0000-000000000000/$everything", headers=staff),
            404,
            "not-found",
        ),
        (fhir.get("/fhir/Patient", headers=staff), 400, "invalid"),
        (fhir.get("/fhir/Patient?identifier=nonsense", headers=staff), 400, "invalid"),
        (fhir.get("/fhir/Patient?identifier=shoe_size|42", headers=staff), 400, "invalid"),
        (
            fhir.get(f"/fhir/Patient?identifier=national_id|{'9' * 65}", headers=staff),
            400,
            "invalid",
        ),
        (fhir.get(f"/fhir/Group/{created['id']}"), 401, "login"),
        (
            fhir.get(f"/fhir/Group/{created['id']}", headers={"Authorization": "Bearer x"}),
            401,
            "login",
        ),
        (
            fhir.get(
                f"/fhir/Group/{created['id']}", headers=fhir.auth("field_worker", areas=("R09",))
            ),
            403,
            "forbidden",
        ),
        (
            fhir.get(
                f"/fhir/Patient/{created['members'][0]['id']}",
                headers=fhir.auth("field_worker", areas=("R09",)),
            ),
            403,
            "forbidden",
        ),
        (fhir.post("/fhir/metadata"), 405, "not-supported"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.path, response.status_code)
        outcome = parse(response, OperationOutcome)
        assert outcome.issue[0].code == code and outcome.issue[0].diagnostics
    # A field worker of the right area reads the household.
    local = fhir.auth("field_worker", areas=("R01-D02",))
    assert fhir.get(f"/fhir/Group/{created['id']}", headers=local).status_code == 200
    scoped = parse(
        fhir.get(
            "/fhir/Patient?identifier=national_id|1234567897",
            headers=fhir.auth("field_worker", areas=("R09",)),
        ),
        Bundle,
    )
    assert scoped.total == 0
