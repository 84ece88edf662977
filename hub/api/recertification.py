"""Recertification: the lists of households due or overdue, and a staff confirmation.

- ``GET /api/v1/recertification?state=due|overdue&area=PREFIX``: households in that state as
  the last round flagged them (``srhub`` runs the round with the retention jobs), earliest due
  date first, paged. Field workers and supervisors see only their own areas.
- ``POST /api/v1/households/<id>/recertify``: staff or a field worker in the area confirm the
  household's details; a new cycle begins (docs/recertification.md).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from hub.api.audit_reads import audited_read
from hub.api.context import hub_registry
from hub.api.problems import BadRequest
from hub.api.requests import MAX_PAGE_SIZE, caller_source, int_arg
from hub.auth.flask_auth import current_principal, require_area, requires
from hub.auth.roles import Principal, Role
from registry_core.areas import narrowed

bp = Blueprint("recertification", __name__, url_prefix="/api/v1")

READERS = (Role.admin, Role.registry_staff, Role.field_worker, Role.supervisor, Role.auditor)
CONFIRMERS = (Role.admin, Role.registry_staff, Role.field_worker)
LISTED_STATES = ("due", "overdue")


def area_prefixes(requested: str | None, principal: Principal | None = None) -> list[str] | None:
    """The area prefixes the caller's list covers: the requested one, narrowed to the caller's
    own areas when it is area-scoped (``None``: everywhere). ``principal`` defaults to the
    API's caller (the dashboard passes its signed-in user)."""
    principal = principal or current_principal()
    if not principal.area_scoped:
        return [requested] if requested else None
    own = [area for area in principal.admin_areas if area]
    if not requested:
        return own
    # The requested area inside one of the caller's areas, or the caller's areas inside it.
    return narrowed(requested, own)


@bp.get("/recertification")
@requires(*READERS)
@audited_read()
def list_recertification() -> Response:
    state = request.args.get("state", "due")
    if state not in LISTED_STATES:
        raise BadRequest("query parameter state must be due or overdue")
    area = (request.args.get("area") or "").strip()[:64] or None
    limit = int_arg("limit", 50, 1, MAX_PAGE_SIZE)
    offset = int_arg("offset", 0, 0, 10_000_000)
    items, total = hub_registry().list_recertification(
        state, area_prefixes=area_prefixes(area), limit=limit, offset=offset
    )
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


@bp.post("/households/<uuid:household_id>/recertify")
@requires(*CONFIRMERS)
def recertify(household_id: Any) -> Response:
    registry = hub_registry()
    require_area(registry.get_household(str(household_id))["admin_area_code"])
    status = registry.recertify(str(household_id), caller_source())
    return jsonify({"household_id": str(household_id), "recertification": status})
