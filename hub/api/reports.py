"""Aggregate coverage reports (``registry_core.reports``; docs/policy.md, "Coverage reports").

- ``GET /api/v1/reports/coverage``: registered, scored, eligible and enrolled per program,
  by area (``level``) and ``segment``, with totals and rates.
- ``GET /api/v1/reports/coverage/gaps``: eligible but not enrolled, largest first.
- ``GET /api/v1/reports/coverage/overlaps``: enrolled but not eligible, enrolled in several.

Each takes ``level`` (1-6), ``segment``, ``program`` (repeatable or comma-separated; default
every program known) and ``format`` (``json`` or ``csv``). Every answer comes from one table
suppressed by ``[srhub.reports] min_cell``: no count under it, and no count from which one
could be worked out, is ever in the JSON or the CSV. Aggregates only, so the ``policymaker``
role reads them beside admins, registry staff and auditors; nobody else.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, jsonify, request
from jsonschema import Draft202012Validator

from hub.api.context import hub_runtime
from hub.api.problems import BadRequest
from hub.auth.flask_auth import requires
from hub.auth.roles import Role
from registry_core.reports.counts import SEGMENTS
from registry_core.reports.coverage import (
    MAX_LEVEL,
    CoverageReport,
    coverage_report,
    flat_csv,
    flat_overlaps,
    gaps_view,
    overlaps_view,
    report_csv,
)
from standards.timeutil import utcnow

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")

READERS = (Role.admin, Role.registry_staff, Role.auditor, Role.policymaker)
MAX_PROGRAMS = 20

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "level": {"type": "integer", "minimum": 1, "maximum": MAX_LEVEL},
        "segment": {"enum": list(SEGMENTS)},
        "program": {
            "type": "array",
            "maxItems": MAX_PROGRAMS,
            "items": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
        },
        "format": {"enum": ["json", "csv"]},
        "as_of": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    },
}
_QUERY = Draft202012Validator(QUERY_SCHEMA)


def _query() -> dict[str, Any]:
    """The query string as a checked object; a 400 names the parameter and what it takes."""
    found: dict[str, Any] = {}
    for name in request.args:
        values = request.args.getlist(name)
        if name == "program":
            found[name] = [p.strip() for v in values for p in v.split(",") if p.strip()]
        elif name == "level":
            try:
                found[name] = int(values[-1])
            except ValueError:
                raise BadRequest("query parameter level must be an integer") from None
        else:
            found[name] = values[-1]
    for error in sorted(_QUERY.iter_errors(found), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "query"
        if error.validator == "additionalProperties":
            known = ", ".join(QUERY_SCHEMA["properties"])
            raise BadRequest(f"unknown query parameter; the parameters are: {known}")
        raise BadRequest(f"query parameter {where}: {error.message}")
    return found


def requested_report() -> tuple[CoverageReport, str]:
    """The suppressed report this request's query asks for, and the format asked (the
    dashboard's report pages read the same query through this)."""
    query = _query()
    runtime = hub_runtime()
    settings = runtime.settings.reports
    as_of = utcnow().date()
    if "as_of" in query:
        try:
            as_of = date.fromisoformat(query["as_of"])
        except ValueError:
            raise BadRequest("query parameter as_of must be a date (YYYY-MM-DD)") from None
    facts = settings.facts()
    with runtime.sessions() as session:
        report = coverage_report(
            session,
            level=query.get("level", 1),
            segment=query.get("segment", "none"),
            programs=query.get("program") or None,
            min_cell=settings.min_cell,
            as_of=as_of,
            facts=facts,
        )
    return report, query.get("format", "json")


def _csv(body: str, name: str) -> Response:
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


VIEWS = ("coverage", "gaps", "overlaps")


def coverage_answer(view: str) -> Response:
    """The answer of one view (``coverage``, ``gaps`` or ``overlaps``) to this request's
    query, in its ``format``: the API's, and the dashboard's download links give the same."""
    report, form = requested_report()
    if view == "coverage":
        if form == "csv":
            return _csv(report_csv(report), "coverage")
        return jsonify(report.as_dict())
    header = {k: v for k, v in report.as_dict().items() if k not in ("rows", "rates")}
    if view == "gaps":
        items = gaps_view(report)
        if form == "csv":
            return _csv(flat_csv(items), "coverage-gaps")
        return jsonify({**header, "items": items})
    overlapping = overlaps_view(report)
    if form == "csv":
        return _csv(flat_csv(flat_overlaps(overlapping)), "coverage-overlaps")
    return jsonify({**header, "items": overlapping})


@bp.get("/coverage")
@requires(*READERS)
def coverage() -> Response:
    return coverage_answer("coverage")


@bp.get("/coverage/gaps")
@requires(*READERS)
def gaps() -> Response:
    return coverage_answer("gaps")


@bp.get("/coverage/overlaps")
@requires(*READERS)
def overlaps() -> Response:
    return coverage_answer("overlaps")
