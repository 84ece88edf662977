"""Intake forms and field submissions: ``/api/v1/intake/...``.

Administrators and registry staff upload XLSForms (multipart ``file``), list them, see their
versions and retire one; staff, supervisors and auditors follow submissions (area-scoped
callers see only their areas) and decide conflicts (``keep_registry`` or
``apply_submission``). Devices do not come here: they speak OpenRosa (``hub.openrosa``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from hub.api.audit_reads import audited_read
from hub.api.problems import BadRequest, problem
from hub.api.requests import int_arg, json_object
from hub.auth.flask_auth import current_principal, requires
from hub.auth.roles import Role
from hub.intake.contract import INTAKE_EXTENSION_KEY
from hub.intake.errors import IntakeError
from hub.intake.media import check_media_set, media_file
from hub.intake.service import RESOLUTIONS, IntakeService
from hub.intake.tables import SUBMISSION_STATUSES

bp = Blueprint("intake", __name__, url_prefix="/api/v1/intake")

READERS = (Role.admin, Role.registry_staff, Role.supervisor, Role.auditor)
FORM_ADMINS = (Role.admin, Role.registry_staff)
RESOLVERS = (Role.admin, Role.registry_staff, Role.supervisor)


@bp.errorhandler(IntakeError)
def _intake_error(error: IntakeError) -> Response:
    return problem(error.status, error.title, error.detail, error.kind)


def _service() -> IntakeService:
    service = current_app.extensions.get(INTAKE_EXTENSION_KEY)
    if not isinstance(service, IntakeService):
        raise RuntimeError("the app was not built by hub.api.create_app")
    return service


def _created(body: Any) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response


@bp.post("/forms")
@requires(*FORM_ADMINS)
def upload_form() -> Response:
    """Upload an XLSForm (multipart ``file``); its version becomes the form's current one."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadRequest("send the XLSForm as a multipart/form-data part named 'file'")
    content = upload.read()
    media = [
        media_file(part.filename, part.mimetype, part.read())
        for part in request.files.getlist("media")
    ]
    check_media_set(media)
    result = _service().upload_form(
        content, upload.filename, current_principal().subject, media=media
    )
    return _created({**result.form, "warnings": list(result.warnings)})


@bp.get("/forms")
@requires(*READERS)
def list_forms() -> Response:
    return jsonify({"forms": _service().list_forms()})


@bp.get("/forms/<form_id>/versions")
@requires(*READERS)
def form_versions(form_id: str) -> Response:
    return jsonify({"form_id": form_id, "versions": _service().form_versions(form_id)})


@bp.post("/forms/<form_id>/versions/<version>/retire")
@requires(*FORM_ADMINS)
def retire_version(form_id: str, version: str) -> Response:
    """Retire a version: devices stop getting it and its submissions are answered 410."""
    return jsonify(_service().retire_version(form_id, version, current_principal().subject))


def _status_arg() -> str | None:
    status = request.args.get("status") or None
    if status is not None and status not in SUBMISSION_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(SUBMISSION_STATUSES)}")
    return status


@bp.get("/submissions")
@requires(*READERS)
@audited_read()
def list_submissions() -> Response:
    """Submissions newest first, filtered by status, form, submitter and area."""
    limit = int_arg("limit", 50, 1, 200)
    offset = int_arg("offset", 0, 0, 1_000_000)
    found = _service().list_submissions(
        current_principal(),
        status=_status_arg(),
        form_id=request.args.get("form_id") or None,
        submitted_by=request.args.get("submitted_by") or None,
        area=request.args.get("area") or None,
        limit=limit,
        offset=offset,
    )
    return jsonify({"submissions": found, "limit": limit, "offset": offset})


@bp.get("/submissions/<path:instance_id>")
@requires(*READERS)
@audited_read()
def get_submission(instance_id: str) -> Response:
    """One submission with its mapped result, its problems, or both sides of its conflict."""
    return jsonify(_service().get_submission(instance_id, current_principal()))


@bp.get("/conflicts")
@requires(*READERS)
@audited_read()
def list_conflicts() -> Response:
    limit = int_arg("limit", 50, 1, 200)
    found = _service().list_submissions(current_principal(), status="conflict", limit=limit)
    return jsonify({"conflicts": found})


@bp.post("/conflicts/<path:instance_id>/resolve")
@requires(*RESOLVERS)
def resolve_conflict(instance_id: str) -> Response:
    """``{"action": "keep_registry" | "apply_submission", "version": N}``: ``version`` is the
    registry version the reviewer saw (apply_submission applies over it, or conflicts again)."""
    body = json_object()
    action = body.get("action")
    version = body.get("version")
    if action not in RESOLUTIONS or set(body) - {"action", "version"}:
        raise BadRequest(f'send {{"action": "{RESOLUTIONS[0]}" | "{RESOLUTIONS[1]}"}}')
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        raise BadRequest("version must be a positive integer")
    return jsonify(
        _service().resolve_conflict(
            instance_id, action, current_principal(), registry_version=version
        )
    )
