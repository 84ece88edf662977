"""``POST /api/v1/prefill``: a household proposal from a national ID, within a deadline.

The view validates the body and the national ID (format and check digit: 422 before any
partner is called), runs ``hub.prefill`` on the process's shared pool, and answers the
proposal with per-source status and per-field provenance. A source whose connector is not
configured makes the answer a 503 problem naming it; the problem still carries what the other
sources said.

A field worker sees the proposal only for a person of their areas, decided without depending
on which partner answers first: a person the registry holds is judged by their household's area,
*before* any partner is asked (outside the worker's areas: 403 and no partner call); someone
not yet registered by the area the national ID authority gives (not the merged proposal, whose
area depends on which place GIS was asked about first); no area from the authority: 403.
Nothing a prefill hears is published or applied (``hub.prefill``), so a refused or repeated
prefill writes nothing.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from jsonschema import Draft202012Validator

from hub.api.context import EXTENSION_KEY as RUNTIME_KEY
from hub.api.context import hub_registry
from hub.api.problems import BadRequest, UnprocessableRecord, problem
from hub.api.requests import json_object
from hub.auth.flask_auth import current_principal, require_area, requires
from hub.auth.roles import Role
from hub.prefill import (
    AUTHORITY_AREA_KEY,
    DEFAULT_DEADLINE_S,
    MAX_DEADLINE_S,
    InvalidNationalId,
    PrefillService,
)
from hub.runtime import HubRuntime

bp = Blueprint("prefill", __name__, url_prefix="/api/v1/prefill")

CONNECTORS_KEY = "srhub_connectors"  # name -> connector instance, set up by the hub at start
SERVICE_KEY = "srhub_prefill"
_service_lock = threading.Lock()

BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["national_id"],
    "properties": {
        "national_id": {"type": "string", "maxLength": 32},
        "deadline_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DEADLINE_S},
    },
}
_BODY = Draft202012Validator(BODY_SCHEMA)


def prefill_service() -> PrefillService:
    """The app's one service (and so one bounded pool), created on first use."""
    service = current_app.extensions.get(SERVICE_KEY)
    if isinstance(service, PrefillService):
        return service
    with _service_lock:
        service = current_app.extensions.get(SERVICE_KEY)
        if not isinstance(service, PrefillService):
            extensions = current_app.extensions
            runtime = extensions.get(RUNTIME_KEY)
            service = PrefillService(
                lambda: extensions.get(CONNECTORS_KEY) or {},
                precedence=runtime.precedence if isinstance(runtime, HubRuntime) else None,
                identifiers=(
                    runtime.identifier_profile if isinstance(runtime, HubRuntime) else None
                ),
            )
            extensions[SERVICE_KEY] = service
    return service


def _expected(error: Any) -> str:
    if error.validator == "additionalProperties":
        return "(allowed: national_id, deadline_seconds)"
    if error.validator == "required":
        return "(national_id is required)"
    return f"({error.validator_value})"


def _registered_area(national_id: str) -> str | None:
    """The area of the current household of the person holding ``national_id`` in the
    registry (None: not registered, or in no household)."""
    registry = hub_registry()
    person = registry.find_person_by_identifier("national_id", national_id)
    if person is None:
        return None
    return registry.person_household_area(person["id"])


@bp.post("")
@requires(Role.admin, Role.registry_staff, Role.field_worker)
def prefill() -> Response:
    body = json_object()
    errors = sorted(_BODY.iter_errors(body), key=lambda e: e.json_path)
    if errors:
        # jsonschema's messages echo the value (a national ID): name the rule instead.
        listing = "; ".join(f"{e.json_path}: violates {e.validator} {_expected(e)}" for e in errors)
        raise BadRequest(f"invalid prefill request: {listing}")
    deadline = float(body.get("deadline_seconds", DEFAULT_DEADLINE_S))
    service = prefill_service()
    try:
        national_id = service.normalised(body["national_id"])
    except InvalidNationalId as error:
        raise UnprocessableRecord(
            f"the national ID is not valid: {error}; no partner was asked",
            errors=[{"path": "$.national_id", "rule": "national_id", "message": str(error)}],
        ) from None
    scoped = current_principal().area_scoped
    registered_area = _registered_area(national_id) if scoped else None
    if registered_area is not None:
        require_area(registered_area)  # decided before any partner is asked
    answer = service.prefill(national_id, deadline)
    authority_area = answer.pop(AUTHORITY_AREA_KEY, None)
    if scoped and registered_area is None:
        require_area(authority_area)
    if answer["missing"]:
        names = ", ".join(answer["missing"])
        return problem(
            503,
            "Service Unavailable",
            f"prefill source(s) not configured: {names}; the other sources answered",
            "prefill-source-not-configured",
            missing_sources=answer["missing"],
            **{k: v for k, v in answer.items() if k != "missing"},
        )
    response = jsonify({k: v for k, v in answer.items() if k != "missing"})
    response.headers["Cache-Control"] = "no-store"
    return response
