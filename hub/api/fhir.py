"""FHIR R4B read API under ``/fhir/``: CapabilityStatement, Patient, Group (a household) and
``Group/{id}/$everything``, built by ``standards.fhir.convert``.

Reads obey the same rules as every read API (``hub.api.visibility``): field workers only see
households of their areas; auditors see everyone with identifiers masked; a program's system
sees only the people its program's consents cover (``registry_core.consent``) and, of a
household, only those members (anything else is "not known here", so nothing leaks about
people it may not see); a partner system reads no personal data. Every error on these routes,
including the auth layer's 401/403, is answered as an ``OperationOutcome``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Blueprint, Response, request

from hub.api.audit_reads import record_read
from hub.api.context import hub_registry, hub_runtime
from hub.api.visibility import only_members, read_scope, shape_household, shape_person
from hub.auth.flask_auth import current_principal, public, require_area, requires
from hub.auth.roles import Role
from hub.readaudit.records import ReadRecords
from registry_core.consent import (
    NOTHING_TO_READ,
    ConsentScope,
    covered_members,
    covers_person,
)
from registry_core.errors import InvalidRecord, NotFound
from standards.fhir import systems

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

READERS = (
    Role.admin,
    Role.registry_staff,
    Role.field_worker,
    Role.auditor,
    Role.partner,
    Role.program,
)
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-costly",
    422: "processing",
}
MAX_IDENTIFIER_LENGTH = 64


def _convert() -> Any:
    """The converter module, imported on first use: loading fhir.resources' models takes about
    a second, which every process that builds the app but never serves FHIR should not pay."""
    from standards.fhir import convert

    return convert


class _FhirError(Exception):
    def __init__(self, status: int, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics


def _base_url() -> str:
    return request.url_root.rstrip("/") + str(bp.url_prefix)


def _fhir(resource: Any, status: int = 200) -> Response:
    response = Response(resource.model_dump_json(), status=status, mimetype=_convert().FHIR_MIME)
    response.headers["Cache-Control"] = "no-store"
    meta = getattr(resource, "meta", None)
    if meta is not None and meta.versionId:
        response.headers["ETag"] = f'W/"{meta.versionId}"'
    return response


def _uuid(text: str, kind: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise _FhirError(404, f"{kind}/{text[:64]} is not known here") from None


def _consent() -> ConsentScope | None:
    """The caller's consent restriction; 403 for a caller that may read nothing personal."""
    scope = read_scope(current_principal())
    if scope.nothing:
        raise _FhirError(403, NOTHING_TO_READ)
    return scope.consent()


def _not_known(reference: str, consent: ConsentScope | None) -> _FhirError:
    """The same 404 whether the record is absent or outside the caller's consent."""
    if consent is None:
        return _FhirError(404, f"{reference} is not known here")
    return _FhirError(
        404, f"{reference} is not known here, or no consent for program {consent.program} covers it"
    )


def _household(group_id: str) -> dict[str, Any]:
    consent = _consent()
    key = _uuid(group_id, "Group")
    try:
        record = hub_registry().get_household(key)
    except NotFound:
        raise _not_known(f"Group/{key}", consent) from None
    if current_principal().area_scoped:
        require_area(record.get("admin_area_code"))
    if consent is not None:
        with hub_runtime().sessions() as session:
            covered = {str(p) for p in covered_members(session, consent, uuid.UUID(key))}
        if not covered:
            raise _not_known(f"Group/{key}", consent)
        record = only_members(record, covered)
    return shape_household(record)


def _in_scope(person_id: str) -> bool:
    """Field workers read only people of their areas; other admitted roles read everyone."""
    principal = current_principal()
    if not principal.area_scoped:
        return True
    return principal.may_touch_area(hub_registry().person_household_area(person_id))


def _covered(person_id: str, consent: ConsentScope | None) -> bool:
    if consent is None:
        return True
    with hub_runtime().sessions() as session:
        return covers_person(session, consent, uuid.UUID(person_id))


@bp.get("/metadata")
@public
def metadata() -> Response:
    return _fhir(_convert().capability_statement(_base_url()))


