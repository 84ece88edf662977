"""Dashboard pages for duplicate people: the duplicate scan and the queue of candidate pairs
(``/ui/duplicates``), one pair side by side with where every value came from, and the
buttons to merge, keep apart or undo a merge (``/ui/duplicates/<review>``).

The same ``staff_page`` rules as every page: a staff session, a CSRF token on each POST, an
audit row for each decision (done or refused), a redirect after it. Administrators and
registry staff decide; supervisors see, merge and keep apart the pairs whose two people both
live in households of their areas (``hub.duplicates.areas``), checked again on the locked
review; forcing an unsafe merge (two national IDs, one deceased) is for administrators, with a
reason; undoing a merge and starting a scan are for staff. Identifier values are shown
masked: comparing two records needs the system and the last digits, not the number.
Decisions are the registry's own (``Registry.merge_review``, ``keep_apart``, ``unmerge``), as
the API's are (``hub.api.duplicates``), so they emit the same events.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for

from hub.duplicates.areas import (
    OutsideAreas,
    area_check,
    detail_areas,
    pair_inside,
    supervised_pairs,
)
from hub.duplicates.runner import ScanAlreadyActive
from hub.ui.page_reads import record_page_read
from hub.ui.views import _audit, _int_arg, _text_arg, admits_supervisors, bp, staff_page
from registry_core.crypto import mask_identifier
from registry_core.errors import NotFound
from registry_core.services.merges import REVIEW_STATUSES, Actor, MergeRefused

COMPARED = ("given_name", "family_name", "other_names", "sex", "birth_date")
MAX_REASON = 500


def _registry() -> Any:
    from hub.api.context import hub_registry

    return hub_registry()


def _runner() -> Any:
    from hub.api.duplicates import scan_runner

    return scan_runner()


def _actor() -> Actor:
    return Actor(f"ui:{g.staff.name}"[:200])


def _names(items: list[dict[str, Any]]) -> dict[str, str]:
    """'Given Family' of every candidate on the page, in one query (not a record each)."""
    from sqlalchemy import select

    from hub.api.context import hub_runtime
    from registry_core.models import Person

    ids = {uuid.UUID(str(c["person_id"])) for i in items for c in i["candidates"]}
    if not ids:
        return {}
    with hub_runtime().sessions() as session:
        rows = session.execute(
            select(Person.id, Person.given_name, Person.family_name).where(Person.id.in_(ids))
        ).all()
    return {str(pid): f"{given or ''} {family or ''}".strip() for pid, given, family in rows}


def _side(side: dict[str, Any]) -> dict[str, Any]:
    """One candidate as the page shows it: values, their provenance per field, masked IDs."""
    person = side.get("person") or {}
    history: dict[str, list[dict[str, Any]]] = {}
    for assertion in side.get("provenance", []):
        history.setdefault(assertion["field"], []).append(assertion)
    return {
        **side,
        "values": {name: person.get(name) for name in COMPARED},
        "history": history,
        "identifiers": [
            {"system": i["system"], "value": mask_identifier(i["value"]), "verified": i["verified"]}
            for i in person.get("identifiers", [])
        ],
    }


@bp.route("/ui/duplicates")
@staff_page
@admits_supervisors
def duplicates() -> Any:
    status = _text_arg("status", 16) or "open"
    if status not in (*REVIEW_STATUSES, "all"):
        abort(400, description=f"status must be one of {', '.join(REVIEW_STATUSES)} or all")
    offset = _int_arg("offset") or 0
    principal = g.staff.principal()
    if principal.area_scoped:  # a supervisor: the pairs inside their areas, no scans
        from hub.api.context import hub_runtime

        runtime = hub_runtime()
        with runtime.sessions() as session:
            items, total = supervised_pairs(
                session,
                runtime.cipher,
                principal,
                None if status == "all" else status,
                50,
                offset,
            )
    else:
        items, total = _registry().list_reviews(
            None if status == "all" else status, 50, offset, "duplicate"
        )
    names = _names(items)
    rows = []
    for item in items:
        pair = [names.get(str(c["person_id"]), "?") for c in item["candidates"]]
        rows.append({**item, "names": " / ".join(pair)})
    return render_template(
        "ui/duplicates.html",
        rows=rows,
        total=total,
        offset=offset,
        status=status,
        statuses=REVIEW_STATUSES,
        scans=[] if principal.area_scoped else _runner().recent(5),
        may_scan=g.staff.is_staff,
    )


@bp.route("/ui/duplicates/scans", methods=["POST"])
@staff_page
def start_duplicate_scan() -> Any:
    try:
        scan = _runner().request_scan(f"ui:{g.staff.name}")
    except ScanAlreadyActive as exc:
        _runner().wake()
        _audit("duplicate_scan", f"scan:{exc.scan['id']}", "refused: a scan is active")
        flash(f"A scan is already {exc.scan['state']}; its progress is below.", "error")
    else:
        _audit("duplicate_scan", f"scan:{scan['id']}", "started")
        flash("Duplicate scan started; its progress is below.", "ok")
    return redirect(url_for("ui.duplicates"))


@bp.route("/ui/duplicates/<uuid:review_id>")
@staff_page
@admits_supervisors
def duplicate_pair(review_id: Any) -> Any:
    registry = _registry()
    try:
        review = registry.review_detail(review_id)
    except NotFound:
        abort(404, description="No such match review.")
    if review["kind"] != "duplicate":
        abort(404, description="This review is about an incoming record, not a pair of people.")
    from hub.api.context import hub_runtime

    if g.staff.principal().area_scoped and not pair_inside(
        g.staff.principal(), detail_areas(review, hub_runtime().sessions)
    ):
        abort(403, description="This pair is not wholly inside the areas you supervise.")
    record_page_read(review)
    return render_template(
        "ui/duplicate_pair.html",
        review=review,
        sides=[_side(s) for s in review["people"]],
        fields=COMPARED,
        merges=registry.merges_of_review(review_id),
        may_force=g.staff.role == "admin",
        may_unmerge=g.staff.is_staff,
    )


def _reason(name: str = "reason") -> str:
    return request.form.get(name, "").strip()[:MAX_REASON]


@bp.route("/ui/duplicates/<uuid:review_id>/<decision>", methods=["POST"])
@staff_page
@admits_supervisors
def decide_duplicate(review_id: Any, decision: str) -> Any:
    if decision not in ("merge", "keep-apart"):
        abort(404)
    reason, forced = _reason(), _reason("force_reason") or None
    target = f"match_review:{review_id}"
    action = f"duplicate_{decision.replace('-', '_')}"
    back = redirect(url_for("ui.duplicate_pair", review_id=review_id))
    if len(reason) < 3:
        _audit(action, target, "refused: no reason")
        flash("Not done: say why (a few words at least).", "error")
        return back
    if forced and g.staff.role != "admin":
        _audit(action, target, "refused: forcing needs an administrator")
        flash("Not done: only administrators may force an unsafe merge.", "error")
        return back
    registry = _registry()
    check = area_check(g.staff.principal())
    try:
        if decision == "merge":
            survivor = request.form.get("survivor_id", "")
            merge = registry.merge_review(
                review_id,
                survivor_id=str(uuid.UUID(survivor)) if survivor else None,
                reason=reason,
                actor=_actor(),
                forced_reason=forced,
                check=check,
            )
            outcome, message = f"merged (merge {merge['id']}): {reason}", "Merged."
        else:
            registry.keep_apart(review_id, reason=reason, actor=_actor(), check=check)
            outcome, message = f"kept apart: {reason}", "Kept apart."
    except ValueError:
        abort(400, description="survivor_id must be one of the pair's ids")
    except NotFound:
        abort(404, description="No such match review.")
    except (MergeRefused, OutsideAreas) as exc:
        _audit(action, target, f"refused: {exc}"[:300])
        flash(f"Not done: {str(exc).rstrip('.')}.", "error")
        return back
    _audit(action, target, outcome[:300])
    flash(message, "ok")
    return back


@bp.route("/ui/merges/<uuid:merge_id>/unmerge", methods=["POST"])
@staff_page
def unmerge_pair(merge_id: Any) -> Any:
    registry = _registry()
    try:
        merge = registry.get_merge(merge_id)
    except NotFound:
        abort(404, description="No such merge.")
    back = (
        redirect(url_for("ui.duplicate_pair", review_id=merge["review_id"]))
        if merge["review_id"]
        else redirect(url_for("ui.duplicates"))
    )
    reason, target = _reason(), f"merge:{merge_id}"
    if len(reason) < 3:
        _audit("duplicate_unmerge", target, "refused: no reason")
        flash("Not done: say why the merge is undone.", "error")
        return back
    try:
        done = registry.unmerge(merge_id, reason=reason, actor=_actor())
    except MergeRefused as exc:
        _audit("duplicate_unmerge", target, f"refused: {exc}"[:300])
        flash(f"Not done: {exc}.", "error")
        return back
    _audit("duplicate_unmerge", target, f"undone: {reason}"[:300])
    kept = len(done["unmerge_notes"])
    flash("Merge undone." + (f" {kept} later change(s) kept." if kept else ""), "ok")
    return back
