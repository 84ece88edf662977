"""The staff dashboard's pages: overview, connector, dead letters, review queue, audit trail,
login.

Every view is declared ``@public`` for the API's deny-by-default hook because the dashboard
authenticates people with its own session cookie (``hub.ui.security``): the ``staff_page``
wrapper sends anyone without a valid staff session to the login page, and checks the CSRF token
of every POST. Every POST is an operator's action and lands in the audit trail, failed or not.
Pages redirect after each POST, so a browser refresh never repeats an action.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from werkzeug.exceptions import HTTPException

from hub.auth.flask_auth import public
from hub.ratelimit.logins import LoginFailures
from hub.ui import audit, charts, deadletter_view, security, sources
from hub.ui.page_reads import record_page_read

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
# Roles other than staff a view admits (``admits_supervisors``, ``admits_auditors``,
# ``admits_policymakers``).
ADMITS_ATTRIBUTE = "__srhub_admits_roles__"
STATIC_DIR = Path(__file__).with_name("static")
MAX_FAILED_LOGINS = 10  # per client address per window
FAILED_LOGIN_WINDOW = 300.0
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

bp = Blueprint("ui", __name__, template_folder="templates")
bp.record_once(lambda state: security.configure_app(state.app))


# --- plumbing ----------------------------------------------------------------------------------


def _sessions() -> Any:
    from hub.api.context import hub_runtime

    return hub_runtime().sessions


def _audit(action: str, target: str = "", outcome: str = "") -> None:
    staff: security.StaffUser | None = g.get("staff")
    actor = staff.name if staff else "anonymous"
    try:
        audit.record(_sessions(), actor, action, target, outcome)
    except Exception:  # the action happened; a lost audit row must be visible in the log
        log.exception("could not write the audit row for %s %s", action, target)


def staff_page(view: F) -> F:
    """Require a staff session (else redirect to login) and a CSRF token on POST."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        staff = security.current_staff()
        if staff is None:
            if request.method != "GET":
                abort(401, description="Your session has ended; log in again.")
            return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
        g.staff = staff
        if not staff.is_staff and staff.role not in getattr(view, ADMITS_ATTRIBUTE, ()):
            if request.method == "GET" and request.endpoint == "ui.overview":
                return redirect(url_for(HOME_OF_ROLE.get(staff.role, "ui.review_queue")))
            if staff.role == "auditor":
                abort(403, description="Auditors read the registry's household pages only.")
            if staff.role == "policymaker":
                abort(
                    403,
                    description="Policymakers see aggregate figures only (the policy pages): "
                    "no household, person or staff page.",
                )
            abort(
                403,
                description="Supervisors see their areas' households and the review of their "
                "submissions only.",
            )
        if request.method == "POST":
            security.check_csrf()
        return view(*args, **kwargs)

    return public(wrapper)  # type: ignore[return-value]


def _admit(view: F, role: str) -> F:
    setattr(view, ADMITS_ATTRIBUTE, frozenset(getattr(view, ADMITS_ATTRIBUTE, ())) | {role})
    return view


def admits_supervisors(view: F) -> F:
    """Let supervisors (not only staff) open the decorated page; put it under ``staff_page``.
    The page itself limits what it shows to ``g.staff.principal()``'s areas."""
    return _admit(view, "supervisor")


def admits_auditors(view: F) -> F:
    """Let auditors open the decorated page (read-only pages: an auditor changes nothing);
    put it under ``staff_page``. The page masks identifiers for them."""
    return _admit(view, "auditor")


def admits_policymakers(view: F) -> F:
    """Let policymakers open the decorated page; put it under ``staff_page``. Only pages of
    aggregates (counts, rates, small cells suppressed) admit them: never a household or a
    person."""
    return _admit(view, "policymaker")


# Where someone who is not staff lands when they open ``/`` (the overview is staff-only).
HOME_OF_ROLE: dict[str, str] = {
    "auditor": "ui.households",
    "supervisor": "ui.review_queue",
    "policymaker": "ui.policy_overview",
}