@bp.get("/Patient/<patient_id>")
@requires(*READERS)
def read_patient(patient_id: str) -> Response:
    consent = _consent()
    key = _uuid(patient_id, "Patient")
    try:
        record = hub_registry().get_person(key)
        # A record merged into another is read as FHIR says: inactive, "replaced-by" the
        # survivor, whose area and consents (it holds the merged record's now) decide access.
        survivor = hub_registry().survivor_of(key)
    except NotFound:
        raise _not_known(f"Patient/{key}", consent) from None
    live = survivor or key
    if not _in_scope(live):
        raise _FhirError(403, "This person is outside the administrative areas you cover.")
    if not _covered(live, consent):
        raise _not_known(f"Patient/{key}", consent)
    record_read(ReadRecords.of_persons([record]), "fhir")
    return _fhir(_convert().patient(shape_person(record), replaced_by=survivor))


@bp.get("/Patient")
@requires(*READERS)
def search_patients() -> Response:
    consent = _consent()
    raw = request.args.get("identifier", "")
    system_text, sep, value = raw.partition("|")
    if not sep or not system_text or not value:
        raise _FhirError(
            400,
            "search needs identifier=<system>|<value>, e.g. identifier=national_id|1234567897",
        )
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise _FhirError(400, f"identifier values are at most {MAX_IDENTIFIER_LENGTH} characters")
    system = systems.system_name(system_text) or _profile_system(system_text)
    if system is None:
        known = ", ".join(sorted(systems.SYSTEM_URIS))
        raise _FhirError(400, f"unknown identifier system; use a URI or one of: {known}")
    try:  # the value is normalised and checked by the country's identifier profile
        found = hub_registry().find_person_by_identifier(system, value)
    except InvalidRecord as exc:
        raise _FhirError(400, "; ".join(v.message for v in exc.violations)) from None
    resources = []
    if found is not None and _in_scope(found["id"]) and _covered(found["id"], consent):
        resources.append(_convert().patient(shape_person(found)))
    records = ReadRecords.of_persons([found] if resources and found is not None else [])
    record_read(records, "fhir", query_kind=f"identifier:{system}"[:64])
    return _fhir(_convert().searchset(resources, _base_url(), request.url))


def _profile_system(uri: str) -> str | None:
    """The profile's system named by ``uri`` (its code, or its ``fhir_system`` URI), if any."""
    profile = hub_registry().identifier_profile
    if uri in profile:
        return uri
    return next((rule.system for rule in profile if rule.fhir_system == uri), None)


def _read_household(group_id: str) -> dict[str, Any]:
    record = _household(group_id)
    record_read(ReadRecords.of_households([record]), "fhir")
    return record


@bp.get("/Group/<group_id>")
@requires(*READERS)
def read_group(group_id: str) -> Response:
    return _fhir(_convert().group(_read_household(group_id)))


@bp.get("/Group/<group_id>/$everything")
@requires(*READERS)
def group_everything(group_id: str) -> Response:
    return _fhir(_convert().everything(_read_household(group_id), _base_url()))


@bp.errorhandler(_FhirError)
def _fhir_error(error: _FhirError) -> Response:
    code = _ISSUE_CODES.get(error.status, "exception")
    return _fhir(_convert().outcome(code, error.diagnostics), error.status)


@bp.after_app_request
def _outcomes(response: Response) -> Response:
    """Problem documents under /fhir/ (auth layer, unknown routes, 405, 413, 500) become
    OperationOutcomes. App-wide hook because routing errors never reach the blueprint."""
    if response.mimetype != "application/problem+json" or not request.path.startswith(
        str(bp.url_prefix) + "/"
    ):
        return response
    try:
        detail = str(json.loads(response.get_data(as_text=True)).get("detail", ""))
    except ValueError:
        detail = ""
    status = response.status_code
    outcome = _convert().outcome(_ISSUE_CODES.get(status, "exception"), detail or response.status)
    response.set_data(outcome.model_dump_json())
    response.mimetype = _convert().FHIR_MIME
    return response
