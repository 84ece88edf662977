"""Consent over HTTP: record, withdraw and list the consents a person or household gave.

- ``POST /api/v1/consents``: record one consent of a person or a household for a program and
  purpose, with the channel it was given through and a reference to its evidence. The caller
  is kept as who recorded it, the time as when.
- ``POST /api/v1/consents/{id}/withdraw``: withdraw it from now on, with a reason. The row
  stays (with who withdrew it, when and why): that is the history.
- ``GET /api/v1/consents/{id}``, ``GET /api/v1/persons/{id}/consents``,
  ``GET /api/v1/households/{id}/consents``: a consent, or a subject's every consent, active and
  withdrawn, oldest first (a person's list includes their households' consents: those cover
  them too).

Registry staff and admins act everywhere, field workers in their own areas only; auditors and
supervisors read. What a withdrawal changes for programs is decided by one rule,
``registry_core.consent``, which dispatch, DCI search and FHIR read at every request: nothing
is cached, so the next notification, search or read already follows it (docs/consent.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, url_for
from jsonschema import Draft202012Validator

from hub.api.audit_reads import audited_read
from hub.api.context import hub_registry
from hub.api.problems import BadRequest
from hub.api.requests import caller_source, json_object
from hub.auth.flask_auth import current_principal, require_area, requires
from hub.auth.roles import Role
from registry_core.service import Registry

bp = Blueprint("consents", __name__)

READERS = (Role.admin, Role.registry_staff, Role.field_worker, Role.supervisor, Role.auditor)
WRITERS = (Role.admin, Role.registry_staff, Role.field_worker)

_CODE = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9_.:-]+$"}
_UUID = {"type": "string", "format": "uuid", "minLength": 36, "maxLength": 36}
# What a consent says, given on its own or with a registration (``CONSENT_AT_REGISTRATION``).
_TERMS: dict[str, Any] = {
    "program": _CODE,
    "purpose": _CODE,
    "channel": {"enum": ["paper", "verbal", "electronic", "sms", "form", "other"]},
    "evidence_reference": {"type": "string", "minLength": 1, "maxLength": 256},
}
CONSENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["program", "purpose", "channel"],
    "properties": {**_TERMS, "person_id": _UUID, "household_id": _UUID},
    "oneOf": [{"required": ["person_id"]}, {"required": ["household_id"]}],
}
WITHDRAW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
}
# ``consents`` of ``POST /api/v1/households``: for the household, or for one member (by its
# position in ``members``).
CONSENT_AT_REGISTRATION: dict[str, Any] = {
    "type": "array",
    "maxItems": 20,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["program", "purpose", "channel"],
        "properties": {**_TERMS, "member": {"type": "integer", "minimum": 0, "maximum": 99}},
    },
}
_CONSENT = Draft202012Validator(CONSENT_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
_WITHDRAW = Draft202012Validator(WITHDRAW_SCHEMA)
_AT_REGISTRATION = Draft202012Validator(CONSENT_AT_REGISTRATION)


def validate(validator: Draft202012Validator, body: Any, what: str) -> None:
    """A 400 that names each path and rule, never echoing a value."""
    errors = sorted(validator.iter_errors(body), key=lambda e: e.json_path)
    if errors:
        listing = "; ".join(
            f"{e.json_path}: violates {e.validator}"
            + (f" {e.validator_value}" if e.validator in ("enum", "required") else "")
            for e in errors
        )
        raise BadRequest(f"invalid {what}: {listing}")


def validate_at_registration(consents: Any) -> None:
    """Check a registration's ``consents`` before anything is written."""
    validate(_AT_REGISTRATION, consents, "consents")


def recorder() -> str:
    """Who records or withdraws a consent: the caller's account (or API client) and kind."""
    principal = current_principal()
    return f"{principal.kind}:{principal.subject}"[:200]


def record_at_registration(
    registry: Registry, household: Mapping[str, Any], consents: list[dict[str, Any]]
) -> None:
    """Record a registration's consents for the household just registered (``registry`` works
    inside the registration's transaction, so both commit together or not at all)."""
    members = household.get("members", [])
    for item in consents:
        subject: dict[str, Any] = {"household_id": household["id"]}
        if "member" in item:
            if item["member"] >= len(members):
                raise BadRequest(
                    f"consents: member {item['member']} is not a position in members "
                    f"(0 to {len(members) - 1})"
                )
            subject = {"person_id": members[item["member"]]["id"]}
        registry.grant_consent(
            item["program"],
            item["purpose"],
            item["channel"],
            caller_source(),
            evidence_reference=item.get("evidence_reference"),
            recorded_by=recorder(),
            **subject,
        )


def _subject_area(consent: Mapping[str, Any]) -> str | None:
    registry = hub_registry()
    if consent.get("household_id"):
        return registry.get_household(consent["household_id"])["admin_area_code"]
    return registry.person_household_area(consent["person_id"])


@bp.post("/api/v1/consents")
@requires(*WRITERS)
def record_consent() -> Response:
    body = json_object()
    validate(_CONSENT, body, "consent")
    registry = hub_registry()
    if "household_id" in body:
        require_area(registry.get_household(body["household_id"])["admin_area_code"])
    else:
        require_area(registry.person_household_area(registry.get_person(body["person_id"])["id"]))
    result = registry.grant_consent(
        body["program"],
        body["purpose"],
        body["channel"],
        caller_source(),
        person_id=body.get("person_id"),
        household_id=body.get("household_id"),
        evidence_reference=body.get("evidence_reference"),
        recorded_by=recorder(),
    )
    consent_id = result.record["consent_id"]
    response = jsonify(registry.get_consent(consent_id))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_consent", consent_id=consent_id)
    return response


@bp.post("/api/v1/consents/<uuid:consent_id>/withdraw")
@requires(*WRITERS)
def withdraw_consent(consent_id: Any) -> Response:
    body = json_object()
    validate(_WITHDRAW, body, "withdrawal")
    registry = hub_registry()
    require_area(_subject_area(registry.get_consent(consent_id)))
    registry.revoke_consent(consent_id, caller_source(), body["reason"], recorder())
    return jsonify(registry.get_consent(consent_id))


@bp.get("/api/v1/consents/<uuid:consent_id>")
@requires(*READERS)
@audited_read()
def get_consent(consent_id: Any) -> Response:
    registry = hub_registry()
    consent = registry.get_consent(consent_id)
    require_area(_subject_area(consent))
    return jsonify(consent)


@bp.get("/api/v1/persons/<uuid:person_id>/consents")
@requires(*READERS)
@audited_read()
def person_consents(person_id: Any) -> Response:
    registry = hub_registry()
    registry.get_person(person_id)  # 404 before the area check
    require_area(registry.person_household_area(person_id))
    return jsonify({"items": registry.list_consents(person_id=person_id)})


@bp.get("/api/v1/households/<uuid:household_id>/consents")
@requires(*READERS)
@audited_read()
def household_consents(household_id: Any) -> Response:
    registry = hub_registry()
    require_area(registry.get_household(household_id)["admin_area_code"])
    return jsonify({"items": registry.list_consents(household_id=household_id)})
