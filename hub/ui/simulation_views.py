"""The simulation workbench (``/ui/policy/simulations``): build a scenario in a form, run it
against current policy, save it under a name, open and compare saved ones.

Everything goes through ``Registry.simulations``, the service behind
``/api/v1/simulations``: the same scenario document, the same checks (a refused scenario's
messages are the API's, shown beside the fields), the same read-only evaluation, and the same
small-cell suppression for the same roles (``hub.api.simulations.min_cell_for``): policymakers
and auditors see small area and segment cells suppressed; staff see them whole and may list
the households behind gainers and losers, as the API lets staff only.

Who: staff and policymakers run (a POST, CSRF-checked, written to the audit trail);
auditors read saved simulations and compare them; nobody else. "Run" previews without saving;
"Run and save" saves under the name (the API's ``POST``) and opens the saved simulation.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from hub.api.context import hub_registry
from hub.api.simulations import MAX_LIST, min_cell_for
from hub.ui import simulation_form as forms
from hub.ui.simulation_charts import bars_svg
from hub.ui.views import (
    _audit,
    _headers,
    _http_error,
    _sessions,
    admits_auditors,
    admits_policymakers,
    staff_page,
)
from registry_core.errors import ConflictError, InvalidRecord, NotFound
from registry_core.simulation.service import MAX_COMPARED, simulation_view
from registry_core.simulation.tables import Simulation
from standards.timeutil import utcnow

bp = Blueprint("simulations_ui", __name__, template_folder="templates")
bp.after_request(_headers)
bp.register_error_handler(HTTPException, _http_error)

RUNNER_ROLES = ("admin", "registry_staff", "policymaker")
PAGE_SIZE = 50
HOUSEHOLDS_PAGE = 100


def _may_run() -> bool:
    return str(g.staff.role) in RUNNER_ROLES


def _min_cell() -> int:
    return min_cell_for(g.staff.principal())


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _policies() -> dict[str, forms.ProgramPolicy]:
    with _sessions()() as session:
        return forms.policies(session)


def _chosen(found: dict[str, forms.ProgramPolicy], code: str) -> forms.ProgramPolicy | None:
    if not found:
        return None
    if code and code not in found:
        abort(400, description="program must be one with an active eligibility rule")
    return found[code] if code else next(iter(found.values()))


def _charts(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per program: the totals chart and the by-area chart (suppressed cells draw nothing)."""
    drawn = {}
    for program in result.get("programs", []):
        current, simulated = program["current"], program["simulated"]
        totals = bars_svg(
            f"{program['program']}: qualifying, current vs simulated",
            ["Households", "People"],
            [
                ("Current policy", [current["households"], current["people"]]),
                ("Simulated", [simulated["households"], simulated["people"]]),
            ],
        )
        areas = program.get("by_area", [])
        sides = ("current_households", "simulated_households")
        counts = [row.get(side) for row in areas for side in sides]
        if all(value is None for value in counts):  # all suppressed (or none): no empty chart
            drawn[program["program"]] = {"totals": totals, "by_area": ""}
            continue
        by_area = bars_svg(
            f"{program['program']}: households by area",
            [row["area"] for row in areas],
            [
                ("Current policy", [row.get("current_households") for row in areas]),
                ("Simulated", [row.get("simulated_households") for row in areas]),
            ],
        )
        drawn[program["program"]] = {"totals": totals, "by_area": by_area}
    return drawn


def _workbench(
    *,
    policy: forms.ProgramPolicy | None,
    found: dict[str, forms.ProgramPolicy],
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    shown: dict[str, Any] | None = None,
    status: int = 200,
) -> Any:
    offset = _int_arg("offset", 0, 0, 1_000_000)
    saved = hub_registry().simulations.list(PAGE_SIZE, offset)
    page = render_template(
        "ui/policy_simulations.html",
        policy=policy,
        programs=list(found),
        values=values,
        errors=errors or {},
        presets=forms.presets(policy) if policy else [],
        pers=forms.PERS,
        periods=forms.PERIODS,
        shown=shown,
        charts=_charts(shown["result"]) if shown else {},
        saved=saved,
        offset=offset,
        page_size=PAGE_SIZE,
        may_run=_may_run(),
        max_compared=MAX_COMPARED,
        min_cell=_min_cell(),
    )
    return page, status


@bp.route("/ui/policy/simulations")
@staff_page
@admits_auditors
@admits_policymakers
def workbench() -> Any:
    found = _policies()
    policy = _chosen(found, request.args.get("program", "").strip()[:64])
    values = forms.defaults(policy) if policy else {}
    return _workbench(policy=policy, found=found, values=values)


