"""Corrections through change requests over HTTP (``hub.corrections``, docs/corrections.md).

- ``POST /api/v1/change-requests``: propose a correction (field workers and supervisors in
  their areas, registry staff); registry staff may apply a configured small correction
  directly (``apply_directly``, with ``evidence_reference``).
- ``GET /api/v1/change-requests``: the queue (filters state, area, household_id; paged);
  area-scoped callers see their areas.
- ``GET /api/v1/change-requests/{id}``: one request with its history.
- ``POST /api/v1/change-requests/{id}/approve|reject|withdraw``: decide (reason required to
  reject or withdraw); approval applies the correction in the same transaction.
- ``GET /api/v1/households/{id}/change-requests``: a household's corrections, with history.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from jsonschema import Draft202012Validator

from hub.api.audit_reads import audited_read
from hub.api.context import hub_registry, hub_runtime
from hub.api.problems import ApiProblem, BadRequest
from hub.api.requests import MAX_PAGE_SIZE, expected_version, int_arg, json_object
from hub.auth.flask_auth import AccessDenied, current_principal, require_area, requires
from hub.auth.roles import Principal, Role
from hub.corrections import service, targets
from standards.validation import SchemaViolation

bp = Blueprint("change_requests", __name__, url_prefix="/api/v1")

READERS = (Role.admin, Role.registry_staff, Role.supervisor, Role.field_worker, Role.auditor)

PROPOSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["household_id", "target", "old_value", "proposed_value", "reason", "channel"],
    "properties": {
        "household_id": {"type": "string", "format": "uuid", "maxLength": 36},
        "person_id": {"type": "string", "format": "uuid", "maxLength": 36},
        "target": {"type": "string", "maxLength": 100, "pattern": targets.TARGET_PATTERN},
        "old_value": {"type": ["string", "number", "boolean", "object", "null"]},
        "proposed_value": {"type": ["string", "number", "boolean", "object"]},
        "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
        "evidence_reference": {"type": "string", "minLength": 1, "maxLength": 200},
        "on_behalf_of": {"enum": list(service.ON_BEHALF_OF), "default": "beneficiary"},
        "channel": {"enum": list(service.CHANNELS)},
        "apply_directly": {"type": "boolean", "default": False},
    },
}
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {"type": "string", "maxLength": 1000},
        "version": {"type": "integer", "minimum": 1},
    },
}
_PROPOSAL = Draft202012Validator(
    PROPOSAL_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)
_DECISION = Draft202012Validator(DECISION_SCHEMA)


class Conflict(ApiProblem):
    status = 409
    title = "Conflict"
    kind = "conflict"


class UnknownRequest(ApiProblem):
    status = 404
    title = "Not Found"
    kind = "not-found"


def _validate(validator: Draft202012Validator, body: dict[str, Any], what: str) -> None:
    """A 400 that names each path and rule, never echoing a value (it may be personal)."""
    errors = sorted(validator.iter_errors(body), key=lambda e: e.json_path)
    if errors:
        listing = "; ".join(
            f"{e.json_path}: violates {e.validator}"
            + (f" {e.validator_value}" if e.validator in ("enum", "required") else "")
            for e in errors
        )
        raise BadRequest(f"invalid {what}: {listing}")


def _direct_targets() -> tuple[str, ...]:
    return tuple(hub_runtime().settings.corrections.direct_targets)


def _scope(principal: Principal) -> list[str] | None:
    return list(principal.admin_areas) if principal.area_scoped else None


def _run(work: Any) -> dict[str, Any]:
    """Run ``work(session)`` in one transaction; service errors become problems."""
    try:
        with hub_runtime().sessions() as session, session.begin():
            result: dict[str, Any] = work(session)
            return result
    except service.RequestNotFound as exc:
        raise UnknownRequest(str(exc)) from None
    except service.NotAllowed as exc:
        raise AccessDenied(str(exc)) from None
    except service.StaleValue as exc:
        raise Conflict(str(exc), current_value=exc.current) from None
    except (service.Outranked, service.WrongState) as exc:
        raise Conflict(str(exc)) from None
    except SchemaViolation:
        raise  # 422 with every violation (hub.api.problems)
    except (targets.TargetProblem, ValueError) as exc:
        raise BadRequest(str(exc)) from None


@bp.post("/change-requests")
@requires(*service.PROPOSER_ROLES)
def propose() -> Response:
    body = json_object()
    _validate(_PROPOSAL, body, "change request")
    proposal = service.Proposal(
        household_id=str(uuid.UUID(body["household_id"])),
        person_id=str(uuid.UUID(body["person_id"])) if body.get("person_id") else None,
        target=body["target"],
        old_value=body["old_value"],
        proposed_value=body["proposed_value"],
        reason=body["reason"].strip(),
        on_behalf_of=body.get("on_behalf_of", "beneficiary"),
        channel=body["channel"],
        evidence_reference=body.get("evidence_reference"),
        apply_directly=bool(body.get("apply_directly", False)),
    )
    principal = current_principal()
    record = _run(
        lambda session: service.propose(
            session,
            hub_registry(),
            proposal,
            principal,
            direct_targets=_direct_targets(),
        )
    )
    response = jsonify(record)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_request", request_id=record["id"])
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


@bp.get("/change-requests")
@requires(*READERS)
@audited_read()
def list_requests() -> Response:
    principal = current_principal()
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    state = request.args.get("state") or None
    if state is not None and state not in service.STATES:
        raise BadRequest(f"state must be one of {', '.join(service.STATES)}")
    household = request.args.get("household_id") or None
    try:
        household_id = uuid.UUID(household) if household else None
    except ValueError:
        raise BadRequest("household_id must be a UUID") from None
    with hub_runtime().sessions() as session:
        items, total = service.list_requests(
            session,
            state=state,
            area=(request.args.get("area") or "")[:64] or None,
            household_id=household_id,
            area_prefixes=_scope(principal),
            limit=limit,
            offset=offset,
        )
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.get("/change-requests/<uuid:request_id>")
@requires(*READERS)
@audited_read()
def get_request(request_id: Any) -> Response:
    principal = current_principal()

    def work(session: Any) -> dict[str, Any]:
        found = service.load(session, request_id)
        service.may_read(principal, found)
        return service.record(session, found, history=True)

    record = _run(work)
    response = jsonify(record)
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


@bp.post("/change-requests/<uuid:request_id>/approve")
@requires(*service.REVIEWER_ROLES)
def approve(request_id: Any) -> Response:
    return _decide(request_id, "approve")


@bp.post("/change-requests/<uuid:request_id>/reject")
@requires(*service.REVIEWER_ROLES)
def reject(request_id: Any) -> Response:
    return _decide(request_id, "reject")


@bp.post("/change-requests/<uuid:request_id>/withdraw")
@requires(*service.PROPOSER_ROLES)
def withdraw(request_id: Any) -> Response:
    return _decide(request_id, "withdraw")


def _decide(request_id: Any, action: str) -> Response:
    body = json_object() if request.content_length else {}
    _validate(_DECISION, body, "decision")
    version = expected_version(body)
    principal = current_principal()

    def work(session: Any) -> dict[str, Any]:
        service.may_read(principal, service.load(session, request_id))
        return service.decide(
            session,
            hub_registry(),
            request_id,
            action,
            body.get("reason"),
            principal,
            expected_version=version,
        )

    record = _run(work)
    response = jsonify(record)
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


@bp.get("/households/<uuid:household_id>/change-requests")
@requires(*READERS)
@audited_read()
def household_history(household_id: Any) -> Response:
    require_area(hub_registry().get_household(str(household_id))["admin_area_code"])
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    with hub_runtime().sessions() as session:
        items, total = service.list_requests(
            session, household_id=household_id, limit=limit, offset=offset
        )
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})
