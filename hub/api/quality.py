"""Data-quality issues over HTTP (``hub.quality``, docs/data-quality.md).

- ``GET /api/v1/quality/issues``: issues, latest opened first (filters kind, state, severity,
  area prefix, household; paged).
- ``GET /api/v1/quality/issues/{id}``: one issue.
- ``POST /api/v1/quality/issues/{id}/acknowledge|resolve|dismiss``: a person's action, with
  an optional reason (required to dismiss). A refused transition is a 409 naming the actions
  the issue allows.
- ``GET /api/v1/quality/summary``: live issues by kind and area, by state, and the daily trend.
- ``POST /api/v1/quality/scans``: start a full scan in the background (202); 409 while one runs.
  ``GET /api/v1/quality/scans/{id}``: its progress.
- ``GET /api/v1/households/{id}/quality``: the issues of a household and its current members.

Admins and registry staff read and act everywhere; auditors read everywhere; supervisors read
and act within their areas (an issue without an area is for unscoped staff only).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request
from jsonschema import Draft202012Validator

from hub.api.audit_reads import audited_read
from hub.api.context import hub_runtime
from hub.api.problems import ApiProblem, BadRequest
from hub.api.recertification import area_prefixes
from hub.api.requests import MAX_PAGE_SIZE, int_arg, json_object
from hub.auth.flask_auth import AccessDenied, current_principal, require_area, requires
from hub.auth.roles import Principal, Role
from hub.quality import scan as scans
from hub.quality import service
from hub.quality.rules import Kind, Severity
from hub.quality.tables import DataQualityScan, IssueState
from registry_core.errors import NotFound
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

bp = Blueprint("quality", __name__, url_prefix="/api/v1")

READERS = (Role.admin, Role.registry_staff, Role.supervisor, Role.auditor)
ACTORS = (Role.admin, Role.registry_staff, Role.supervisor)
SCANNERS = (Role.admin, Role.registry_staff)
ACTIONS = tuple(service.TRANSITIONS)

ACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"reason": {"type": "string", "maxLength": 500}},
}
_ACTION = Draft202012Validator(ACTION_SCHEMA)


class TransitionConflict(ApiProblem):
    status = 409
    title = "Conflict"
    kind = "quality-transition"


class ScanConflict(ApiProblem):
    status = 409
    title = "Conflict"
    kind = "quality-scan-running"


class UnknownIssue(ApiProblem):
    status = 404
    title = "Not Found"
    kind = "not-found"


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    if value not in allowed:
        raise BadRequest(f"query parameter {name} must be one of {', '.join(allowed)}")
    return value


def _uuid_arg(name: str) -> uuid.UUID | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be a UUID") from None


def _filter() -> service.IssueFilter:
    area = (request.args.get("area") or "").strip()[:64] or None
    return service.IssueFilter(
        kind=_choice("kind", Kind.ALL),
        state=_choice("state", IssueState.ALL),
        severity=_choice("severity", Severity.ALL),
        area=area,
        household_id=_uuid_arg("household_id"),
        area_prefixes=area_prefixes(area),
    )


def _may_touch(principal: Principal, area: str | None) -> None:
    if not principal.may_touch_area(area):
        raise AccessDenied(
            "This issue is outside the areas you cover."
            if area
            else "This issue has no administrative area; only registry staff may see it."
        )


@bp.get("/quality/issues")
@requires(*READERS)
@audited_read()
def list_issues() -> Response:
    where = _filter()
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    with hub_runtime().sessions() as session:
        items, total = service.list_issues(session, where, limit=limit, offset=offset)
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.get("/quality/issues/<uuid:issue_id>")
@requires(*READERS)
@audited_read()
def get_issue(issue_id: uuid.UUID) -> Response:
    with hub_runtime().sessions() as session:
        try:
            row = service.load_issue(session, issue_id)
        except service.IssueNotFound:
            raise UnknownIssue("No data-quality issue has this id.") from None
        _may_touch(current_principal(), row.admin_area_code)
        return jsonify(service.issue_record(row))


def _reason() -> str | None:
    if not request.get_data(cache=True):
        return None
    body = json_object()
    errors = sorted(_ACTION.iter_errors(body), key=lambda e: e.json_path)
    if errors:
        listing = "; ".join(f"{e.json_path}: violates {e.validator}" for e in errors)
        raise BadRequest(f"invalid action body: {listing}")
    reason = body.get("reason")
    return str(reason) if reason is not None else None


def act(issue_id: uuid.UUID, action: str) -> Response:
    """Acknowledge, resolve or dismiss one issue (the three routes below)."""
    reason = _reason()
    principal = current_principal()
    with hub_runtime().sessions() as session, session.begin():
        try:
            row = service.load_issue(session, issue_id, lock=True)
        except service.IssueNotFound:
            raise UnknownIssue("No data-quality issue has this id.") from None
        _may_touch(principal, row.admin_area_code)
        try:
            service.change_state(row, action, principal.subject, reason, utcnow())
        except service.TransitionRefused as exc:
            raise TransitionConflict(
                f"Not done: {exc}.", allowed=service.allowed_actions(row.state)
            ) from None
        record = service.issue_record(row)
    log.info("quality issue %s: %s by %s", issue_id, action, principal.kind)
    return jsonify(record)


def _action_view(action: str) -> Any:
    def view(issue_id: uuid.UUID) -> Response:
        return act(issue_id, action)

    view.__name__ = f"issue_{action}"
    return requires(*ACTORS)(view)


for _action in ACTIONS:
    bp.add_url_rule(
        f"/quality/issues/<uuid:issue_id>/{_action}",
        endpoint=f"issue_{_action}",
        view_func=_action_view(_action),
        methods=["POST"],
    )


@bp.get("/quality/summary")
@requires(*READERS)
def summary() -> Response:
    where = _filter()
    level = int_arg("level", 1, 1, 6)
    days = int_arg("days", 30, 1, 366)
    with hub_runtime().sessions() as session:
        found = service.summary(session, where, level=level, days=days, today=utcnow().date())
    return jsonify({**found, "level": level})


@bp.post("/quality/scans")
@requires(*SCANNERS)
def start_scan() -> tuple[Response, int, dict[str, str]]:
    runtime = hub_runtime()
    requested_by = f"api:{current_principal().subject}"
    try:
        state = scans.start_in_background(runtime.sessions, runtime.settings.quality, requested_by)
    except scans.ScanRunning as exc:
        raise ScanConflict(
            "A data-quality scan is already running; follow it instead.",
            scan_id=str(exc.scan_id),
        ) from None
    return jsonify(state), 202, {"Location": f"/api/v1/quality/scans/{state['id']}"}


@bp.get("/quality/scans/<uuid:scan_id>")
@requires(*READERS)
def get_scan(scan_id: uuid.UUID) -> Response:
    with hub_runtime().sessions() as session:
        scan = session.get(DataQualityScan, scan_id)
        if scan is None:
            raise UnknownIssue("No data-quality scan has this id.")
        return jsonify(scans.progress(scan))


@bp.get("/households/<uuid:household_id>/quality")
@requires(*READERS)
@audited_read()
def household_issues(household_id: uuid.UUID) -> Response:
    runtime = hub_runtime()
    try:
        household = runtime.registry.get_household(str(household_id))
    except NotFound:
        raise UnknownIssue("No household has this id.") from None
    require_area(household.get("admin_area_code"))
    closed = request.args.get("include_closed", "false").lower() in ("1", "true", "yes")
    with runtime.sessions() as session:
        items = service.issues_for_household(session, household_id, include_closed=closed)
    return jsonify({"household_id": str(household_id), "items": items})