def _safe_next(target: str | None) -> str:
    """Only paths of this site: a login link must not bounce people to another site.

    Browsers drop tabs and newlines from a ``Location`` and read a backslash as ``/``, so
    ``/%09/evil.example`` (a tab) or ``/`` + backslash + ``evil.example`` would become
    ``//evil.example``, another host;
    a CR or LF in a header is refused by the server (a 500). So ``next`` must be printable
    ASCII without spaces or backslashes, start with one ``/`` (not two), and stay so once
    percent-decoded (``/%2F%2Fevil`` is refused too, for servers or proxies that decode
    before routing). Anything else goes to the overview.
    """
    fallback = url_for("ui.overview")
    if not target or len(target) > 2000:
        return fallback
    if any(not 0x21 <= ord(char) <= 0x7E for char in target):
        return fallback  # spaces, tabs, CR, LF, DEL and non-ASCII: never in a path we make
    decoded = unquote(target)
    for candidate in (target, decoded):
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in candidate):
            return fallback
        if "\\" in candidate or not candidate.startswith("/") or candidate.startswith("//"):
            return fallback
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return fallback
    return target


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/ui/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {
        "staff": g.get("staff"),
        "csrf_token": security.csrf_token,
        "state_class": sources.state_class,
    }


@bp.app_template_filter("when")
def _when(value: Any) -> str:
    """A stored time as ``YYYY-MM-DD HH:MM:SS`` UTC (pages say UTC in their headers); ISO
    strings from status snapshots are parsed first. Anything else is shown as it is."""
    if value is None or value == "":
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        abort(400, description=f"'{name}' must be a whole number")
    return int(raw)


def _text_arg(name: str, limit: int = 300) -> str | None:
    raw = request.args.get(name, "").strip()
    return raw[:limit] or None


# --- login --------------------------------------------------------------------------------------


LOGIN_FAILURES_KEY = "srhub_ui_login_failures"


def _login_failures() -> LoginFailures:
    """Failed dashboard logins per client address, in the counters every API process shares
    (hub.ratelimit.logins). Never cleared by a success: one good account must not buy its
    holder more guesses at the others."""
    found = current_app.extensions.get(LOGIN_FAILURES_KEY)
    if isinstance(found, LoginFailures):
        return found
    from hub.api.context import hub_runtime
    from hub.ratelimit.flask_limits import make_storage

    runtime = hub_runtime()
    made = LoginFailures(
        make_storage(runtime.settings, runtime.engine),
        "dashboard",
        MAX_FAILED_LOGINS,
        FAILED_LOGIN_WINDOW,
    )
    current_app.extensions[LOGIN_FAILURES_KEY] = made
    return made


@bp.route("/ui/login", methods=["GET", "POST"])
@public
def login() -> Any:
    error = None
    next_path = _safe_next(request.values.get("next"))
    if request.method == "POST":
        security.check_csrf()
        client = request.remote_addr or "?"
        if _login_failures().retry_after(client):
            error = "Too many failed logins from this address; wait five minutes."
            return render_template("ui/login.html", error=error, next=next_path), 429
        method = request.form.get("method", "password")
        try:
            if method == "token":
                staff = security.login_token(request.form.get("token", ""))
            else:
                staff = security.login_password(
                    request.form.get("username", ""), request.form.get("password", "")
                )
        except security.LoginFailed as exc:
            _login_failures().failed(client)
            error = f"Login refused: {exc}."
            who = request.form.get("username", "")[:64] if method != "token" else "(token)"
            _audit("login_failed", who, str(exc))
            return render_template("ui/login.html", error=error, next=next_path), 401
        g.staff = staff
        _audit("login", staff.name, f"{staff.kind} as {staff.role}")
        return redirect(next_path)
    return render_template("ui/login.html", error=error, next=next_path)


@bp.route("/ui/logout", methods=["POST"])
@staff_page
def logout() -> Any:
    _audit("logout", g.staff.name)
    security.logout()
    return redirect(url_for("ui.login"))


@bp.route("/ui/static/<path:filename>")
@public
def static_file(filename: str) -> Any:
    return send_from_directory(STATIC_DIR, filename, max_age=3600)


# --- overview ---------------------------------------------------------------------------------


@bp.route("/")
@staff_page
def overview() -> Any:
    statuses = sources.connector_statuses()
    subs = sources.program_subscriptions(_sessions(), after=_text_arg("subs_after", 64))
    dci_subs = sources.dci_subscriptions(_sessions(), after=_text_arg("dci_after", 99))
    depth: int | None
    try:
        with sources.broker() as opened:
            depth = sources.dead_letter_depth(opened)
    except Exception as exc:  # the page still shows everything else
        log.warning("dashboard: broker unavailable: %s", type(exc).__name__)
        depth = None
    recorder = charts.recorder()
    series = charts.per_minute(recorder)
    try:
        field = sources.field_work(_sessions())
    except Exception as exc:  # the page still shows everything else
        log.warning("dashboard: field work counts unavailable: %s", type(exc).__name__)
        field = None
    try:
        upkeep = sources.registry_upkeep(_sessions())
    except Exception as exc:  # the page still shows everything else
        log.warning("dashboard: registry upkeep counts unavailable: %s", type(exc).__name__)
        upkeep = None
    return render_template(
        "ui/overview.html",
        field=field,
        upkeep=upkeep,
        connectors=statuses,
        workers=sources.worker_statuses(),
        subscriptions=subs,
        dci_subscriptions=dci_subs,
        alerts=sources.recent_alerts(_sessions()),
        dead_letter_depth=depth,
        throughput_svg=charts.throughput_svg(series),
        errors_svg=charts.errors_svg(series),
    )