@bp.route("/ui/policy/simulations", methods=["POST"])
@staff_page
@admits_auditors
@admits_policymakers
def run() -> Any:
    if not _may_run():
        abort(403, description="Auditors read saved simulations; they do not run them.")
    found = _policies()
    policy = _chosen(found, request.form.get("program", "").strip()[:64])
    if policy is None:
        abort(400, description="No program has an active eligibility rule to simulate.")
    values = {k: v[: forms.MAX_TEXT] for k, v in request.form.items() if k != "csrf_token"}
    save = request.form.get("action") == "save"
    built = forms.scenario_from_form(values, policy)
    errors = dict(built.errors)
    if save and not values.get("name", "").strip():
        errors["name"] = "give the simulation a name to save it"
    if errors:
        _audit("simulation_run", policy.program, "refused: the form has errors")
        return _workbench(policy=policy, found=found, values=values, errors=errors, status=422)
    simulations = hub_registry().simulations
    try:
        if save:
            view = simulations.run(built.scenario, g.staff.name)
        else:
            preview = simulations.evaluate(built.scenario)
    except InvalidRecord as exc:
        errors = forms.violations_by_field(exc.violations, policy, built.extend_to is not None)
        _audit("simulation_run", policy.program, f"refused: {exc}"[:500])
        return _workbench(policy=policy, found=found, values=values, errors=errors, status=422)
    except ConflictError as exc:
        _audit("simulation_run", policy.program, f"refused: {exc}"[:500])
        return _workbench(
            policy=policy, found=found, values=values, errors={"name": str(exc)}, status=409
        )
    if save:
        _audit("simulation_save", f"simulation:{view['id']}", view["name"][:200])
        return redirect(url_for(".one", simulation_id=view["id"]))
    _audit("simulation_run", policy.program, "previewed")
    # The preview is suppressed by the very function a saved simulation is read through.
    transient = Simulation(
        name=built.scenario["name"],
        description=built.scenario.get("description"),
        scenario=built.scenario,
        result=preview,
        as_of=date.fromisoformat(preview["as_of"]),
        seconds=preview["seconds"],
        created_by=g.staff.name,
        created_at=utcnow(),
    )
    shown = simulation_view(transient, _min_cell())
    return _workbench(policy=policy, found=found, values=values, shown=shown)


@bp.route("/ui/policy/simulations/<uuid:simulation_id>")
@staff_page
@admits_auditors
@admits_policymakers
def one(simulation_id: uuid.UUID) -> Any:
    try:
        shown = hub_registry().simulations.get(simulation_id, _min_cell())
    except NotFound:
        abort(404, description="No such simulation.")
    return render_template(
        "ui/policy_simulation.html",
        shown=shown,
        charts=_charts(shown["result"]),
        may_list_households=g.staff.is_staff,
        min_cell=_min_cell(),
    )


@bp.route("/ui/policy/simulations/compare")
@staff_page
@admits_auditors
@admits_policymakers
def compare() -> Any:
    ids = [p.strip() for v in request.args.getlist("ids") for p in v.split(",") if p.strip()]
    if len(ids) < 2:
        abort(400, description="Choose two or more saved simulations to compare.")
    if len(ids) > MAX_COMPARED:
        abort(400, description=f"Compare at most {MAX_COMPARED} simulations at once.")
    try:
        compared = hub_registry().simulations.compare(ids, _min_cell())
    except NotFound:
        abort(404, description="One of the simulations does not exist.")
    except InvalidRecord as exc:
        abort(400, description=str(exc))
    charts = {}
    for program in compared["programs"]:
        scenarios = program["scenarios"]
        charts[program["program"]] = bars_svg(
            f"{program['program']}: households qualifying",
            [s["name"] for s in scenarios],
            [
                ("Current policy", [s["current"]["households"] for s in scenarios]),
                ("Simulated", [s["simulated"]["households"] for s in scenarios]),
            ],
            width=720,
        )
    return render_template("ui/policy_compare.html", compared=compared, charts=charts)


@bp.route("/ui/policy/simulations/<uuid:simulation_id>/households")
@staff_page
def households(simulation_id: uuid.UUID) -> Any:
    """Staff only (``staff_page`` admits no other role here), as the API's list."""
    program = request.args.get("program", "").strip()[:64]
    change = request.args.get("change", "")
    if not program or change not in ("gain", "lose"):
        abort(400, description="program and change (gain or lose) are required")
    offset = _int_arg("offset", 0, 0, 10_000_000)
    simulations = hub_registry().simulations
    try:
        shown = simulations.get(simulation_id)
        listed = simulations.changed_households(
            simulation_id, program, change, min(HOUSEHOLDS_PAGE, MAX_LIST), offset
        )
    except NotFound:
        abort(404, description="No such simulation or program in it.")
    _audit("simulation_households", f"simulation:{simulation_id}", f"{program} {change}")
    return render_template(
        "ui/policy_households.html",
        shown=shown,
        listed=listed,
        page_size=HOUSEHOLDS_PAGE,
    )
