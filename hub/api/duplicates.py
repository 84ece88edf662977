"""Duplicate people over HTTP: the match review queue, merges and the duplicate scan.

- ``GET /api/v1/match-reviews`` (``status``, ``kind``, paged) and ``GET .../{id}``: the queue;
  one review shows each candidate person side by side with the provenance of every field and
  their current household.
- ``POST /api/v1/match-reviews/{id}/merge`` (``reason``; ``survivor_id`` optional, default the
  record registered first; ``force_reason`` to merge an unsafe pair, administrators only) and
  ``POST .../{id}/keep-apart`` (``reason``). A decided review, an incoming-record review, an
  already merged person or an unsafe pair is a 409 that says what to do.
- ``GET /api/v1/merges/{id}``, ``POST /api/v1/merges/{id}/unmerge`` (``reason``).
- ``POST /api/v1/duplicates/scans`` (202, a background job), ``GET .../scans`` and
  ``GET .../scans/{id}``: its state, progress and candidates found.

Registry staff and administrators decide; auditors read (identifiers masked). Supervisors
list, read, merge and keep apart the pairs whose two people both live in households of their
areas (``hub.duplicates.areas``); forcing, undoing merges and scans stay with staff. Field
workers are not admitted.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from jsonschema import Draft202012Validator

from hub.api.audit_reads import audited_read
from hub.api.context import hub_registry, hub_runtime
from hub.api.problems import ApiProblem, BadRequest
from hub.api.requests import MAX_PAGE_SIZE, int_arg, json_object
from hub.api.visibility import shape_person
from hub.auth.flask_auth import AccessDenied, current_principal, requires
from hub.auth.roles import Role
from hub.duplicates.areas import (
    OutsideAreas,
    area_check,
    detail_areas,
    pair_inside,
    supervised_pairs,
)
from hub.duplicates.runner import ScanAlreadyActive, ScanRunner, scan_matcher
from registry_core.crypto import mask_identifier
from registry_core.services.merges import REVIEW_STATUSES, Actor, MergeRefused, UnsafeMerge

bp = Blueprint("duplicates", __name__)

READERS = (Role.admin, Role.registry_staff, Role.auditor)
DECIDERS = (Role.admin, Role.registry_staff)
FORCERS = (Role.admin,)
# Pairs (the queue, one pair, merge, keep apart): supervisors too, inside their areas.
PAIR_READERS = (*READERS, Role.supervisor)
PAIR_DECIDERS = (*DECIDERS, Role.supervisor)
RUNNER_KEY = "srhub_duplicate_scans"

_REASON = {"type": "string", "minLength": 3, "maxLength": 500, "pattern": r"\S"}
_UUID = {"type": "string", "format": "uuid", "maxLength": 36}
MERGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {"reason": _REASON, "survivor_id": _UUID, "force_reason": _REASON},
}
REASON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {"reason": _REASON},
}
SCAN_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}
_MERGE = Draft202012Validator(MERGE_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
_REASON_BODY = Draft202012Validator(REASON_SCHEMA)
_SCAN = Draft202012Validator(SCAN_SCHEMA)


class Conflict(ApiProblem):
    status = 409
    title = "Conflict"
    kind = "merge-refused"


class UnknownThing(ApiProblem):
    status = 404
    title = "Not Found"
    kind = "not-found"


def _validate(validator: Draft202012Validator, body: dict[str, Any], what: str) -> None:
    """A 400 that names each path and rule, never echoing a value."""
    errors = sorted(validator.iter_errors(body), key=lambda e: e.json_path)
    if errors:
        listing = "; ".join(
            f"{e.json_path}: violates {e.validator}"
            + (f" {e.validator_value}" if e.validator in ("required", "format") else "")
            for e in errors
        )
        raise BadRequest(f"invalid {what}: {listing}")


def scan_runner() -> ScanRunner:
    """This app's scan runner (one per process, made on first use)."""
    runner = current_app.extensions.get(RUNNER_KEY)
    if runner is None:
        runtime = hub_runtime()
        runner = current_app.extensions.setdefault(
            RUNNER_KEY, ScanRunner(runtime.sessions, runtime.cipher, matcher=scan_matcher(runtime))
        )
    assert isinstance(runner, ScanRunner)
    return runner


def _actor() -> Actor:
    principal = current_principal()
    return Actor(f"{principal.kind}:{principal.subject}"[:200])


def _mask_values(node: Any) -> Any:
    """Identifier values masked wherever an incoming record holds ``{system, value}``."""
    if isinstance(node, dict):
        masked = {k: _mask_values(v) for k, v in node.items()}
        if isinstance(masked.get("system"), str) and isinstance(masked.get("value"), str):
            masked["value"] = mask_identifier(masked["value"])
        return masked
    if isinstance(node, list):
        return [_mask_values(v) for v in node]
    return node


def shape_review(review: dict[str, Any]) -> dict[str, Any]:
    """A review as this caller may see it (auditors: identifiers masked)."""
    shaped = dict(review)
    if not current_principal().has_any(DECIDERS):
        shaped["record"] = _mask_values(review.get("record"))
    if "people" in review:
        shaped["people"] = [
            {**side, "person": shape_person(side["person"])} if "person" in side else side
            for side in review["people"]
        ]
    return shaped


# --- the queue ---------------------------------------------------------------------------------


