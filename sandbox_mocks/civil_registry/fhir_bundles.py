"""Vital events as FHIR R4B document Bundles, shaped the way OpenCRVS sends them.

Why: the hub's civil-registry connector must be written against what a real OpenCRVS registry
emits, not against our canonical model. So the mock speaks OpenCRVS's vocabulary, as its own
code writes it (``packages/commons/src/fhir``, ``packages/webhooks``):

- ``Composition.type``: ``birth-declaration`` / ``death-declaration`` in
  ``http://opencrvs.org/doc-types``; sections ``child-details``, ``mother-details``,
  ``father-details``, ``informant-details``, ``deceased-details`` (doc-sections) and
  ``birth-encounter`` / ``death-encounter`` (``http://opencrvs.org/specs/sections``).
- ``Patient.identifier[].type.coding`` in ``http://opencrvs.org/specs/identifier-type``:
  ``NATIONAL_ID``, ``BIRTH_REGISTRATION_NUMBER``, ``DEATH_REGISTRATION_NUMBER``.
- a ``Task`` carrying the declaration's ids under ``http://opencrvs.org/specs/id/``:
  ``draft-id``, ``<kind>-tracking-id`` and, once registered, ``<kind>-registration-number``;
  ``businessStatus`` ``REGISTERED``; ``lastModified`` = the registration date.
- the place of the event: an ``Encounter`` whose ``location`` is a ``Location/<id>`` reference
  to a health facility (type ``HEALTH_FACILITY``) or a home (``PRIVATE_HOME``), ``partOf`` the
  locality's admin-area Location, itself ``partOf`` its district and region. Admin areas carry
  ``statistical-code`` ``ADMIN_STRUCTURE_<area code>`` and a ``jurisdiction-type``.
- the mother's / deceased's home address: ``district`` and ``state`` as Location ids and an
  ``extension/part-of`` reference to the locality; the informant as a ``RelatedPerson``;
  Observations (birth weight, cause of death) the hub does not read.

``build_bundle`` emits strictly valid FHIR (tests validate it with ``fhir.resources.R4B``).
``make_messy`` then adds what real bundles show (STANDARDS.md): empty strings, ``Patient/<id>``
and ``/fhir/...`` references, dates without times, identifier types as bare strings, family
names as lists, an object where FHIR wants a list, no ``Bundle.id``; and, chosen per event from
the seed, no registration number yet (a provisional record: tracking id only) or the trimmed
form a webhook client with limited permissions receives (no Composition, only the child,
mother and informant, or the deceased and informant, plus the Task). Such bundles fail strict
validation on purpose.

Ids are UUIDv5 of the registration number, so one event always gives the same Bundle.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sandbox_mocks.population.model import Person, VitalEvent

DOC_TYPES = "http://opencrvs.org/doc-types"
DOC_CLASSES = "http://opencrvs.org/doc-classes"
DOC_SECTIONS = "http://opencrvs.org/doc-sections"
SPEC_SECTIONS = "http://opencrvs.org/specs/sections"
IDENTIFIER_TYPES = "http://opencrvs.org/specs/identifier-type"
REG_STATUS = "http://opencrvs.org/specs/reg-status"
TASK_TYPES = "http://opencrvs.org/specs/types"
SPEC_ID = "http://opencrvs.org/specs/id/"
LOCATION_TYPES = "http://opencrvs.org/specs/location-type"
PART_OF = "http://opencrvs.org/specs/extension/part-of"
RELATIONSHIP = "http://hl7.org/fhir/ValueSet/relatedperson-relationshiptype"
NAMESPACE = uuid.UUID("6d1a3c4e-3f5b-4c0e-9a59-2b7d0c1e8f10")
OFFICE_NAME = "Sandbox Civil Registration Office"

TOPIC_BY_KIND = {"birth": "BIRTH_REGISTERED", "death": "DEATH_REGISTERED"}
REG_NUMBER_TYPE = {"birth": "BIRTH_REGISTRATION_NUMBER", "death": "DEATH_REGISTRATION_NUMBER"}
# What a webhook client allowed only these sections receives (OpenCRVS getPermissionsBundle).
SCOPED_SECTIONS = {
    "birth": ("child-details", "mother-details", "informant-details"),
    "death": ("deceased-details", "informant-details"),
}
JURISDICTIONS = ("STATE", "DISTRICT", "LOCATION_LEVEL_3")
DEATH_INFORMANTS = ("SPOUSE", "SON", "DAUGHTER", "OTHER_FAMILY_MEMBER")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def event_id(event: VitalEvent) -> str:
    """The event's id everywhere (feed, webhook payload, DCI reference): stable per event."""
    return stable_id("event", event.kind, event.registration_number)


