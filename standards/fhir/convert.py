"""Canonical person/household records -> FHIR R4B Patient, Group, RelatedPerson, Bundle.

A household is a ``Group`` (type person, ``actual: true``, code household) whose members are
``Patient`` references; the relationship to the head is told twice, as FHIR expects it read:
an extension on each ``Group.member`` (so the Group alone is complete) and a ``RelatedPerson``
per non-head member in ``$everything`` (so kinship tools find it where they look). Every
builder returns a validated ``fhir.resources.R4B`` model: output is strict even when our input
is not.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.group import Group
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.relatedperson import RelatedPerson

from standards.fhir import systems
from standards.timeutil import rfc3339, utcnow

FHIR_VERSION = "4.3.0"
FHIR_MIME = "application/fhir+json"

# relationship_to_head -> HL7 v3 RoleCode (the member's role towards the head).
ROLE_CODES: dict[str, tuple[str, str]] = {
    "spouse": ("SPS", "spouse"),
    "child": ("CHILD", "child"),
    "parent": ("PRN", "parent"),
    "grandchild": ("GRNDCHILD", "grandchild"),
    "grandparent": ("GRPRN", "grandparent"),
    "sibling": ("SIB", "sibling"),
    "other_relative": ("EXT", "extended family member"),
    "non_relative": ("NBOR", "neighbor"),
    "head": ("ONESELF", "self"),
}


def _meta(record: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if record.get("version") is not None:
        meta["versionId"] = str(record["version"])
    if record.get("updated_at"):
        meta["lastUpdated"] = record["updated_at"]
    return meta


def _compact(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v not in (None, "", [], {})}


def patient(person: dict[str, Any], replaced_by: str | None = None) -> Patient:
    """A person as a FHIR Patient; ``replaced_by``: the record was merged into that Patient
    (FHIR's own way to say so: inactive, with a ``replaced-by`` link)."""
    given = [n for n in (person.get("given_name"), person.get("other_names")) if n]
    name = _compact({"use": "official", "family": person.get("family_name"), "given": given})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": person["id"],
        "meta": _meta(person),
        "identifier": [
            {"system": systems.system_uri(i["system"]), "value": i["value"]}
            for i in person.get("identifiers", [])
            if i.get("value")
        ],
        "active": True,
        "name": [name] if len(name) > 1 else [],
        "gender": person.get("sex"),
        "birthDate": person.get("birth_date"),
    }
    if person.get("death_date"):
        resource["deceasedDateTime"] = person["death_date"]
    elif person.get("is_deceased"):
        resource["deceasedBoolean"] = True
    if replaced_by:
        resource["active"] = False
        other = {"reference": f"Patient/{replaced_by}"}
        resource["link"] = [{"other": other, "type": "replaced-by"}]
    return Patient.model_validate(_compact(resource))


def _relationship(code: str | None) -> dict[str, Any] | None:
    if not code or code not in ROLE_CODES:
        return None
    role, display = ROLE_CODES[code]
    return {"coding": [{"system": systems.ROLE_CODE_SYSTEM, "code": role, "display": display}]}


def group(household: dict[str, Any]) -> Group:
    members = []
    for person in household.get("members", []):
        entry: dict[str, Any] = {
            "entity": {"reference": f"Patient/{person['id']}"},
            "inactive": False,
        }
        relationship = _relationship(person.get("relationship"))
        if relationship:
            entry["extension"] = [
                {"url": systems.RELATIONSHIP_EXTENSION, "valueCodeableConcept": relationship}
            ]
        members.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "Group",
        "id": household["id"],
        "meta": _meta(household),
        "identifier": [
            {"system": systems.REGISTRY_NUMBER_URI, "value": household["registry_number"]}
        ],
        "active": household.get("status") != "dissolved",
        "type": "person",
        "actual": True,
        "code": {
            "coding": [
                {"system": systems.GROUP_CODE_SYSTEM, "code": "household", "display": "Household"}
            ]
        },
        "name": f"Household {household['registry_number']}",
        "quantity": len(members),
        "member": members,
    }
    if household.get("admin_area_code"):
        resource["characteristic"] = [
            {
                "code": {"text": "administrative area"},
                "valueCodeableConcept": {
                    "coding": [
                        {"system": systems.ADMIN_AREA_SYSTEM, "code": household["admin_area_code"]}
                    ]
                },
                "exclude": False,
            }
        ]
    return Group.model_validate(_compact(resource))


