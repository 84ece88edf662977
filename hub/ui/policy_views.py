"""The policy pages (``/ui/policy``): what policymakers open, and all they open.

Policymakers see aggregates only: counts and rates with small cells suppressed, never a
household, a person or a staff page (``staff_page`` refuses them everywhere else with a 403
that says so). Staff and auditors open these pages too. The pages register on the dashboard's
blueprint so they share its session, CSRF and error pages.

``/ui/policy`` is the executive overview: headline counts, the coverage map (layer, level and
program chosen by a plain GET form: the page runs no script), program comparisons and trends
from the daily snapshots (``registry_core.reports.snapshots``). Staff may take today's
snapshot on demand (``POST /ui/policy/snapshot``); the scheduled jobs take one a day.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from jsonschema import Draft202012Validator

from hub.ui import maps, policy_charts, policy_data
from hub.ui.views import _audit, _sessions, admits_auditors, admits_policymakers, bp, staff_page
from registry_core.reports.coverage import MAX_LEVEL
from registry_core.reports.snapshots import take_snapshot
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "level": {"type": "string", "pattern": f"^[1-{MAX_LEVEL}]$"},
        "layer": {"enum": list(policy_data.LAYERS)},
        "program": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    },
}
_QUERY = Draft202012Validator(QUERY_SCHEMA)


def _query() -> dict[str, str]:
    """The page's query string, checked; a 400 page names what is wrong."""
    found = {name: request.args.get(name, "") for name in request.args}
    found = {name: value for name, value in found.items() if value != ""}
    for error in _QUERY.iter_errors(found):
        if error.validator == "additionalProperties":
            abort(
                400,
                description="Unknown query parameter; the parameters are: "
                + ", ".join(QUERY_SCHEMA["properties"]),
            )
        where = ".".join(str(p) for p in error.path) or "query"
        allowed = {
            "level": f"a level from 1 to {MAX_LEVEL}",
            "layer": "one of " + ", ".join(policy_data.LAYERS),
            "program": "a program code",
        }
        abort(400, description=f"'{where}' must be {allowed.get(where, 'valid')}.")
    return found


@bp.route("/ui/policy")
@staff_page
@admits_auditors
@admits_policymakers
def policy_overview() -> Any:
    query = _query()
    runtime = _runtime()
    settings = runtime.settings.reports
    today = utcnow().date()
    layer = query.get("layer", "coverage_rate")
    with _sessions()() as session:
        top = policy_data.headline(session, settings, today)
        programs = list(top["programs"])
        view = policy_data.map_view(
            session,
            settings,
            today,
            level=int(query["level"]) if "level" in query else None,
            layer=layer,
            program=(query.get("program") or "").upper() or None,
            programs=programs,
        )
        comparison = policy_data.program_comparison(session, top)
        history = policy_data.trend(session, today)
    spec = policy_data.LAYERS[layer]
    title = spec.title + (f" — {view.program}" if spec.source == "program" and view.program else "")
    map_svg = maps.choropleth_svg(view.areas, view.legend, title=title) if view.areas else ""
    trend_charts = []
    if len(history["days"]) >= 1:
        trend_charts.append(
            policy_charts.trend_svg(
                "Registered households", history["days"], {"registered": history["registered"]}
            )
        )
        for program, measures in history["programs"].items():
            trend_charts.append(
                policy_charts.trend_svg(
                    f"{program}: households",
                    history["days"],
                    {
                        "eligible": measures["eligible"],
                        "enrolled": measures["enrolled"],
                        "eligible, not enrolled": measures["eligible_not_enrolled"],
                    },
                )
            )
    return render_template(
        "ui/policy.html",
        top=top,
        view=view,
        layers=policy_data.LAYERS,
        layer_spec=spec,
        map_title=title,
        map_svg=map_svg,
        legend_svg=maps.legend_svg(view.legend, unit=spec.unit),
        comparison=comparison,
        programs_svg=policy_charts.programs_svg(comparison) if comparison else "",
        history=history,
        trend_charts=trend_charts,
        today=today,
    )


@bp.route("/ui/policy/snapshot", methods=["POST"])
@staff_page
def policy_snapshot() -> Any:
    """Take (or retake) today's snapshot of the headline counts; staff only."""
    runtime = _runtime()
    today = utcnow().date()
    try:
        with _sessions().begin() as session:
            rows = take_snapshot(
                session,
                day=today,
                min_cell=runtime.settings.reports.min_cell,
                facts=runtime.settings.reports.facts(),
            )
    except Exception as exc:
        log.warning("policy snapshot failed: %s", type(exc).__name__)
        _audit("policy_snapshot", today.isoformat(), f"failed: {type(exc).__name__}")
        flash("The snapshot could not be taken; see the hub's log.", "error")
        return redirect(url_for("ui.policy_overview"))
    _audit("policy_snapshot", today.isoformat(), f"{rows} rows")
    flash(f"Today's snapshot taken ({rows} rows).", "ok")
    return redirect(url_for("ui.policy_overview"))


def _runtime() -> Any:
    from hub.api.context import hub_runtime

    return hub_runtime()