def _draw(*parts: str) -> int:
    """A stable number from ``parts``: the same event always takes the same choices."""
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def tracking_id(event: VitalEvent) -> str:
    """OpenCRVS-style tracking id: B or D and six letters/digits, stable per event."""
    digest = hashlib.sha256(f"tracking|{event.registration_number}".encode()).digest()
    return event.kind[0].upper() + base64.b32encode(digest).decode()[:6]


def _datetime(day: date) -> str:
    return datetime.combine(day, time(9, 0), tzinfo=UTC).isoformat()


def _identifier(kind: str, value: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": IDENTIFIER_TYPES, "code": kind}]}, "value": value}


def _areas(code: str) -> list[str]:
    """``R01-D02-L003`` -> ``["R01", "R01-D02", "R01-D02-L003"]`` (region to locality)."""
    parts = code.split("-")
    return ["-".join(parts[: i + 1]) for i in range(len(parts))]


def _area_location(code: str) -> dict[str, Any]:
    chain = _areas(code)
    level = len(chain) - 1
    parent = f"Location/{stable_id('area', chain[-2])}" if level else "Location/0"
    return {
        "resourceType": "Location",
        "id": stable_id("area", code),
        "identifier": [
            {"system": SPEC_ID + "statistical-code", "value": f"ADMIN_STRUCTURE_{code}"},
            {
                "system": SPEC_ID + "jurisdiction-type",
                "value": JURISDICTIONS[min(level, len(JURISDICTIONS) - 1)],
            },
        ],
        "name": f"Area {code}",
        "description": code,
        "status": "active",
        "mode": "instance",
        "partOf": {"reference": parent},
        "type": [{"coding": [{"system": LOCATION_TYPES, "code": "ADMIN_STRUCTURE"}]}],
        "physicalType": {"coding": [{"code": "jdn", "display": "Jurisdiction"}]},
    }


def _place(event: VitalEvent) -> dict[str, Any] | None:
    """Where the event happened: the locality's health centre, or (one event in five) a home."""
    code = event.place_locality_code
    if not code:
        return None
    locality = f"Location/{stable_id('area', code)}"
    if _draw("place", event.registration_number) % 5 == 0:
        chain = _areas(code)
        return {
            "resourceType": "Location",
            "id": stable_id("home", event.registration_number),
            "mode": "instance",
            "type": [{"coding": [{"system": LOCATION_TYPES, "code": "PRIVATE_HOME"}]}],
            "partOf": {"reference": locality},
            "address": {
                "district": stable_id("area", chain[min(1, len(chain) - 1)]),
                "state": stable_id("area", chain[0]),
            },
        }
    return {
        "resourceType": "Location",
        "id": stable_id("facility", code),
        "identifier": [{"system": SPEC_ID + "internal-id", "value": f"HEALTH_FACILITY_{code}"}],
        "name": f"{code} Health Centre",
        "status": "active",
        "mode": "instance",
        "partOf": {"reference": locality},
        "type": [{"coding": [{"system": LOCATION_TYPES, "code": "HEALTH_FACILITY"}]}],
        "physicalType": {"coding": [{"code": "bu", "display": "Building"}]},
    }


def _home_address(code: str | None) -> list[dict[str, Any]]:
    if not code:
        return []
    chain = _areas(code)
    return [
        {
            "use": "home",
            "district": stable_id("area", chain[min(1, len(chain) - 1)]),
            "state": stable_id("area", chain[0]),
            "extension": [
                {
                    "url": PART_OF,
                    "valueReference": {"reference": f"Location/{stable_id('area', code)}"},
                }
            ],
        }
    ]


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


def _section(code: str, title: str, reference: str, system: str = DOC_SECTIONS) -> dict[str, Any]:
    return {
        "title": title,
        "code": {"coding": [{"system": system, "code": code}], "text": title},
        "entry": [{"reference": reference}],
    }


def _encounter(resource_id: str, event: VitalEvent, place: dict[str, Any] | None) -> dict[str, Any]:
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
    if place is not None:
        encounter["location"] = [{"location": {"reference": f"Location/{place['id']}"}}]
    return encounter


def _observation(resource_id: str, event: VitalEvent, encounter: str) -> dict[str, Any]:
    """One fact the hub does not read: birth weight, or the cause of death."""
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "encounter": {"reference": encounter},
    }
    if event.kind == "birth":
        grams = 2500 + _draw("weight", event.registration_number) % 1800
        observation["code"] = {
            "coding": [
                {"system": "http://loinc.org", "code": "3141-9", "display": "Body weight Measured"}
            ]
        }
        observation["valueQuantity"] = {
            "value": grams / 1000,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        }
    else:
        observation["code"] = {
            "coding": [{"system": "http://loinc.org", "code": "ICD10", "display": "Cause of death"}]
        }
        observation["valueCodeableConcept"] = {
            "coding": [
                {"system": "http://opencrvs.org/specs/cause-of-death", "code": "NATURAL_CAUSES"}
            ]
        }
    return observation


