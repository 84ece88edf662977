"""What-if simulations of policy and programs' benefit schedules.

- ``POST /api/v1/simulations``: run a named scenario (threshold, weights, a draft model, a
  subgroup extension, a benefit schedule) against current policy, read-only, and save the
  answer (201; 409 when the name is taken; 422 naming what in the scenario is wrong).
- ``GET /api/v1/simulations``: saved simulations, newest first.
- ``GET /api/v1/simulations/<id>``: one, with its aggregates (small cells suppressed).
- ``GET /api/v1/simulations/compare?ids=a,b``: saved simulations side by side per program.
- ``GET /api/v1/simulations/<id>/households?program=&change=gain|lose``: the households
  behind the gainers or losers, by id, evaluated again on today's data: **staff only**
  (admins, registry staff), never part of the aggregates a policymaker sees.
- ``GET|POST /api/v1/programs/<program>/benefit-schedules``: a program's schedule versions.

Who: admins and registry staff run simulations and see households; auditors read the saved
aggregates. (A ``policymaker`` role, when the roles gain one, belongs with the auditors'
reads plus running.) docs/policy.md "Simulations and budget".
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from hub.api.context import hub_registry, hub_runtime
from hub.api.problems import BadRequest
from hub.api.requests import int_arg, json_object
from hub.auth.flask_auth import current_principal, requires
from hub.auth.roles import Principal, Role

bp = Blueprint("simulations", __name__, url_prefix="/api/v1")

STAFF = (Role.admin, Role.registry_staff)
# A policymaker tries thresholds and weights: runs and reads simulations, sees aggregates only.
RUNNERS = (*STAFF, Role.policymaker)
READERS = (*RUNNERS, Role.auditor)
HOUSEHOLD_READERS = STAFF  # lists of households: staff only
SCHEDULE_WRITERS = (Role.admin,)
MAX_CODE = 64
MAX_LIST = 500


def _min_cell() -> int:
    return min_cell_for(current_principal())


def min_cell_for(principal: Principal) -> int:
    """Small-cell threshold for this caller: the reports' ``settings.reports.min_cell`` for
    those who read aggregates only (policymakers, auditors); none for registry staff, who may
    list the households behind the figures anyway. The dashboard's workbench asks the same."""
    if principal.has_any(STAFF):
        return 0
    reports = getattr(hub_runtime().settings, "reports", None)
    value = getattr(reports, "min_cell", 0)
    return int(value) if isinstance(value, int) else 0


def _code(value: str, what: str) -> str:
    if not value or len(value) > MAX_CODE:
        raise BadRequest(f"{what} must be 1 to {MAX_CODE} characters")
    return value


@bp.post("/simulations")
@requires(*RUNNERS)
def run_simulation() -> Response:
    body = json_object()
    simulations = hub_registry().simulations
    view = simulations.run(body, current_principal().subject)
    response = jsonify(simulations.get(view["id"], _min_cell()))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_simulation", simulation_id=view["id"])
    return response


@bp.get("/simulations")
@requires(*READERS)
def list_simulations() -> Response:
    limit = int_arg("limit", 50, 1, 200)
    offset = int_arg("offset", 0, 0, 1_000_000)
    items = hub_registry().simulations.list(limit, offset)
    return jsonify({"items": items, "limit": limit, "offset": offset})


@bp.get("/simulations/compare")
@requires(*READERS)
def compare_simulations() -> Response:
    ids = [one.strip() for one in (request.args.get("ids") or "").split(",") if one.strip()]
    if not ids:
        raise BadRequest("give ids=<id>,<id> (1 to 5 saved simulations)")
    return jsonify(hub_registry().simulations.compare(ids, _min_cell()))


@bp.get("/simulations/<simulation_id>")
@requires(*READERS)
def get_simulation(simulation_id: str) -> Response:
    return jsonify(hub_registry().simulations.get(simulation_id, _min_cell()))


@bp.get("/simulations/<simulation_id>/households")
@requires(*HOUSEHOLD_READERS)
def changed_households(simulation_id: str) -> Response:
    program = _code(request.args.get("program") or "", "program")
    change = request.args.get("change") or ""
    if change not in ("gain", "lose"):
        raise BadRequest("change must be gain or lose")
    limit = int_arg("limit", 100, 1, MAX_LIST)
    offset = int_arg("offset", 0, 0, 10_000_000)
    answer = hub_registry().simulations.changed_households(
        simulation_id, program, change, limit, offset
    )
    answer["limit"] = limit
    return jsonify(answer)


@bp.get("/programs/<program>/benefit-schedules")
@requires(*READERS)
def list_benefit_schedules(program: str) -> Response:
    items = hub_registry().simulations.list_benefit_schedules(_code(program, "program code"))
    return jsonify({"items": items})


@bp.post("/programs/<program>/benefit-schedules")
@requires(*SCHEDULE_WRITERS)
def add_benefit_schedule(program: str) -> Response:
    body: dict[str, Any] = json_object()
    view = hub_registry().simulations.add_benefit_schedule(
        _code(program, "program code"), body, current_principal().subject
    )
    response = jsonify(view)
    response.status_code = 201
    return response
