"""The dashboard's data-quality page: live issues by kind and area, the daily trend, the list
of issues with their actions, and a button to scan the whole registry.

A blueprint of its own (``quality_ui``) with the dashboard's rules: ``staff_page`` (a staff
session, a CSRF token on each POST), the same security headers and error pages, an audit row
for every action (done or refused), a redirect after it. Administrators and registry staff
see and act on everything and may start a scan; supervisors see and act on the issues of
their own areas only (the page is filtered by them, and an action outside them is refused).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from hub.quality import scan as scans
from hub.quality import service
from hub.quality.rules import REASONS, Kind
from hub.quality.tables import IssueState
from hub.ui import charts
from hub.ui.page_reads import record_page_read
from hub.ui.views import (
    _audit,
    _headers,
    _http_error,
    _sessions,
    admits_auditors,
    admits_supervisors,
    staff_page,
)
from standards.timeutil import utcnow

bp = Blueprint("quality_ui", __name__, template_folder="templates")
bp.after_request(_headers)
bp.register_error_handler(HTTPException, _http_error)

PAGE_SIZE = 50
TREND_DAYS = 30
ACTION_LABELS = {"acknowledge": "Acknowledge", "resolve": "Resolve", "dismiss": "Dismiss"}


def _principal() -> Any:
    return g.staff.principal()


def _arg(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        abort(400, description=f"{name} must be one of {', '.join(allowed)}")
    return value


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, description=f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _household_arg() -> uuid.UUID | None:
    """The household whose issues the list shows (a link from a household's page)."""
    raw = request.args.get("household", "").strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        abort(400, description="household must be a household id")


@bp.route("/ui/quality")
@staff_page
@admits_supervisors
@admits_auditors
def quality_page() -> Any:
    principal = _principal()
    prefixes = list(principal.admin_areas) if principal.area_scoped else None
    kind = _arg("kind", Kind.ALL)
    state = request.args.get("state", IssueState.OPEN).strip() or IssueState.OPEN
    if state not in (*IssueState.ALL, "all"):
        abort(400, description=f"state must be one of {', '.join(IssueState.ALL)} or all")
    area = request.args.get("area", "").strip()[:64] or None
    household = _household_arg()
    level = _int("level", 1, 1, 6)
    offset = _int("offset", 0, 0, 10_000_000)
    listed = service.IssueFilter(
        kind=kind,
        state=None if state == "all" else state,
        area=area,
        household_id=household,
        area_prefixes=prefixes,
    )
    counted = service.IssueFilter(kind=kind, area=area, area_prefixes=prefixes)
    with _sessions()() as session:
        found = service.summary(
            session, counted, level=level, days=TREND_DAYS, today=utcnow().date()
        )
        issues, total = service.list_issues(session, listed, limit=PAGE_SIZE, offset=offset)
        last = scans.latest_scan(session)
        last_scan = scans.progress(last) if last is not None else None
    record_page_read(issues)
    grid = {(cell["kind"], cell["area"]): cell["count"] for cell in found["by_kind_area"]}
    trend = found["trend"]
    trend_svg = charts.daily_svg(
        f"Issues per day, last {TREND_DAYS} days (UTC)",
        trend["days"],
        {name: trend[name] for name in ("opened", "resolved", "dismissed")},
    )
    filters = {
        "kind": kind or "",
        "state": state,
        "area": area or "",
        "level": level,
        "household": str(household) if household else "",
    }
    return render_template(
        "ui/quality.html",
        summary=found,
        grid=grid,
        kinds=Kind.ALL,
        states=IssueState.ALL,
        issues=issues,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        filters=filters,
        trend_svg=trend_svg,
        last_scan=last_scan,
        may_scan=g.staff.is_staff,
        # Auditors read the page; they change nothing (the POST routes refuse them too).
        may_act=g.staff.role != "auditor",
        action_labels=ACTION_LABELS,
        reasons=REASONS,
    )


def _back() -> str:
    back = request.form.get("back", "")
    if back.startswith("/ui/quality") and not back.startswith("//") and "\\" not in back:
        return back
    return url_for("quality_ui.quality_page")


@bp.route("/ui/quality/issues/<uuid:issue_id>/<action>", methods=["POST"])
@staff_page
@admits_supervisors
def issue_action(issue_id: uuid.UUID, action: str) -> Any:
    if action not in service.TRANSITIONS:
        abort(404)
    reason = request.form.get("reason", "").strip()[:500] or None
    principal = _principal()
    target = f"quality:{issue_id}"
    try:
        with _sessions()() as session, session.begin():
            row = service.load_issue(session, issue_id, lock=True)
            if not principal.may_touch_area(row.admin_area_code):
                abort(403, description="This issue is outside the areas you cover.")
            service.change_state(row, action, g.staff.name, reason, utcnow())
    except service.IssueNotFound:
        abort(404, description="No such data-quality issue.")
    except service.TransitionRefused as exc:
        _audit(f"quality_{action}", target, f"refused: {exc}")
        flash(f"Not done: {exc}.", "error")
    else:
        _audit(f"quality_{action}", target, reason or "done")
        flash(f"Issue {service.TRANSITIONS[action][1]}.", "ok")
    return redirect(_back())


@bp.route("/ui/quality/scans", methods=["POST"])
@staff_page
def start_scan() -> Any:
    from hub.api.context import hub_runtime

    runtime = hub_runtime()
    try:
        state = scans.start_in_background(
            runtime.sessions, runtime.settings.quality, f"ui:{g.staff.name}"
        )
    except scans.ScanRunning as exc:
        _audit("quality_scan", "quality", f"refused: {exc}")
        flash(f"Not started: {exc}.", "error")
    else:
        _audit("quality_scan", f"scan:{state['id']}", "started")
        flash("Scan started: the page shows its progress when you reload it.", "ok")
    return redirect(url_for("quality_ui.quality_page"))