def build_bundle(event: VitalEvent) -> dict[str, Any]:
    """A strictly valid FHIR R4B document Bundle for one registered birth or death."""
    if event.kind not in TOPIC_BY_KIND:
        raise ValueError(f"unknown vital event kind {event.kind!r}")
    reg = event.registration_number
    ids = {
        role: stable_id(role, event.kind, reg)
        for role in (
            "bundle",
            "composition",
            "subject",
            "mother",
            "father",
            "informant",
            "informant_person",
            "task",
            "office",
            "encounter",
            "observation",
            "draft",
        )
    }
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
        subject["address"] = _home_address(event.place_locality_code)
        sections.append(_section("deceased-details", "Deceased details", urn["subject"]))
    entries.append((urn["subject"], subject))

    informant_of = urn["subject"]
    relationship = "OTHER"
    if event.mother is not None:
        mother = _patient(ids["mother"], event.mother, [])
        mother["address"] = _home_address(event.place_locality_code)
        entries.append((urn["mother"], mother))
        sections.append(_section("mother-details", "Mother's details", urn["mother"]))
        informant_of, relationship = urn["mother"], "MOTHER"
    if event.father is not None:
        entries.append((urn["father"], _patient(ids["father"], event.father, [])))
        sections.append(_section("father-details", "Father's details", urn["father"]))
    if event.kind == "death":
        # The informant's own details: a relative of the deceased, without an ID number here.
        relationship = DEATH_INFORMANTS[_draw("informant", reg) % len(DEATH_INFORMANTS)]
        informant_of = urn["informant_person"]
        entries.append(
            (
                informant_of,
                {
                    "resourceType": "Patient",
                    "id": ids["informant_person"],
                    "active": True,
                    "name": [{"use": "en", "family": event.person.family_name}],
                },
            )
        )
    informant = {
        "resourceType": "RelatedPerson",
        "id": ids["informant"],
        "relationship": [{"coding": [{"system": RELATIONSHIP, "code": relationship}]}],
        "patient": {"reference": informant_of},
    }
    entries.append((urn["informant"], informant))
    sections.append(_section("informant-details", "Informant's details", urn["informant"]))

    place = _place(event)
    encounter_code = "birth-encounter" if event.kind == "birth" else "death-encounter"
    entries.append((urn["encounter"], _encounter(ids["encounter"], event, place)))
    sections.append(
        _section(encounter_code, f"{event.kind.title()} encounter", urn["encounter"], SPEC_SECTIONS)
    )
    entries.append((urn["observation"], _observation(ids["observation"], event, urn["encounter"])))
    if place is not None:
        entries.append((f"urn:uuid:{place['id']}", place))
        for code in reversed(_areas(event.place_locality_code or "")):
            area = _area_location(code)
            entries.append((f"urn:uuid:{area['id']}", area))

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
            {"system": SPEC_ID + "draft-id", "value": ids["draft"]},
            {"system": f"{SPEC_ID}{event.kind}-tracking-id", "value": tracking_id(event)},
            {"system": f"{SPEC_ID}{event.kind}-registration-number", "value": reg},
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


# ---------------------------------------------------------------------------- real-world quirks


def variant(bundle: dict[str, Any], seed: int = 0) -> frozenset[str]:
    """How ``make_messy`` bends this bundle beyond the quirks every messy bundle has:
    ``provisional`` (no registration number yet) and/or ``scoped`` (trimmed to a webhook
    client's sections). About a quarter of bundles each, a few both; stable per seed."""
    pick = _draw("variant", str(seed), str(bundle.get("id"))) % 8
    return frozenset(
        {
            0: {"provisional"},
            1: {"provisional"},
            2: {"scoped"},
            3: {"scoped"},
            4: {"provisional", "scoped"},
        }.get(pick, set())
    )


def _kind(bundle: dict[str, Any]) -> str:
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Task":
            return str(entry["resource"]["code"]["coding"][0]["code"]).lower()
    raise ValueError("a vital event bundle has a Task")