@bp.get("/api/v1/match-reviews")
@requires(*PAIR_READERS)
@audited_read()
def list_match_reviews() -> Response:
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    status = request.args.get("status", "open")
    if status not in (*REVIEW_STATUSES, "all"):
        raise BadRequest(f"status must be one of {', '.join(REVIEW_STATUSES)} or all")
    kind = (request.args.get("kind") or "")[:32] or None
    principal = current_principal()
    if principal.area_scoped:  # a supervisor: the duplicate pairs inside their areas only
        items: list[dict[str, Any]] = []
        total = 0
        if kind in (None, "duplicate"):
            runtime = hub_runtime()
            with runtime.sessions() as session:
                items, total = supervised_pairs(
                    session,
                    runtime.cipher,
                    principal,
                    None if status == "all" else status,
                    limit,
                    offset,
                )
    else:
        items, total = hub_registry().list_reviews(
            None if status == "all" else status, limit, offset, kind
        )
    return jsonify(
        {
            "items": [shape_review(i) for i in items],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@bp.get("/api/v1/match-reviews/<uuid:review_id>")
@requires(*PAIR_READERS)
@audited_read()
def get_match_review(review_id: Any) -> Response:
    registry = hub_registry()
    detail = registry.review_detail(review_id)
    principal = current_principal()
    if principal.area_scoped and not (
        detail["kind"] == "duplicate"
        and pair_inside(principal, detail_areas(detail, hub_runtime().sessions))
    ):
        raise AccessDenied("This pair is not wholly inside the areas you cover.")
    detail["merges"] = registry.merges_of_review(review_id)
    return jsonify(shape_review(detail))


@bp.post("/api/v1/match-reviews/<uuid:review_id>/merge")
@requires(*PAIR_DECIDERS)
def merge_review(review_id: Any) -> Response:
    body = json_object()
    _validate(_MERGE, body, "merge")
    if body.get("force_reason") and not current_principal().has_any(FORCERS):
        raise AccessDenied("Only administrators may force an unsafe merge.")
    try:
        merge = hub_registry().merge_review(
            review_id,
            survivor_id=body.get("survivor_id"),
            reason=body["reason"].strip(),
            actor=_actor(),
            forced_reason=(body.get("force_reason") or "").strip() or None,
            check=area_check(current_principal()),
        )
    except OutsideAreas as exc:
        raise AccessDenied(str(exc)) from None
    except UnsafeMerge as exc:
        raise Conflict(str(exc), unsafe=exc.problems) from None
    except MergeRefused as exc:
        raise Conflict(str(exc)) from None
    response = jsonify(merge)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_merge", merge_id=merge["id"])
    return response


@bp.post("/api/v1/match-reviews/<uuid:review_id>/keep-apart")
@requires(*PAIR_DECIDERS)
def keep_apart(review_id: Any) -> Response:
    body = json_object()
    _validate(_REASON_BODY, body, "decision")
    registry = hub_registry()
    try:
        registry.keep_apart(
            review_id,
            reason=body["reason"].strip(),
            actor=_actor(),
            check=area_check(current_principal()),
        )
    except OutsideAreas as exc:
        raise AccessDenied(str(exc)) from None
    except MergeRefused as exc:
        raise Conflict(str(exc)) from None
    return jsonify(shape_review(registry.review_detail(review_id)))


# --- merges ------------------------------------------------------------------------------------


@bp.get("/api/v1/merges/<uuid:merge_id>")
@requires(*READERS)
@audited_read()
def get_merge(merge_id: Any) -> Response:
    return jsonify(hub_registry().get_merge(merge_id))


@bp.post("/api/v1/merges/<uuid:merge_id>/unmerge")
@requires(*DECIDERS)
def unmerge(merge_id: Any) -> Response:
    body = json_object()
    _validate(_REASON_BODY, body, "unmerge")
    try:
        record = hub_registry().unmerge(merge_id, reason=body["reason"].strip(), actor=_actor())
    except MergeRefused as exc:
        raise Conflict(str(exc)) from None
    return jsonify(record)


# --- the scan ----------------------------------------------------------------------------------


@bp.post("/api/v1/duplicates/scans")
@requires(*DECIDERS)
def start_scan() -> Response:
    body = json_object() if request.get_data() else {}
    _validate(_SCAN, body, "scan request")
    try:
        record = scan_runner().request_scan(_actor().name)
    except ScanAlreadyActive as exc:
        scan_runner().wake()  # an active scan nobody runs any more is resumed
        raise Conflict(
            f"duplicate scan {exc.scan['id']} is already {exc.scan['state']}; watch it at "
            f"/api/v1/duplicates/scans/{exc.scan['id']}",
            scan=exc.scan,
        ) from None
    response = jsonify(record)
    response.status_code = 202
    response.headers["Location"] = url_for(".get_scan", scan_id=record["id"])
    return response


@bp.get("/api/v1/duplicates/scans")
@requires(*READERS)
def list_scans() -> Response:
    limit = int_arg("limit", 20, 1, 100)
    return jsonify({"items": scan_runner().recent(limit)})


@bp.get("/api/v1/duplicates/scans/<uuid:scan_id>")
@requires(*READERS)
def get_scan(scan_id: Any) -> Response:
    record = scan_runner().get(scan_id)
    if record is None:
        raise UnknownThing(f"no duplicate scan {scan_id}")
    return jsonify(record)
