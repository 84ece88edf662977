"""Vital events as FHIR R4B document Bundles, shaped the way OpenCRVS sends them.

Why: the hub's civil-registry connector must be written against what a real OpenCRVS-style
registry emits, not against our canonical model. So the mock speaks OpenCRVS's vocabulary:

- ``Composition.type``: ``birth-declaration`` / ``death-declaration`` in
  ``http://opencrvs.org/doc-types``; sections (``http://opencrvs.org/doc-sections``)
  ``child-details``, ``mother-details``, ``father-details``, ``informant-details``,
  ``deceased-details`` and ``birth-encounter`` / ``death-encounter`` (place of the event).
- ``Patient.identifier[].type.coding`` in ``http://opencrvs.org/specs/identifier-type``:
  ``NATIONAL_ID``, ``BIRTH_REGISTRATION_NUMBER``, ``DEATH_REGISTRATION_NUMBER``.
- the deceased has ``deceasedDateTime``; a newborn ``deceasedBoolean: false``.
- a ``Task`` (``businessStatus`` ``REGISTERED`` in ``http://opencrvs.org/specs/reg-status``)
  carrying the registration number under ``http://opencrvs.org/specs/id/<kind>-registration-number``
  and ``lastModified`` = the registration date.
- the place of the event is an ``Encounter`` whose location reference carries the locality code
  as an identifier (``http://opencrvs.org/specs/id/locality``).

``build_bundle`` emits strictly valid FHIR (tests validate it with ``fhir.resources.R4B``).
``make_messy`` then adds the quirks that real registries show (see STANDARDS.md): empty strings,
``Patient/<id>`` and ``/fhir/...`` references, dates without times, identifier types written as
bare strings, empty periods in extensions. Such bundles fail strict validation on purpose.

Ids are UUIDv5 of the registration number, so one event always gives the same Bundle.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sandbox_mocks.population.model import Person, VitalEvent

DOC_TYPES = "http://opencrvs.org/doc-types"
DOC_CLASSES = "http://opencrvs.org/doc-classes"
DOC_SECTIONS = "http://opencrvs.org/doc-sections"
IDENTIFIER_TYPES = "http://opencrvs.org/specs/identifier-type"
REG_STATUS = "http://opencrvs.org/specs/reg-status"
TASK_TYPES = "http://opencrvs.org/specs/types"
LOCALITY_ID = "http://opencrvs.org/specs/id/locality"
RELATIONSHIP = "http://hl7.org/fhir/ValueSet/relatedperson-relationshiptype"
NAMESPACE = uuid.UUID("6d1a3c4e-3f5b-4c0e-9a59-2b7d0c1e8f10")
OFFICE_NAME = "Sandbox Civil Registration Office"

TOPIC_BY_KIND = {"birth": "BIRTH_REGISTERED", "death": "DEATH_REGISTERED"}
REG_NUMBER_TYPE = {"birth": "BIRTH_REGISTRATION_NUMBER", "death": "DEATH_REGISTRATION_NUMBER"}


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def event_id(event: VitalEvent) -> str:
    """The event's id everywhere (feed, webhook payload, DCI reference): stable per event."""
    return stable_id("event", event.kind, event.registration_number)


def _datetime(day: date) -> str:
    return datetime.combine(day, time(9, 0), tzinfo=UTC).isoformat()


def _identifier(kind: str, value: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": IDENTIFIER_TYPES, "code": kind}]}, "value": value}


def _patient(resource_id: str, person: Person, extra_ids: list[tuple[str, str]]) -> dict[str, Any]:
    identifiers = [_identifier(kind, value) for kind, value in extra_ids]
    if person.national_id:
        identifiers.append(_identifier("NATIONAL_ID", person.national_id))
    if person.birth_registration_number and not any(
        kind == "BIRTH_REGISTRATION_NUMBER" for kind, _ in extra_ids
    ):
        brn = person.birth_registration_number
        identifiers.append(_identifier("BIRTH_REGISTRATION_NUMBER", brn))
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id,
        "active": True,
        "identifier": identifiers,
        "name": [{"use": "en", "given": [person.given_name], "family": person.family_name}],
        "gender": person.sex if person.sex in ("male", "female") else "unknown",
        "birthDate": person.birth_date.isoformat(),
    }
    if person.phone:
        patient["telecom"] = [{"system": "phone", "value": person.phone}]
    return patient


def _section(code: str, title: str, reference: str) -> dict[str, Any]:
    return {
        "title": title,
        "code": {"coding": [{"system": DOC_SECTIONS, "code": code}], "text": title},
        "entry": [{"reference": reference}],
    }


def _encounter(resource_id: str, kind: str, event: VitalEvent) -> dict[str, Any]:
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": resource_id,
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "FLD",
            "display": "field",
        },
        "period": {"start": _datetime(event.event_date)},
    }
    if event.place_locality_code:
        encounter["location"] = [
            {
                "location": {
                    "identifier": {"system": LOCALITY_ID, "value": event.place_locality_code},
                    "display": event.place_locality_code,
                }
            }
        ]
    return encounter