def related_people(household: dict[str, Any]) -> list[RelatedPerson]:
    """One RelatedPerson per non-head member: who they are to the head Patient."""
    head = household.get("head_person_id")
    if not head:
        return []
    found = []
    for person in household.get("members", []):
        relationship = _relationship(person.get("relationship"))
        if person["id"] == head or relationship is None:
            continue
        given = [n for n in (person.get("given_name"), person.get("other_names")) if n]
        name = _compact({"family": person.get("family_name"), "given": given})
        resource = _compact(
            {
                "resourceType": "RelatedPerson",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"related/{person['id']}/{head}")),
                "patient": {"reference": f"Patient/{head}"},
                "relationship": [relationship],
                "name": [name] if name else [],
                "gender": person.get("sex"),
                "birthDate": person.get("birth_date"),
                "active": True,
            }
        )
        found.append(RelatedPerson.model_validate(resource))
    return found


def _entry(base_url: str, resource: Any, mode: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "fullUrl": f"{base_url}/{resource.get_resource_type()}/{resource.id}",
        "resource": resource,
    }
    if mode:
        entry["search"] = {"mode": mode}
    return entry


def _now() -> str:
    return rfc3339(utcnow().replace(microsecond=0))


def everything(household: dict[str, Any], base_url: str) -> Bundle:
    """``Group/{id}/$everything``: the Group, its Patients and their RelatedPersons."""
    resources: list[Any] = [group(household)]
    resources += [patient(p) for p in household.get("members", [])]
    resources += related_people(household)
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": _now(),
            "total": 1,
            "entry": [
                _entry(base_url, r, "match" if i == 0 else "include")
                for i, r in enumerate(resources)
            ],
        }
    )


def searchset(resources: list[Any], base_url: str, self_url: str) -> Bundle:
    return Bundle.model_validate(
        _compact(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "timestamp": _now(),
                "total": len(resources),
                "link": [{"relation": "self", "url": self_url}],
                "entry": [_entry(base_url, r, "match") for r in resources],
            }
        )
        | {"total": len(resources)}
    )


def outcome(code: str, diagnostics: str, severity: str = "error") -> OperationOutcome:
    """An OperationOutcome; ``code`` is from the FHIR issue-type value set (not-found...)."""
    return OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics[:500]}],
        }
    )


def capability_statement(base_url: str, software_version: str = "0.1.0") -> CapabilityStatement:
    identifier_param = {
        "name": "identifier",
        "type": "token",
        "documentation": "system|value; system is a URI under "
        f"{systems.IDENTIFIER_BASE} or a short name ("
        + ", ".join(sorted(systems.SYSTEM_URIS))
        + ")",
    }
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": _now(),
            "publisher": "Social Registry Interoperability Hub",
            "kind": "instance",
            "software": {"name": "srhub", "version": software_version},
            "implementation": {
                "description": "Social Registry read API (households as Group)",
                "url": base_url,
            },
            "fhirVersion": FHIR_VERSION,
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "Authorization: Bearer <token> issued by the hub; "
                        "roles admin, registry_staff, partner or program."
                    },
                    "resource": [
                        {
                            "type": "Patient",
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [identifier_param],
                        },
                        {
                            "type": "Group",
                            "interaction": [{"code": "read"}],
                            "operation": [
                                {
                                    "name": "everything",
                                    "definition": systems.BASE
                                    + "/OperationDefinition/Group-everything",
                                }
                            ],
                        },
                    ],
                }
            ],
        }
    )
