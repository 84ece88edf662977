"""Persons: read one, find by identifier, read the provenance of their fields."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from hub.api.audit_reads import record_read
from hub.api.context import hub_registry
from hub.api.problems import BadRequest
from hub.api.visibility import shape_person
from hub.auth.flask_auth import current_principal, require_area, requires
from hub.auth.roles import UNSCOPED_AREA_ROLES, Role
from hub.readaudit.records import ReadRecords
from registry_core.errors import InvalidRecord

bp = Blueprint("persons", __name__, url_prefix="/api/v1/persons")

READERS = (Role.admin, Role.registry_staff, Role.field_worker, Role.auditor)


def _require_person_in_scope(person_id: str) -> None:
    if current_principal().has_any(UNSCOPED_AREA_ROLES):
        return
    require_area(hub_registry().person_household_area(person_id))


@bp.get("/<uuid:person_id>")
@requires(*READERS)
def get_person(person_id: Any) -> Response:
    record = hub_registry().get_person(str(person_id))
    survivor = hub_registry().survivor_of(str(person_id))
    if survivor is not None:
        return _moved(str(person_id), survivor)
    _require_person_in_scope(str(person_id))
    record_read(ReadRecords.of_persons([record]), "api")
    response = jsonify(shape_person(record))
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


def _moved(person_id: str, survivor: str) -> Response:
    """A person merged into another: 307 to the survivor (an unmerge can bring the record
    back, so the move is not permanent), with the survivor's id in the body too."""
    _require_person_in_scope(survivor)
    location = url_for(".get_person", person_id=survivor)
    response = jsonify(
        {
            "id": person_id,
            "merged_into": survivor,
            "detail": f"person {person_id} was merged into {survivor}; read that record",
            "location": location,
        }
    )
    response.status_code = 307
    response.headers["Location"] = location
    return response


@bp.get("")
@requires(*READERS)
def find_persons() -> Response:
    """``?identifier=system|value``: exact look-up through the keyed hash, never a scan."""
    raw = request.args.get("identifier", "")
    system, sep, value = raw.partition("|")
    if not sep or not system or not value:
        raise BadRequest("give identifier=<system>|<value>, e.g. identifier=national_id|1234567897")
    if len(value) > 64:
        raise BadRequest("identifier values are at most 64 characters")
    try:  # the value is normalised and checked by the country's identifier profile
        found = hub_registry().find_person_by_identifier(system, value)
    except InvalidRecord as exc:
        raise BadRequest("; ".join(v.message for v in exc.violations)) from None
    items = []
    if found is not None:
        principal = current_principal()
        if principal.has_any(UNSCOPED_AREA_ROLES) or principal.may_touch_area(
            hub_registry().person_household_area(found["id"])
        ):
            items.append(shape_person(found))
    # The kind of identifier searched, never its value.
    record_read(ReadRecords.of_persons(items), "api", query_kind=f"identifier:{system}"[:64])
    return jsonify({"items": items, "total": len(items)})


@bp.get("/<uuid:person_id>/provenance")
@requires(Role.admin, Role.registry_staff, Role.auditor)
def person_provenance(person_id: Any) -> Response:
    record_read(ReadRecords((), (str(person_id),), 1), "api", query_kind="provenance")
    return jsonify({"items": hub_registry().provenance("person", str(person_id))})