# --- connectors -------------------------------------------------------------------------------


def _connector_or_404(name: str) -> dict[str, Any]:
    status = sources.connector_statuses().get(name)
    if status is None:
        abort(404, description=f"No connector named {name!r} runs in this hub.")
    return status


@bp.route("/ui/connectors/<name>")
@staff_page
def connector(name: str) -> Any:
    status = _connector_or_404(name)
    runners = sources.connector_runners(name)
    recorder = charts.recorder()
    windows = {}
    for kind in ("partner", "inbound", "ingest"):
        component = f"{kind}:{name}"
        if component in recorder.components(kind):
            windows[kind] = recorder.summary(component)
    failures: deadletter_view.Listing | None
    try:
        with sources.broker() as opened:
            failures = deadletter_view.listing(opened, routing_prefix=f"{name}.", size=20)
    except Exception as exc:
        log.warning("connector page: broker unavailable: %s", type(exc).__name__)
        failures = None
    status_filter = _text_arg("status", 32)
    if status_filter and status_filter not in sources.MESSAGE_STATUSES:
        abort(400, description=f"status must be one of {', '.join(sources.MESSAGE_STATUSES)}")
    messages = sources.connector_messages(
        _sessions(), name, status=status_filter, before=_int_arg("before")
    )
    trail = audit.page(_sessions(), target=name, size=10)
    return render_template(
        "ui/connector.html",
        name=name,
        status=status,
        runners=runners,
        checkpoints=sources.checkpoint_of(_sessions(), name),
        windows=windows,
        failures=failures,
        messages=messages,
        status_filter=status_filter,
        message_statuses=sources.MESSAGE_STATUSES,
        trail=trail,
    )


@bp.route("/ui/connectors/<name>/<action>", methods=["POST"])
@staff_page
def connector_action(name: str, action: str) -> Any:
    if action not in ("pause", "resume", "sync"):
        abort(404)
    _connector_or_404(name)
    runners = sources.connector_runners(name)
    if not runners:
        outcome = "refused: this connector has no scheduled runner (push or lookup only)"
        flash(f"{name}: {outcome}.", "error")
    elif action == "sync" and any(r.paused for r in runners):
        outcome = "refused: the connector is paused; resume it first"
        flash(f"{name}: {outcome}.", "error")
    else:
        for runner in runners:
            {"pause": runner.pause, "resume": runner.resume, "sync": runner.wake}[action]()
        outcome = {"pause": "paused", "resume": "resumed", "sync": "sync started"}[action]
        flash(f"{name}: {outcome}.", "ok")
    _audit(f"connector_{action}", name, outcome)
    return redirect(url_for("ui.connector", name=name))


# --- dead letters -----------------------------------------------------------------------------


@bp.route("/ui/dead-letters")
@staff_page
def dead_letters() -> Any:
    error_class = _text_arg("error_class")
    with sources.broker() as opened:
        found = deadletter_view.listing(
            opened, error_class=error_class, after=_text_arg("after", 200)
        )
    return render_template(
        "ui/deadletters.html",
        listing=found,
        error_class=error_class,
        scan_limit=deadletter_view.SCAN_LIMIT,
    )


@bp.route("/ui/dead-letters/<action>", methods=["POST"])
@staff_page
def dead_letter_action(action: str) -> Any:
    if action not in ("replay", "discard"):
        abort(404)
    message_ids = [m.strip()[:200] for m in request.form.getlist("message_id") if m.strip()]
    error_class = request.form.get("error_class", "").strip()[:300] or None
    if message_ids:
        error_class = None  # single letters: the id says it all
        target = ",".join(message_ids)[:300]
    elif error_class:
        target = f"error_class={error_class}"
    else:
        flash("Choose a dead letter or an error class first.", "error")
        return redirect(url_for("ui.dead_letters"))
    act = deadletter_view.replay_letters if action == "replay" else deadletter_view.discard_letters
    try:
        with sources.broker() as opened:
            done = act(opened, message_ids, error_class)
    except Exception as exc:
        outcome = f"failed: {type(exc).__name__}"
        _audit(f"dead_letter_{action}", target, outcome)
        flash(f"{action.capitalize()} {outcome}; nothing was lost, try again.", "error")
        return redirect(url_for("ui.dead_letters"))
    past = "replayed" if action == "replay" else "discarded"
    outcome = f"{past} {done}"
    _audit(f"dead_letter_{action}", target, outcome)
    flash(f"{past.capitalize()} {done} dead letter{'s' if done != 1 else ''}.", "ok")
    back = {"error_class": error_class} if error_class and action == "replay" else {}
    return redirect(url_for("ui.dead_letters") + (f"?{urlencode(back)}" if back else ""))


