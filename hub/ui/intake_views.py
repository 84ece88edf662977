"""Dashboard pages of field collection: forms (list, upload, retire), submissions by status,
and conflicts with both sides side by side and the two ways to resolve them.

The same ``staff_page`` rules as every page: a staff session, a CSRF token on each POST, an
audit row for each action, a redirect after it. The data comes from the intake core the app
keeps in its extensions (``hub.intake.contract.INTAKE_EXTENSION_KEY``).
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from hub.auth.roles import Principal, Role
from hub.intake.contract import INTAKE_EXTENSION_KEY
from hub.intake.errors import IntakeError
from hub.intake.media import check_media_set, media_file
from hub.intake.service import RESOLUTIONS, IntakeService
from hub.intake.tables import SUBMISSION_STATUSES
from hub.ui.page_reads import record_page_read
from hub.ui.views import _audit, bp, staff_page

CHANGERS = {Role.admin.value, Role.registry_staff.value}


def _service() -> IntakeService:
    service = current_app.extensions.get(INTAKE_EXTENSION_KEY)
    if not isinstance(service, IntakeService):
        abort(503, description="Field collection is not set up in this hub.")
    return service


def _principal() -> Principal:
    staff = g.staff
    try:
        role = Role(staff.role)
    except ValueError:
        role = Role.auditor
    return Principal(staff.name, frozenset({role}))


def _may_change() -> None:
    if g.staff.role not in CHANGERS:
        abort(403, description="Only administrators and registry staff change forms or data.")


@bp.route("/ui/intake/forms")
@staff_page
def intake_forms() -> Any:
    return render_template("ui/intake_forms.html", forms=_service().list_forms())


@bp.route("/ui/intake/forms/upload", methods=["POST"])
@staff_page
def intake_form_upload() -> Any:
    _may_change()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose an XLSForm file first.", "error")
        return redirect(url_for("ui.intake_forms"))
    try:
        media = [
            media_file(part.filename, part.mimetype, part.read())
            for part in request.files.getlist("media")
            if part.filename
        ]
        check_media_set(media)
        result = _service().upload_form(upload.read(), upload.filename, g.staff.name, media=media)
    except IntakeError as exc:
        _audit("intake_form_upload", upload.filename[:300], f"refused: {exc.detail[:400]}")
        flash(f"Not uploaded: {exc.detail}", "error")
        return redirect(url_for("ui.intake_forms"))
    form = result.form
    _audit("intake_form_upload", f"{form['form_id']}@{form['version']}", "uploaded")
    flash(f"Form {form['form_id']} version {form['version']} is now current.", "ok")
    for warning in result.warnings[:5]:
        flash(warning, "warn")
    return redirect(url_for("ui.intake_forms"))


@bp.route("/ui/intake/forms/<form_id>/versions/<version>/retire", methods=["POST"])
@staff_page
def intake_form_retire(form_id: str, version: str) -> Any:
    _may_change()
    try:
        retired = _service().retire_version(form_id, version, g.staff.name)
    except IntakeError as exc:
        flash(exc.detail, "error")
        return redirect(url_for("ui.intake_forms"))
    _audit("intake_form_retire", f"{form_id}@{version}", "retired")
    now = retired.get("current_version")
    flash(f"Version {version} retired; current: {now or 'none'}.", "ok")
    return redirect(url_for("ui.intake_forms"))


@bp.route("/ui/intake/submissions")
@staff_page
def intake_submissions() -> Any:
    status = request.args.get("status") or None
    if status is not None and status not in SUBMISSION_STATUSES:
        status = None
    found = _service().list_submissions(_principal(), status=status, limit=100)
    record_page_read(found)
    return render_template(
        "ui/intake_submissions.html",
        submissions=found,
        status=status,
        statuses=SUBMISSION_STATUSES,
    )


@bp.route("/ui/intake/conflicts")
@staff_page
def intake_conflicts() -> Any:
    service = _service()
    principal = _principal()
    conflicts = [
        service.get_submission(row["instance_id"], principal)
        for row in service.list_submissions(principal, status="conflict", limit=20)
    ]
    record_page_read(conflicts)
    return render_template("ui/intake_conflicts.html", conflicts=conflicts, fields=_FIELDS)


_FIELDS = ("admin_area_code", "address", "location")


@bp.route("/ui/intake/conflicts/resolve", methods=["POST"])
@staff_page
def intake_conflict_resolve() -> Any:
    _may_change()
    instance_id = request.form.get("instance_id", "").strip()[:128]
    action = request.form.get("action", "")
    version_text = request.form.get("version", "").strip()
    if not instance_id or action not in RESOLUTIONS:
        abort(400, description="Choose a conflict and keep_registry or apply_submission.")
    version = int(version_text) if version_text.isdigit() else None
    try:
        done = _service().resolve_conflict(
            instance_id, action, _principal(), registry_version=version
        )
    except IntakeError as exc:
        flash(exc.detail, "error")
        return redirect(url_for("ui.intake_conflicts"))
    _audit(f"intake_{action}", instance_id, done["status"])
    flash(f"Conflict {instance_id}: {action.replace('_', ' ')} ({done['status']}).", "ok")
    return redirect(url_for("ui.intake_conflicts"))
