"""The review queue and visit records over HTTP (``hub.review``).

- ``GET /api/v1/review/items``: the queue (filters state, area, submitter, form; paged).
  Supervisors see their areas; field workers see the items their own submissions fed (so the
  app can show "returned: photo of ID missing"); staff and auditors see everything.
- ``GET /api/v1/review/items/{id}``: one item with its history and submissions.
- ``POST /api/v1/review/items/{id}/decision``: verify, return or reject (reasons required to
  return or reject). Supervisors decide only in their areas; a refused transition is a 409
  naming the decisions the item allows.
- ``GET|POST /api/v1/households/{id}/visits``: who visited the household, when, where, with
  what outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from jsonschema import Draft202012Validator

from hub.api.audit_reads import audited_read
from hub.api.context import hub_registry, hub_runtime
from hub.api.problems import ApiProblem, BadRequest
from hub.api.requests import MAX_PAGE_SIZE, expected_version, int_arg, json_object
from hub.auth.flask_auth import AccessDenied, current_principal, require_area, requires
from hub.auth.roles import UNSCOPED_AREA_ROLES, Principal, Role
from hub.review import states
from hub.review.service import Actor, ItemNotFound, ReviewQueue, VersionMismatch, item_record
from hub.review.tables import VISIT_OUTCOMES
from registry_core.errors import NotFound

bp = Blueprint("review", __name__)

READERS = (Role.admin, Role.registry_staff, Role.supervisor, Role.field_worker, Role.auditor)
DECIDERS = (Role.admin, Role.registry_staff, Role.supervisor)
VISIT_WRITERS = (Role.admin, Role.registry_staff, Role.supervisor, Role.field_worker)

DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["decision"],
    "properties": {
        "decision": {"enum": list(states.DECISIONS)},
        "reasons": {
            "type": "array",
            "maxItems": 10,
            "items": {"type": "string", "minLength": 1, "maxLength": 500},
        },
        "version": {"type": "integer", "minimum": 1},
    },
    "if": {"properties": {"decision": {"enum": ["returned", "rejected"]}}},
    "then": {"required": ["reasons"], "properties": {"reasons": {"minItems": 1}}},
}
VISIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["visited_at", "outcome"],
    "properties": {
        "visited_at": {"type": "string", "format": "date-time", "maxLength": 40},
        "outcome": {"enum": list(VISIT_OUTCOMES)},
        "note": {"type": "string", "maxLength": 1000},
        "visited_by": {"type": "string", "minLength": 1, "maxLength": 200},
        "instance_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "location": {
            "type": "object",
            "additionalProperties": False,
            "required": ["lat", "lon"],
            "properties": {
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "accuracy_m": {"type": "number", "minimum": 0, "maximum": 100000},
            },
        },
    },
    "if": {"properties": {"outcome": {"const": "other"}}},
    "then": {"required": ["note"]},
}
_DECISION = Draft202012Validator(DECISION_SCHEMA)
_VISIT = Draft202012Validator(VISIT_SCHEMA)
QUEUE = ReviewQueue()


class Conflict(ApiProblem):
    status = 409
    title = "Conflict"
    kind = "review-transition"


class StaleVersion(ApiProblem):
    status = 409
    title = "Conflict"
    kind = "conflict"


class UnknownItem(ApiProblem):
    status = 404
    title = "Not Found"
    kind = "not-found"


def _validate(validator: Draft202012Validator, body: dict[str, Any], what: str) -> None:
    """A 400 that names each path and rule, never echoing a value."""
    errors = sorted(validator.iter_errors(body), key=lambda e: e.json_path)
    if errors:
        listing = "; ".join(
            f"{e.json_path}: violates {e.validator}"
            + (f" {e.validator_value}" if e.validator in ("enum", "required", "const") else "")
            for e in errors
        )
        raise BadRequest(f"invalid {what}: {listing}")


def _actor_role(principal: Principal) -> str:
    for role in (Role.admin, Role.registry_staff, Role.supervisor, Role.field_worker):
        if role in principal.roles:
            return role.value
    return sorted(principal.roles)[0].value


def _may_read(principal: Principal, item: Any, submitters: set[str]) -> None:
    if principal.has_any(UNSCOPED_AREA_ROLES):
        return
    if Role.supervisor in principal.roles and principal.may_touch_area(item.admin_area_code):
        return
    if principal.subject in submitters:
        return
    raise AccessDenied(_outside(principal, item.admin_area_code))


def _outside(principal: Principal, area: str | None) -> str:
    if area is None:
        return "This item has no administrative area; only registry staff may act on it."
    return (
        f"This item is in area {area}, outside the areas you supervise "
        f"({', '.join(principal.admin_areas) or 'none'})."
    )


def _may_decide(principal: Principal, item: Any) -> None:
    if principal.has_any((Role.admin, Role.registry_staff)):
        return
    if Role.supervisor in principal.roles and principal.may_touch_area(item.admin_area_code):
        return
    raise AccessDenied(_outside(principal, item.admin_area_code))


@bp.get("/api/v1/review/items")
@requires(*READERS)
@audited_read()
def list_items() -> Response:
    principal = current_principal()
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    state = request.args.get("state") or None
    if state is not None and state not in states.STATES:
        raise BadRequest(f"state must be one of {', '.join(states.STATES)}")
    filters = {
        "state": state,
        "area": (request.args.get("area") or "")[:64] or None,
        "submitter": (request.args.get("submitter") or "")[:200] or None,
        "form": (request.args.get("form") or "")[:200] or None,
    }
    scope: dict[str, Any] = {}
    if not principal.has_any(UNSCOPED_AREA_ROLES):
        if Role.supervisor in principal.roles:
            scope["area_prefixes"] = list(principal.admin_areas)
        else:
            scope["own_submissions_of"] = principal.subject
    with hub_runtime().sessions() as session:
        items, total = QUEUE.list_items(session, **filters, **scope, limit=limit, offset=offset)
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


def _item_or_404(session: Any, item_id: Any, *, lock: bool = False) -> Any:
    try:
        return QUEUE.load(session, item_id, lock=lock)
    except ItemNotFound:
        raise UnknownItem(f"no review item {item_id}") from None


@bp.get("/api/v1/review/items/<uuid:item_id>")
@requires(*READERS)
@audited_read()
def get_item(item_id: Any) -> Response:
    principal = current_principal()
    with hub_runtime().sessions() as session:
        item = _item_or_404(session, item_id)
        _may_read(principal, item, QUEUE.submitters(session, item.id))
        record = item_record(session, item, history=True)
    response = jsonify(record)
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


@bp.post("/api/v1/review/items/<uuid:item_id>/decision")
@requires(*DECIDERS)
def decide(item_id: Any) -> Response:
    body = json_object()
    _validate(_DECISION, body, "decision")
    version = expected_version(body)
    principal = current_principal()
    actor = Actor(principal.subject, _actor_role(principal), "api")
    with hub_runtime().sessions() as session, session.begin():
        item = _item_or_404(session, item_id, lock=True)
        _may_decide(principal, item)
        try:
            record = QUEUE.decide(
                session,
                item.id,
                body["decision"],
                body.get("reasons") or [],
                actor,
                expected_version=version,
            )
        except states.TransitionRefused as exc:
            raise Conflict(str(exc), allowed_decisions=list(exc.allowed)) from None
        except VersionMismatch as exc:
            raise StaleVersion(str(exc), current_version=exc.current) from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    response = jsonify(record)
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


def _household_area(household_id: str) -> str | None:
    try:
        area: str | None = hub_registry().get_household(household_id)["admin_area_code"]
    except NotFound:
        raise UnknownItem(f"no household {household_id}") from None
    return area


@bp.get("/api/v1/households/<uuid:household_id>/visits")
@requires(*READERS)
@audited_read()
def list_visits(household_id: Any) -> Response:
    require_area(_household_area(str(household_id)))
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    with hub_runtime().sessions() as session:
        items, total = QUEUE.visits_for(session, household_id, limit=limit, offset=offset)
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.post("/api/v1/households/<uuid:household_id>/visits")
@requires(*VISIT_WRITERS)
def record_visit(household_id: Any) -> Response:
    body = json_object()
    _validate(_VISIT, body, "visit")
    area = _household_area(str(household_id))
    require_area(area)
    principal = current_principal()
    visited_by = body.get("visited_by") or principal.subject
    if visited_by != principal.subject and not principal.has_any(
        (Role.admin, Role.registry_staff, Role.supervisor)
    ):
        raise AccessDenied("A field worker records their own visits only (leave out visited_by).")
    try:
        visited_at = datetime.fromisoformat(body["visited_at"].replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("visited_at must be an RFC 3339 time, e.g. 2026-03-01T09:30:00Z") from None
    if visited_at.tzinfo is None:
        raise BadRequest("visited_at needs a time zone (e.g. a trailing Z for UTC)")
    location = body.get("location") or {}
    with hub_runtime().sessions() as session, session.begin():
        try:
            record = QUEUE.record_visit(
                session,
                household_id,
                area,
                visited_by=visited_by,
                visited_at=visited_at,
                outcome=body["outcome"],
                recorded_by=principal.subject,
                lat=location.get("lat"),
                lon=location.get("lon"),
                accuracy_m=location.get("accuracy_m"),
                note=body.get("note"),
                instance_id=body.get("instance_id"),
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    response = jsonify(record)
    response.status_code = 201
    return response