def _unregistered(bundle: dict[str, Any]) -> None:
    """The record as it looked before registration: tracking and draft ids only."""
    number = None
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Task":
            kept = []
            for ident in resource["identifier"]:
                if ident["system"].endswith("registration-number"):
                    number = ident["value"]
                else:
                    kept.append(ident)
            resource["identifier"] = kept
            resource["businessStatus"]["coding"][0]["code"] = "VALIDATED"
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["identifier"] = [
                i for i in resource.get("identifier", []) if i.get("value") != number
            ]


def _trimmed(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    """What OpenCRVS sends a webhook client allowed only some sections: the entries those
    sections name, and the Task; the Composition itself is left out."""
    composition = bundle["entry"][0]["resource"]
    allowed = {
        section["entry"][0]["reference"].removeprefix("urn:uuid:")
        for section in composition["section"]
        if section["code"]["coding"][0]["code"] in SCOPED_SECTIONS[kind]
    }
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if e["resource"]["id"] in allowed or e["resource"]["resourceType"] == "Task"
    ]
    return bundle


def make_messy(bundle: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Return a copy with the real-world quirks a strict FHIR parser rejects (and, per
    ``variant``, without its registration number and/or trimmed like a scoped webhook)."""
    messy = copy.deepcopy(bundle)
    kind = _kind(messy)
    bends = variant(bundle, seed)
    if "provisional" in bends:
        _unregistered(messy)
    if "scoped" in bends:
        _trimmed(messy, kind)
    messy.pop("id", None)  # OpenCRVS bundles carry no id of their own
    messy.pop("identifier", None)
    list_family = _draw("family", str(seed), str(bundle.get("id"))) % 3 == 0
    rewrite: dict[str, str] = {}
    for index, entry in enumerate(messy["entry"]):
        resource = entry["resource"]
        kind_of, rid = resource["resourceType"], resource["id"]
        if kind_of in ("Patient", "RelatedPerson", "Encounter", "Location"):
            # References as relative or server URLs rather than urn:uuid.
            new_ref = f"{kind_of}/{rid}" if index % 2 else f"/fhir/{kind_of}/{rid}/_history/1"
            rewrite[entry["fullUrl"]] = new_ref
            entry["fullUrl"] = f"/fhir/{kind_of}/{rid}"
        if kind_of == "Patient":
            _messy_patient(resource, list_family)
        if kind_of in ("Location", "RelatedPerson"):
            key = "type" if kind_of == "Location" else "relationship"
            if isinstance(resource.get(key), list) and resource[key]:
                resource[key] = resource[key][0]  # an object where FHIR wants a list
        if kind_of == "Observation" and "encounter" in resource:
            resource["context"] = resource.pop("encounter")  # STU3's name, as OpenCRVS writes
        if kind_of == "Composition":
            resource["date"] = resource["date"][:10]
        if kind_of == "Task":
            resource["lastModified"] = resource["lastModified"][:10]
            resource["extension"] = [
                {
                    "url": "http://opencrvs.org/specs/extension/contact-relationship",
                    "valueString": "",
                }
            ]
    _rewrite_references(messy, rewrite)
    return messy


def _messy_patient(resource: dict[str, Any], list_family: bool) -> None:
    for name in resource.get("name", []):
        name["given"] = [*name.get("given", []), ""]  # empty middle name
        if list_family and isinstance(name.get("family"), str):
            name["family"] = [name["family"]]
    addresses = resource.get("address") or []
    for address in addresses:
        address["type"] = "PRIMARY_ADDRESS"
        address["line"] = ["", "", "", "", "", "URBAN"]
        address["city"] = ""
    if not addresses:
        resource["address"] = [{"type": "PRIMARY_ADDRESS", "line": ["", ""], "district": ""}]
    resource["extension"] = [
        {
            "url": "http://opencrvs.org/specs/extension/educational-attainment",
            "valuePeriod": {"start": "", "end": ""},
        },
    ]
    identifiers = resource.get("identifier", [])
    for identifier in identifiers:
        if identifier["type"]["coding"][0]["code"] == "NATIONAL_ID":
            identifier["type"] = "NATIONAL_ID"  # old OpenCRVS: bare string type
    if any(
        isinstance(i["type"], dict) and "REGISTRATION" in i["type"]["coding"][0]["code"]
        for i in identifiers
    ):
        identifiers.append(_identifier("BIRTH_CONFIGURABLE_IDENTIFIER_1", ""))
    if "deceasedDateTime" in resource:
        resource["deceasedDateTime"] = resource["deceasedDateTime"][:10]


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