# --- review queue ----------------------------------------------------------------------------


def _staff_principal() -> Any:
    """The signed-in user as a ``Principal``, so the dashboard applies the API's area rule (a
    supervisor decides only in their areas)."""
    staff: security.StaffUser = g.staff
    return staff.principal()


@bp.route("/ui/review")
@staff_page
@admits_supervisors
def review_queue() -> Any:
    from hub.review import states
    from hub.review.service import ReviewQueue

    state = _text_arg("state", 16) or "submitted"
    if state != "all" and state not in states.STATES:
        abort(400, description=f"state must be one of {', '.join(states.STATES)} or all")
    filters = {
        "area": _text_arg("area", 64),
        "submitter": _text_arg("submitter", 200),
        "form": _text_arg("form", 200),
    }
    principal = _staff_principal()
    prefixes = list(principal.admin_areas) if principal.area_scoped else None
    offset = _int_arg("offset") or 0
    with _sessions()() as session:
        items, total = ReviewQueue.list_items(
            session,
            state=None if state == "all" else state,
            **filters,
            area_prefixes=prefixes,
            limit=50,
            offset=offset,
        )
    record_page_read(items)
    return render_template(
        "ui/review.html",
        items=items,
        total=total,
        offset=offset,
        state=state,
        states=states.STATES,
        filters=filters,
    )


@bp.route("/ui/review/<uuid:item_id>/<decision>", methods=["POST"])
@staff_page
@admits_supervisors
def review_decision(item_id: Any, decision: str) -> Any:
    from hub.review import states
    from hub.review.service import Actor, ItemNotFound, ReviewQueue

    if decision not in states.DECISIONS:
        abort(404)
    reasons = [r.strip()[:500] for r in request.form.get("reasons", "").splitlines() if r.strip()]
    principal = _staff_principal()
    staff: security.StaffUser = g.staff
    back = request.form.get("back", "")
    target = f"review:{item_id}"
    try:
        with _sessions()() as session, session.begin():
            item = ReviewQueue.load(session, item_id, lock=True)
            if not principal.may_touch_area(item.admin_area_code):
                abort(403, description="This item is outside the areas you supervise.")
            ReviewQueue().decide(
                session, item.id, decision, reasons, Actor(staff.name, staff.role, "dashboard")
            )
    except ItemNotFound:
        abort(404, description="No such review item.")
    except (states.TransitionRefused, ValueError) as exc:
        _audit(f"review_{decision}", target, f"refused: {exc}")
        flash(f"Not done: {exc}.", "error")
    else:
        _audit(f"review_{decision}", target, "; ".join(reasons) or "done")
        flash(f"Item {decision}.", "ok")
    return redirect(
        _safe_next(back) if back.startswith("/ui/review") else url_for("ui.review_queue")
    )


# --- audit trail -----------------------------------------------------------------------------


@bp.route("/ui/audit")
@staff_page
def audit_trail() -> Any:
    found = audit.page(
        _sessions(),
        before=_int_arg("before"),
        actor=_text_arg("actor", 200),
        target=_text_arg("target", 300),
    )
    return render_template(
        "ui/audit.html",
        trail=found,
        actor=_text_arg("actor", 200) or "",
        target=_text_arg("target", 300) or "",
    )


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    """Errors on dashboard pages are pages, not problem+json documents."""
    code = error.code or 500
    return render_template("ui/error.html", code=code, detail=error.description), code


# Field collection's pages (forms, submissions, conflicts) register on this blueprint.
from hub.ui import change_request_views as _change_request_views  # noqa: E402,F401
from hub.ui import consent_views as _consent_views  # noqa: E402,F401
from hub.ui import household_views as _household_views  # noqa: E402,F401
from hub.ui import intake_views as _intake_views  # noqa: E402,F401
from hub.ui import match_views as _match_views  # noqa: E402,F401
from hub.ui import policy_views as _policy_views  # noqa: E402,F401
from hub.ui import read_audit_views as _read_audit_views  # noqa: E402,F401
