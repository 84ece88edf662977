"""Canonical household record -> DCI Social Registry ``Group`` record (``reg_records`` item).

Field names follow the SR Group / Member / SRPerson data objects (STANDARDS.md, the spec's
example): ``group_identifier``, ``group_type``, ``place``, ``poverty_score``,
``poverty_score_type``, ``group_head_info``, ``group_size``, ``member_list`` whose items carry
``member_identifier`` and ``demographic_info`` (``identifier``, ``name`` {``surname``,
``given_name``, ``second_name``}, ``sex``, ``birth_date``). Facts we do not hold (disability,
marital status) are left out rather than guessed. Pure: no database, no clock.
"""

from __future__ import annotations

from typing import Any

from standards.dci import codes

GROUP_TYPE = "household"
PERSON_IDENTIFIER_TYPE = "SRPID"  # our person id; a local extension, like SRN for groups


def _identifiers(person: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    for item in person.get("identifiers", []):
        kind = codes.SYSTEM_TO_IDENTIFIER_TYPE.get(item.get("system", ""))
        if kind and item.get("value"):
            found.append({"identifier_type": kind, "identifier_value": str(item["value"])})
    return found


def _compact(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v not in (None, "", [], {})}


def member_record(person: dict[str, Any]) -> dict[str, Any]:
    name = _compact(
        {
            "surname": person.get("family_name"),
            "given_name": person.get("given_name"),
            "second_name": person.get("other_names"),
        }
    )
    demographic = _compact(
        {
            "identifier": _identifiers(person),
            "name": name,
            "sex": person.get("sex"),
            "birth_date": person.get("birth_date"),
            "death_date": person.get("death_date"),
        }
    )
    return _compact(
        {
            "member_identifier": [
                {"identifier_type": PERSON_IDENTIFIER_TYPE, "identifier_value": person["id"]}
            ],
            "demographic_info": demographic,
            "relationship_head": person.get("relationship"),
            "registration_date": person.get("created_at"),
        }
    )


def group_record(
    household: dict[str, Any],
    *,
    poverty_score: float | None = None,
    poverty_score_type: str | None = None,
) -> dict[str, Any]:
    """The SR Group for ``household`` (as ``registry_core.records.household_record`` gives it)."""
    members = [member_record(p) for p in household.get("members", [])]
    head_id = household.get("head_person_id")
    head = next(
        (
            m
            for m, p in zip(members, household.get("members", []), strict=True)
            if p["id"] == head_id
        ),
        None,
    )
    place: dict[str, Any] = _compact(
        {"address": household.get("address"), "admin_area_code": household.get("admin_area_code")}
    )
    location = household.get("location")
    if location:
        place["geo"] = {"latitude": str(location["lat"]), "longitude": str(location["lon"])}
    return _compact(
        {
            "group_identifier": [
                {
                    "identifier_type": codes.GROUP_IDENTIFIER_TYPE,
                    "identifier_value": household.get("registry_number", household.get("id")),
                }
            ],
            "group_type": GROUP_TYPE,
            "place": place,
            "poverty_score": poverty_score,
            "poverty_score_type": poverty_score_type if poverty_score is not None else None,
            "group_head_info": head,
            "group_size": len(members),
            "member_list": members,
            "registration_date": household.get("created_at"),
            "last_updated": household.get("updated_at"),
        }
    )


def reg_records_list(data: Any) -> list[dict[str, Any]]:
    """The records of a ``data`` block, whichever way the sender wrote ``reg_records``.

    Spec files disagree: an array in the SR search response, one object in NotifyEventRequest
    and in the registry core file. Readers (our DCI clients, notify receivers) call this instead
    of assuming; anything else (missing, a scalar, non-object items) is dropped, not guessed.
    """
    records = data.get("reg_records") if isinstance(data, dict) else None
    if isinstance(records, dict):
        return [records]
    if isinstance(records, list):
        return [item for item in records if isinstance(item, dict)]
    return []
