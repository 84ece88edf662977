"""Dashboard pages registry staff work with daily: household search, one household's page,
the recertification lists and the queues landing page.

Who opens what (``staff_page`` rules: a session, a CSRF token on each POST, an audit row per
action, a redirect after it):

- household search and page, recertification lists: staff everywhere; supervisors within
  their areas (a household outside them is refused with 403); auditors everywhere, read-only,
  with identifiers masked (``hub.api.visibility``);
- recording consent and confirming a recertification: administrators and registry staff;
- the queues page: staff.

The household page is assembled by ``household_sections.household_sections``; this module
only loads the household, checks the viewer's area and hands over.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from jsonschema import Draft202012Validator

from hub.api.audit_reads import record_read
from hub.api.consents import CONSENT_SCHEMA
from hub.api.visibility import identifiers_visible_to, masked_household
from hub.auth.roles import Principal
from hub.readaudit.records import ReadRecords
from hub.ui.household_search import PAGE_SIZE, SearchCriteria, SearchRefused, search_households
from hub.ui.household_sections import SectionContext, household_sections
from hub.ui.page_reads import record_page_read
from hub.ui.views import (
    _audit,
    _int_arg,
    _safe_next,
    _sessions,
    _text_arg,
    admits_auditors,
    admits_supervisors,
    bp,
    staff_page,
)
from registry_core.crypto import IdentifierCipher
from registry_core.errors import NotFound
from registry_core.models import HouseholdStatus
from registry_core.service import Registry, Source

RECERTIFICATION_STATES = ("overdue", "due")
MAX_OFFSET = 10_000_000
_CONSENT = Draft202012Validator(CONSENT_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _registry() -> Registry:
    from hub.api.context import hub_registry

    return hub_registry()


def _cipher() -> IdentifierCipher:
    from hub.api.context import hub_runtime

    return hub_runtime().cipher


def _viewer() -> Principal:
    principal: Principal = g.staff.principal()
    return principal


def _offset() -> int:
    offset = _int_arg("offset") or 0
    if offset > MAX_OFFSET:
        abort(400, description="'offset' is too large")
    return offset


def _may_change() -> None:
    if not g.staff.is_staff:
        abort(403, description="Only administrators and registry staff change households.")


def _staff_source() -> Source:
    return Source("registry_staff", f"ui:{g.staff.name}")


def _household_in_scope(household_id: Any) -> dict[str, Any]:
    """The household as this viewer may see it: 404 when unknown, 403 outside a supervisor's
    areas, identifiers masked for viewers who may not see them."""
    try:
        record = _registry().get_household(household_id)
    except NotFound:
        abort(404, description="No such household.")
    viewer = _viewer()
    if not viewer.may_touch_area(record.get("admin_area_code")):
        abort(403, description="This household is outside the areas you cover.")
    return record if identifiers_visible_to(viewer) else masked_household(record)


def _record_read(records: ReadRecords, query_kind: str = "") -> None:
    """The page's read in the read audit (``hub.api.audit_reads``), as the staff user."""
    record_read(records, "ui", principal=_viewer(), query_kind=query_kind)


def _search_kind(criteria: SearchCriteria) -> str:
    """Which fields a search used, never what was typed in them."""
    used = [name for name in ("text", "national_id", "area", "status") if getattr(criteria, name)]
    return "search:" + "+".join(used) if used else "list"


# --- search ----------------------------------------------------------------------------------


@bp.route("/ui/households")
@staff_page
@admits_supervisors
@admits_auditors
def households() -> Any:
    criteria = SearchCriteria(
        text=request.args.get("q", "").strip(),
        national_id=request.args.get("national_id", "").strip(),
        area=request.args.get("area", "").strip(),
        status=request.args.get("status", "").strip(),
    )
    offset = _offset()
    try:
        with _sessions()() as session:
            found, total = search_households(session, _cipher(), criteria, _viewer(), offset=offset)
    except SearchRefused as exc:
        abort(400, description=f"Search refused: {exc}.")
    _record_read(ReadRecords.of_households(found), _search_kind(criteria))
    return render_template(
        "ui/households.html",
        households=found,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        criteria=criteria,
        statuses=HouseholdStatus.ALL,
        masked=not identifiers_visible_to(_viewer()),
    )


# --- one household ---------------------------------------------------------------------------


@bp.route("/ui/households/<uuid:household_id>")
@staff_page
@admits_supervisors
@admits_auditors
def household(household_id: Any) -> Any:
    record = _household_in_scope(household_id)
    _record_read(ReadRecords.of_households([record]))
    context = SectionContext(record, _viewer(), _registry(), _sessions())
    return render_template(
        "ui/household.html",
        household=record,
        sections=household_sections(context),
        masked=not identifiers_visible_to(context.viewer),
    )


def _consent_body(household: dict[str, Any]) -> dict[str, Any]:
    """The consent form as the API's body (``CONSENT_SCHEMA``): its subject is the household
    or one of its current members."""
    subject = request.form.get("subject", "").strip()
    body: dict[str, Any] = {
        "program": request.form.get("program", "").strip(),
        "purpose": request.form.get("purpose", "").strip(),
        "channel": request.form.get("channel", "").strip(),
    }
    evidence = request.form.get("evidence_reference", "").strip()
    if evidence:
        body["evidence_reference"] = evidence
    if subject == "household":
        body["household_id"] = household["id"]
    elif subject in {m["id"] for m in household.get("members", [])}:
        body["person_id"] = subject
    else:
        body["person_id"] = ""  # refused below: not the household nor a current member
    return body


