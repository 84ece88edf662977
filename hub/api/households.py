"""Households: list, register, read, update, members.

A registration may carry ``consents`` (program, purpose, channel, evidence reference; for the
household or one member), recorded in the registration's transaction (``hub.api.consents``).

Field workers see and change only households in their own administrative areas; auditors read
everything with identifiers masked (see ``hub.api.visibility``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from hub.api.audit_reads import record_read
from hub.api.context import hub_registry, hub_runtime
from hub.api.problems import PreconditionRequired
from hub.api.requests import MAX_PAGE_SIZE, caller_source, expected_version, int_arg, json_object
from hub.api.visibility import shape_household
from hub.auth.flask_auth import current_principal, require_area, requires
from hub.auth.roles import UNSCOPED_AREA_ROLES, Role
from hub.readaudit.records import ReadRecords

bp = Blueprint("households", __name__, url_prefix="/api/v1/households")

READERS = (Role.admin, Role.registry_staff, Role.field_worker, Role.supervisor, Role.auditor)
WRITERS = (Role.admin, Role.registry_staff, Role.field_worker)
# Who sees a household's scores and eligibility (docs/policy.md): not field workers, whose
# answers feed the score.
POLICY_READERS = (Role.admin, Role.registry_staff, Role.auditor)


def _with_checks(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each member's last national ID cross-check (``hub.crosscheck.status``)."""
    from hub.crosscheck.status import annotate_households

    with hub_runtime().sessions() as session:
        annotate_households(session, records)
    return records


def _with_etag(record: dict[str, Any], status: int = 200) -> Response:
    _with_checks([record])
    if current_principal().has_any(POLICY_READERS):
        record["policy"] = hub_registry().scoring.household_policy(record["id"])
    response = jsonify(shape_household(record))
    response.status_code = status
    response.headers["ETag"] = f'"{record["version"]}"'
    return response


def _load_in_scope(household_id: str) -> dict[str, Any]:
    record = hub_registry().get_household(household_id)
    require_area(record["admin_area_code"])
    return record


@bp.get("")
@requires(*READERS)
def list_households() -> Response:
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    status = request.args.get("status") or None
    principal = current_principal()
    areas = None if principal.has_any(UNSCOPED_AREA_ROLES) else list(principal.admin_areas)
    items, total = hub_registry().list_households(
        area_prefixes=areas, status=status, limit=limit, offset=offset
    )
    record_read(ReadRecords.of_households(items), "api", query_kind="list")
    return jsonify(
        {
            "items": [shape_household(i) for i in _with_checks(items)],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@bp.post("")
@requires(*WRITERS)
def register_household() -> Response:
    body = json_object()
    area = body.get("admin_area_code")
    require_area(area if isinstance(area, str) else None)
    consents = body.pop("consents", None)
    if consents is None:
        result = hub_registry().register_household(body, caller_source())
    else:
        # Consents given at registration commit with the household or not at all.
        from hub.api.consents import record_at_registration, validate_at_registration

        validate_at_registration(consents)
        with hub_runtime().sessions() as session, session.begin():
            registry = hub_registry().within(session)
            result = registry.register_household(body, caller_source())
            record_at_registration(registry, result.record, consents)
        # Read again: the consents may have changed its recertification due date (programs
        # with their own interval, docs/recertification.md).
        result.record = hub_registry().get_household(result.record["id"])
    response = _with_etag(result.record, 201)
    response.headers["Location"] = url_for(".get_household", household_id=result.record["id"])
    return response


@bp.get("/<uuid:household_id>")
@requires(*READERS)
def get_household(household_id: Any) -> Response:
    record = _load_in_scope(str(household_id))
    record_read(ReadRecords.of_households([record]), "api")
    return _with_etag(record)


@bp.patch("/<uuid:household_id>")
@requires(*WRITERS)
def update_household(household_id: Any) -> Response:
    body = json_object()
    version = expected_version(body)
    if version is None:
        raise PreconditionRequired(
            'say which version you changed: send If-Match: "<version>" or "version" in the body'
        )
    _load_in_scope(str(household_id))
    changes = {k: v for k, v in body.items() if k != "version"}
    if isinstance(changes.get("admin_area_code"), str):
        require_area(changes["admin_area_code"])
    result = hub_registry().update_household(
        str(household_id), changes, caller_source(), expected_version=version
    )
    return _with_etag(result.record)


@bp.post("/<uuid:household_id>/members")
@requires(*WRITERS)
def add_member(household_id: Any) -> Response:
    body = json_object()
    version = expected_version(None)
    _load_in_scope(str(household_id))
    result = hub_registry().add_member(
        str(household_id), body, caller_source(), expected_version=version
    )
    return _with_etag(result.record, 201)


@bp.delete("/<uuid:household_id>/members/<uuid:person_id>")
@requires(*WRITERS)
def remove_member(household_id: Any, person_id: Any) -> Response:
    version = expected_version(None)
    _load_in_scope(str(household_id))
    reason = request.args.get("reason", "left")
    result = hub_registry().remove_member(
        str(household_id),
        str(person_id),
        caller_source(),
        reason=reason,
        expected_version=version,
    )
    return _with_etag(result.record)