def build_bundle(event: VitalEvent) -> dict[str, Any]:
    """A strictly valid FHIR R4B document Bundle for one registered birth or death."""
    if event.kind not in TOPIC_BY_KIND:
        raise ValueError(f"unknown vital event kind {event.kind!r}")
    reg = event.registration_number
    ids = {role: stable_id(role, event.kind, reg) for role in (
        "bundle", "composition", "subject", "mother", "father", "informant", "task",
        "office", "encounter")}
    urn = {role: f"urn:uuid:{value}" for role, value in ids.items()}
    reg_type = REG_NUMBER_TYPE[event.kind]
    registered_at = _datetime(event.registration_date)
    entries: list[tuple[str, dict[str, Any]]] = []
    sections: list[dict[str, Any]] = []

    subject = _patient(ids["subject"], event.person, [(reg_type, reg)])
    if event.kind == "birth":
        subject["deceasedBoolean"] = False
        sections.append(_section("child-details", "Child details", urn["subject"]))
    else:
        death_day = event.person.death_date or event.event_date
        subject["deceasedDateTime"] = _datetime(death_day)
        sections.append(_section("deceased-details", "Deceased details", urn["subject"]))
    entries.append((urn["subject"], subject))

    informant_of = urn["subject"]
    relationship = "OTHER"
    if event.mother is not None:
        entries.append((urn["mother"], _patient(ids["mother"], event.mother, [])))
        sections.append(_section("mother-details", "Mother's details", urn["mother"]))
        informant_of, relationship = urn["mother"], "MOTHER"
    if event.father is not None:
        entries.append((urn["father"], _patient(ids["father"], event.father, [])))
        sections.append(_section("father-details", "Father's details", urn["father"]))
    informant = {
        "resourceType": "RelatedPerson",
        "id": ids["informant"],
        "relationship": [{"coding": [{"system": RELATIONSHIP, "code": relationship}]}],
        "patient": {"reference": informant_of},
    }
    entries.append((urn["informant"], informant))
    sections.append(_section("informant-details", "Informant's details", urn["informant"]))

    encounter_code = "birth-encounter" if event.kind == "birth" else "death-encounter"
    entries.append((urn["encounter"], _encounter(ids["encounter"], event.kind, event)))
    sections.append(_section(encounter_code, f"{event.kind.title()} encounter", urn["encounter"]))

    office = {
        "resourceType": "Organization",
        "id": ids["office"],
        "name": OFFICE_NAME,
        "identifier": [{"system": "http://opencrvs.org/specs/id/office", "value": "CRO-001"}],
    }
    entries.append((urn["office"], office))

    title = "Birth Declaration" if event.kind == "birth" else "Death Declaration"
    composition = {
        "resourceType": "Composition",
        "id": ids["composition"],
        "identifier": {"system": "urn:ietf:rfc:3986", "value": urn["composition"]},
        "status": "final",
        "type": {
            "coding": [{"system": DOC_TYPES, "code": f"{event.kind}-declaration"}],
            "text": title,
        },
        "category": [{"coding": [{"system": DOC_CLASSES, "code": "crvs-document"}]}],
        "subject": {"reference": urn["subject"]},
        "date": registered_at,
        "author": [{"reference": urn["office"]}],
        "title": title,
        "section": sections,
    }
    task = {
        "resourceType": "Task",
        "id": ids["task"],
        "status": "accepted",
        "intent": "order",
        "code": {"coding": [{"system": TASK_TYPES, "code": event.kind.upper()}]},
        "focus": {"reference": urn["composition"]},
        "for": {"reference": urn["subject"]},
        "identifier": [
            {"system": f"http://opencrvs.org/specs/id/{event.kind}-registration-number",
             "value": reg},
        ],
        "businessStatus": {"coding": [{"system": REG_STATUS, "code": "REGISTERED"}]},
        "lastModified": registered_at,
    }
    all_entries = [(urn["composition"], composition), *entries, (urn["task"], task)]
    return {
        "resourceType": "Bundle",
        "id": ids["bundle"],
        "identifier": {"system": "urn:ietf:rfc:3986", "value": urn["bundle"]},
        "type": "document",
        "timestamp": registered_at,
        "meta": {"lastUpdated": registered_at},
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in all_entries],
    }


def make_messy(bundle: dict[str, Any]) -> dict[str, Any]:
    """Return a copy with the real-world quirks a strict FHIR parser rejects."""
    messy = copy.deepcopy(bundle)
    rewrite: dict[str, str] = {}
    for index, entry in enumerate(messy["entry"]):
        resource = entry["resource"]
        kind, rid = resource["resourceType"], resource["id"]
        if kind in ("Patient", "RelatedPerson", "Encounter"):
            # References as relative or server URLs rather than urn:uuid.
            new_ref = f"{kind}/{rid}" if index % 2 else f"/fhir/{kind}/{rid}/_history/1"
            rewrite[entry["fullUrl"]] = new_ref
            entry["fullUrl"] = f"/fhir/{kind}/{rid}"
        if kind == "Patient":
            for name in resource.get("name", []):
                name["given"] = [*name.get("given", []), ""]  # empty middle name
            resource["address"] = [{"use": "home", "line": ["", ""], "district": ""}]
            resource["extension"] = [
                {"url": "http://opencrvs.org/specs/extension/educational-attainment",
                 "valuePeriod": {"start": "", "end": ""}},
            ]
            for identifier in resource.get("identifier", []):
                if identifier["type"]["coding"][0]["code"] == "NATIONAL_ID":
                    identifier["type"] = "NATIONAL_ID"  # old OpenCRVS: bare string type
            if "deceasedDateTime" in resource:
                resource["deceasedDateTime"] = resource["deceasedDateTime"][:10]
        if kind in ("Composition",):
            resource["date"] = resource["date"][:10]
        if kind == "Task":
            resource["lastModified"] = resource["lastModified"][:10]
    _rewrite_references(messy, rewrite)
    return messy


def _rewrite_references(node: Any, rewrite: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in rewrite:
            node["reference"] = rewrite[ref]
        for value in node.values():
            _rewrite_references(value, rewrite)
    elif isinstance(node, list):
        for value in node:
            _rewrite_references(value, rewrite)