def _consent_problems(body: dict[str, Any]) -> list[str]:
    labels = {
        "program": "program (letters, digits, _ . : -, up to 64)",
        "purpose": "purpose (letters, digits, _ . : -, up to 64)",
        "channel": "channel",
        "evidence_reference": "evidence reference (up to 256 characters)",
        "person_id": "whose consent (the household or a current member)",
        "household_id": "whose consent (the household or a current member)",
    }
    found: list[str] = []
    for error in _CONSENT.iter_errors(body):
        key = str(error.path[0]) if error.path else ""
        if error.validator == "required":
            key = next((k for k in ("program", "purpose", "channel") if k not in body), key)
        label = labels.get(key, "the form")
        if label not in found:
            found.append(label)
    return found


@bp.route("/ui/households/<uuid:household_id>/consents", methods=["POST"])
@staff_page
def record_household_consent(household_id: Any) -> Any:
    _may_change()
    record = _household_in_scope(household_id)
    body = _consent_body(record)
    target = f"household:{household_id}"
    problems = _consent_problems(body)
    if problems:
        _audit("consent_record", target, "refused: " + "; ".join(problems))
        flash("Not recorded; check " + "; ".join(problems) + ".", "error")
        return redirect(url_for("ui.household", household_id=household_id) + "#consent")
    result = _registry().grant_consent(
        body["program"],
        body["purpose"],
        body["channel"],
        _staff_source(),
        person_id=body.get("person_id"),
        household_id=body.get("household_id"),
        evidence_reference=body.get("evidence_reference"),
        recorded_by=f"ui:{g.staff.name}",
    )
    consent_id = result.record["consent_id"]
    _audit("consent_record", f"consent:{consent_id}", f"{body['program']}/{body['purpose']}")
    flash(f"Consent recorded for {body['program']} ({body['purpose']}).", "ok")
    return redirect(url_for("ui.household", household_id=household_id) + "#consent")


@bp.route("/ui/households/<uuid:household_id>/recertify", methods=["POST"])
@staff_page
def confirm_recertification(household_id: Any) -> Any:
    _may_change()
    _household_in_scope(household_id)
    status = _registry().recertify(household_id, _staff_source())
    _audit("recertify", f"household:{household_id}", f"due {status['due_on']}")
    flash(f"Recertified; next due on {status['due_on']}.", "ok")
    back = request.form.get("back", "")
    if back.startswith("/ui/recertification"):  # the list it was confirmed from, filters kept
        return redirect(_safe_next(back))
    return redirect(url_for("ui.household", household_id=household_id) + "#recertification")


# --- recertification lists -------------------------------------------------------------------


@bp.route("/ui/recertification")
@staff_page
@admits_supervisors
@admits_auditors
def recertification() -> Any:
    from hub.api.recertification import area_prefixes

    state = _text_arg("state", 16) or "overdue"
    if state not in RECERTIFICATION_STATES:
        abort(400, description="state must be due or overdue")
    area = _text_arg("area", 64)
    offset = _offset()
    prefixes = area_prefixes(area, _viewer())
    registry = _registry()
    items, total = registry.list_recertification(
        state, area_prefixes=prefixes, limit=PAGE_SIZE, offset=offset
    )
    counts = registry.recertification_counts_by_area(area_prefixes=prefixes)
    totals = {
        listed: registry.list_recertification(listed, area_prefixes=prefixes, limit=1)[1]
        for listed in RECERTIFICATION_STATES
    }
    record_page_read(items)
    return render_template(
        "ui/recertification.html",
        items=items,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        state=state,
        states=RECERTIFICATION_STATES,
        area=area or "",
        counts=counts,
        totals=totals,
        may_confirm=g.staff.is_staff,
    )


# --- queues ----------------------------------------------------------------------------------

QUEUE_PREVIEW = 20
CONFLICT_SCAN = 500


def _conflict_count() -> int | None:
    """Field submissions waiting in conflict (up to ``CONFLICT_SCAN``); None without field
    collection in this hub."""
    from hub.intake.contract import INTAKE_EXTENSION_KEY
    from hub.intake.service import IntakeService

    service = current_app.extensions.get(INTAKE_EXTENSION_KEY)
    if not isinstance(service, IntakeService):
        return None
    return len(service.list_submissions(_viewer(), status="conflict", limit=CONFLICT_SCAN))


@bp.route("/ui/queues")
@staff_page
def queues() -> Any:
    from hub.corrections.service import list_requests
    from hub.review.service import ReviewQueue

    with _sessions()() as session:
        _items, submitted = ReviewQueue.list_items(session, state="submitted", limit=1)
        corrections = list_requests(session, state="proposed", limit=1)[1]
    registry = _registry()
    matches, open_matches = registry.list_reviews("open", limit=QUEUE_PREVIEW)
    due = registry.list_recertification("due", limit=1)[1]
    overdue = registry.list_recertification("overdue", limit=1)[1]
    return render_template(
        "ui/queues.html",
        submitted=submitted,
        corrections=corrections,
        conflicts=_conflict_count(),
        conflict_scan=CONFLICT_SCAN,
        matches=matches,
        open_matches=open_matches,
        due=due,
        overdue=overdue,
    )
