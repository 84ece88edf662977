"""The coverage report pages (``/ui/policy/reports``): the table by area level and segment,
the gaps (eligible, not enrolled) and the overlaps (enrolled, not eligible; in several
programs), filtered by program, with CSV and JSON downloads.

The pages take the API's query (``level``, ``segment``, ``program``, ``as_of``) and read it
through the API's own code (``hub.api.reports.requested_report``): one suppressed table, so a
hidden count is shown as *suppressed*, never as a number, and the downloads are the API's
answers byte for byte (``coverage_answer``). Who: staff, auditors and policymakers, as the
API's readers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from hub.api.problems import BadRequest
from hub.api.reports import VIEWS, coverage_answer, requested_report
from hub.ui.views import (
    _headers,
    _http_error,
    _sessions,
    admits_auditors,
    admits_policymakers,
    staff_page,
)
from registry_core.reports.counts import SEGMENTS, known_programs
from registry_core.reports.coverage import MAX_LEVEL, gaps_view, overlaps_view

bp = Blueprint("reports_ui", __name__, template_folder="templates")
bp.after_request(_headers)
bp.register_error_handler(HTTPException, _http_error)

FORMATS = ("csv", "json")


def _downloads(view: str) -> dict[str, str]:
    """The page's query with each format: links to the API's answer of this view."""
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "format"]
    return {
        form: url_for("reports_ui.export", view=view) + "?" + urlencode([*kept, ("format", form)])
        for form in FORMATS
    }


def _page(view: str) -> Any:
    with _sessions()() as session:
        programs = known_programs(session)
    chosen = [p.strip() for v in request.args.getlist("program") for p in v.split(",") if p]
    filters = {
        "level": request.args.get("level", "1"),
        "segment": request.args.get("segment", "none"),
        "programs": chosen,
        "as_of": request.args.get("as_of", ""),
    }
    context: dict[str, Any] = {
        "view": view,
        "views": VIEWS,
        "filters": filters,
        "programs": programs,
        "segments": SEGMENTS,
        "max_level": MAX_LEVEL,
        "downloads": _downloads(view),
        "error": None,
        "report": None,
        "items": [],
    }
    try:
        report, _ = requested_report()
    except BadRequest as exc:
        context["error"] = exc.detail
        return render_template("ui/policy_reports.html", **context), 400
    context["report"] = report.as_dict()
    if view == "gaps":
        context["items"] = gaps_view(report)
    elif view == "overlaps":
        context["items"] = overlaps_view(report)
    return render_template("ui/policy_reports.html", **context)


@bp.route("/ui/policy/reports")
@staff_page
@admits_auditors
@admits_policymakers
def coverage() -> Any:
    return _page("coverage")


@bp.route("/ui/policy/reports/gaps")
@staff_page
@admits_auditors
@admits_policymakers
def gaps() -> Any:
    return _page("gaps")


@bp.route("/ui/policy/reports/overlaps")
@staff_page
@admits_auditors
@admits_policymakers
def overlaps() -> Any:
    return _page("overlaps")


@bp.route("/ui/policy/reports/export/<view>")
@staff_page
@admits_auditors
@admits_policymakers
def export(view: str) -> Any:
    """The API's answer of ``view`` to the page's query, as a file to keep."""
    if view not in VIEWS:
        abort(404)
    try:
        response = coverage_answer(view)
    except BadRequest as exc:
        abort(400, description=exc.detail)
    if response.mimetype == "application/json":
        name = "coverage" if view == "coverage" else f"coverage-{view}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
    return response
