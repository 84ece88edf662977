"""The OpenRosa server under ``/openrosa``: what ODK Collect, KoboCollect and Enketo call.

A field worker types ``http://HOST:PORT/openrosa`` as the server URL; the apps append
``/formList`` and ``/submission``. The rules, each from its docs.getodk.org page:

- HTTP Requests and Responses (openrosa-http): every response carries ``X-OpenRosa-Version:
  1.0`` and ``Date``; transactional answers are an ``<OpenRosaResponse>`` envelope whose
  ``<message>`` the app shows. Requests must carry ``X-OpenRosa-Version``; as ODK Central does,
  the API calls (form list, manifest, submission) without it are refused (400), plain
  downloads are not.
- Form List API (openrosa-form-list): ``GET /formList`` answers ``text/xml; charset=utf-8``;
  ``formID`` filters to one form, ``verbose=true`` adds ``descriptionText``, manifestUrl only
  for forms with media; the manifest lists each media file with its ``md5:`` hash.
- Form Submission API (openrosa-form-submission): ``HEAD /submission`` answers 204 (ODK Collect
  requires it) with ``X-OpenRosa-Accept-Content-Length``; ``POST`` takes multipart/form-data
  with one ``xml_submission_file`` part and media parts; 201 for a new submission, 202 ("we got
  and saved your data… you should not try to resubmit") for one already received, 409 for a
  different body under a known instanceID (as ODK Central), 413 for a body over the limit.
  A submission split by the app into several POSTs (``*isIncomplete*``) sends the same XML each
  time with more media: the later POSTs are the same instance and are answered 202.

The protocol layer knows no table: forms and submissions go through the ``IntakeBackend`` at
``current_app.extensions[INTAKE_EXTENSION_KEY]`` (``hub/intake/contract.py``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from hub.auth.flask_auth import EXTENSION_KEY as AUTH_KEY
from hub.auth.flask_auth import AuthState, authenticated_by, current_principal, requires
from hub.auth.roles import Role
from hub.intake.contract import (
    INTAKE_EXTENSION_KEY,
    IntakeBackend,
    MediaFile,
    SubmissionRejected,
)
from hub.openrosa import documents
from hub.openrosa.auth import DEVICE_AUTH, XML_MIME, auth_state, xml_answer
from hub.settings import Settings

log = logging.getLogger(__name__)

OPENROSA_VERSION = "1.0"
XML_PART = "xml_submission_file"
INCOMPLETE_PART = "*isIncomplete*"
# The multipart envelope around the announced content (boundaries, part headers): a device
# that fills X-OpenRosa-Accept-Content-Length with media is not refused for the envelope.
ENVELOPE_ALLOWANCE = 64 * 1024
FIELD = (Role.field_worker, Role.supervisor)

bp = Blueprint("openrosa", __name__, url_prefix="/openrosa")


# --- plumbing -----------------------------------------------------------------------------------


def _settings() -> Settings:
    from hub.api.context import hub_runtime

    return hub_runtime().settings


def _backend() -> IntakeBackend | None:
    backend: IntakeBackend | None = current_app.extensions.get(INTAKE_EXTENSION_KEY)
    return backend


def _no_backend() -> Response:
    return xml_answer(503, "Field collection is not set up on this server yet.")


def _version_refused() -> Response | None:
    if not _settings().openrosa.require_version_header:
        return None
    sent = request.headers.get("X-OpenRosa-Version", "").strip()
    if sent == OPENROSA_VERSION:
        return None
    return xml_answer(
        400, "This endpoint speaks OpenRosa 1.0: send the header 'X-OpenRosa-Version: 1.0'."
    )


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    auth_state(state.app)  # fail at start, not at the first device, if settings are wrong


@bp.after_request
def _openrosa_headers(response: Response) -> Response:
    response.headers["X-OpenRosa-Version"] = OPENROSA_VERSION
    response.headers["X-OpenRosa-Accept-Content-Length"] = str(
        _settings().intake.max_submission_bytes
    )
    # Date: the HTTP server writes it on every response (werkzeug's and gunicorn's both do,
    # as RFC 9110 asks of a server with a clock); a second one from here would be a duplicate.
    response.headers.setdefault("Content-Language", "en")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if isinstance(error, RequestEntityTooLarge):
        limit = _settings().intake.max_submission_bytes
        return xml_answer(413, f"The submission is larger than this server takes ({limit} bytes).")
    return xml_answer(status, error.description or error.name)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    log.exception("unexpected error on %s", request.endpoint)
    return xml_answer(500, "Something went wrong on the server; the submission was not taken.")


def _form_url(endpoint: str, form_id: str, **values: str) -> str:
    return url_for(endpoint, form_id=form_id, _external=True, **values)


# --- form list, download, manifest, media -----------------------------------------------------


@bp.get("/formList")
@requires(*FIELD)
@authenticated_by(DEVICE_AUTH)
def form_list() -> Response:
    refused = _version_refused()
    if refused is not None:
        return refused
    backend = _backend()
    if backend is None:
        return _no_backend()
    wanted = request.args.get("formID")
    verbose = request.args.get("verbose", "").lower() == "true"
    entries = []
    for form in backend.forms_for(current_principal()):
        if wanted is not None and form.form_id != wanted:
            continue
        entries.append(
            documents.FormListEntry(
                form_id=form.form_id,
                name=form.title,
                version=form.version,
                md5_hex=form.md5_hash,
                download_url=_form_url("openrosa.form_download", form.form_id),
                manifest_url=(
                    _form_url("openrosa.form_manifest", form.form_id) if form.media_files else None
                ),
                description=(f"{form.title} (version {form.version})" if verbose else None),
            )
        )
    return Response(documents.form_list(entries), content_type=XML_MIME)


@bp.get("/forms/<form_id>/form.xml")
@requires(*FIELD)
@authenticated_by(DEVICE_AUTH)
def form_download(form_id: str) -> Response:
    backend = _backend()
    if backend is None:
        return _no_backend()
    document = backend.form_document(form_id, current_principal())
    if document is None:
        return xml_answer(404, f"There is no active form {form_id!r} on this server.")
    answer = Response(document.xform, content_type=XML_MIME)
    answer.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(form_id)}.xml"
    return answer


@bp.get("/forms/<form_id>/manifest")
@requires(*FIELD)
@authenticated_by(DEVICE_AUTH)
def form_manifest(form_id: str) -> Response:
    refused = _version_refused()
    if refused is not None:
        return refused
    backend = _backend()
    if backend is None:
        return _no_backend()
    principal = current_principal()
    document = backend.form_document(form_id, principal)
    if document is None:
        return xml_answer(404, f"There is no active form {form_id!r} on this server.")
    entries = []
    for name in document.summary.media_files:
        media = backend.form_media(form_id, name, principal)
        if media is None:
            continue
        entries.append(
            documents.ManifestEntry(
                filename=name,
                hash=documents.md5_hash(media.content),
                download_url=_form_url("openrosa.form_media", form_id, name=name),
            )
        )
    return Response(documents.manifest(entries), content_type=XML_MIME)


@bp.get("/forms/<form_id>/media/<path:name>")
@requires(*FIELD)
@authenticated_by(DEVICE_AUTH)
def form_media(form_id: str, name: str) -> Response:
    backend = _backend()
    if backend is None:
        return _no_backend()
    media = backend.form_media(form_id, name, current_principal())
    if media is None:
        return xml_answer(404, f"Form {form_id!r} has no media file {name!r}.")
    answer = Response(media.content, content_type=media.content_type or "application/octet-stream")
    answer.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return answer


# --- submission -----------------------------------------------------------------------------------


@bp.route("/submission", methods=["GET", "HEAD", "POST"])
@requires(*FIELD)
@authenticated_by(DEVICE_AUTH)
def submission() -> Response:
    refused = _version_refused()
    if refused is not None:
        return refused
    if request.method != "POST":
        # HEAD: the app negotiates authentication and learns the size limit before it sends
        # data; Collect requires 204. GET answers the same (HTTP: HEAD is GET without a body).
        return Response(status=204)
    backend = _backend()
    if backend is None:
        return _no_backend()
    limit = _settings().intake.max_submission_bytes
    request.max_content_length = limit + ENVELOPE_ALLOWANCE
    if request.content_length is not None and request.content_length > limit + ENVELOPE_ALLOWANCE:
        raise RequestEntityTooLarge()
    if not request.mimetype.startswith("multipart/"):
        return xml_answer(
            400, "A submission is multipart/form-data with an xml_submission_file part."
        )
    xml_part = request.files.get(XML_PART)
    if xml_part is None:
        return xml_answer(400, "The submission has no xml_submission_file part.")
    xml = xml_part.read()
    attachments = [
        MediaFile(
            name=part.filename or field_name,
            content_type=part.mimetype or "application/octet-stream",
            content=part.read(),
        )
        for field_name, part in request.files.items(multi=True)
        if field_name != XML_PART
    ]
    incomplete = INCOMPLETE_PART in request.form
    device_id = (request.args.get("deviceID") or "")[:200] or None
    try:
        outcome = backend.receive_submission(
            xml, attachments, current_principal(), device_id=device_id
        )
    except SubmissionRejected as rejected:
        status = rejected.status if 400 <= rejected.status < 600 else 400
        return xml_answer(status, rejected.reason)
    log.info(
        "openrosa submission %s: %s (%d attachments%s)",
        outcome.instance_id,
        outcome.status,
        len(attachments),
        ", more to come" if incomplete else "",
    )
    if outcome.status == "created":
        return xml_answer(201, outcome.message, "submit_success")
    if outcome.status == "duplicate":
        return xml_answer(202, outcome.message, "submit_success")
    return xml_answer(409, outcome.message)


# --- device session (the offline web page) -------------------------------------------------------


@bp.post("/session")
@requires(*FIELD)
@authenticated_by(DEVICE_AUTH)
def device_session() -> Response:
    """A short-lived device token for a user who just proved their password (Basic or
    Digest). A token cannot buy another token: lifetimes end."""
    principal = current_principal()
    if principal.kind != "password":
        return xml_answer(403, "Log in with your user name and password to get a device token.")
    ttl = _settings().openrosa.device_token_ttl_seconds
    state: AuthState = current_app.extensions[AUTH_KEY]
    issued = datetime.now(UTC).replace(microsecond=0)
    token = state.signer.issue(
        subject=principal.subject,
        roles=principal.roles,
        admin_areas=principal.admin_areas,
        ttl_seconds=ttl,
        now=issued,
    )
    answer = jsonify(
        {
            "token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "expires_at": (issued + timedelta(seconds=ttl)).isoformat().replace("+00:00", "Z"),
            "user": principal.subject,
            "roles": sorted(r.value for r in principal.roles),
            "areas": list(principal.admin_areas),
        }
    )
    answer.headers["Cache-Control"] = "no-store"
    return answer
