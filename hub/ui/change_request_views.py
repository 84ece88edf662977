"""Dashboard pages of corrections (``hub.corrections``): the change-request queue, with the
registry's current value beside the value the proposer saw and the value proposed, approve
and reject buttons (a reason required to reject); and one household's corrections with their
history.

The proposer withdraws their own proposal from these pages (a reason required); the form that
proposes one is ``hub.ui.correction_form_views`` (from the household page).

The same ``staff_page`` rules as every page: a session, a CSRF token on each POST, an audit
row for each decision (done or refused), a redirect after it. Registry staff and
administrators see every request; supervisors open these pages too and see and decide only
their areas' requests. The rules are the API's (``hub.corrections.service``): nobody approves
a correction they proposed, and approving applies it in the same transaction.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for

from hub.corrections import service, targets
from hub.ui.page_reads import record_page_read
from hub.ui.views import (
    _audit,
    _int_arg,
    _safe_next,
    _sessions,
    _text_arg,
    admits_supervisors,
    bp,
    staff_page,
)
from registry_core.errors import NotFound

PAGE_SIZE = 50


def _registry() -> Any:
    from hub.api.context import hub_registry

    return hub_registry()


def shown(value: Any) -> str:
    """A value as the page shows it: text as it is, anything else as compact JSON."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _with_current(session: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each open request with the registry's value now (what approving would replace)."""
    registry = _registry().within(session)
    for item in items:
        item["current_value"] = None
        item["current_known"] = False
        if item["state"] != "proposed":
            continue
        try:
            target = targets.Target.parse(item["target"])
            item["current_value"] = targets.current_value(
                session, registry, target, item["household_id"], item["person_id"]
            )
            item["current_known"] = True
        except (NotFound, targets.TargetProblem):
            pass  # the person left the household: approving will say so
        item["stale"] = item["current_known"] and not targets.same_value(
            item["current_value"], item["old_value"]
        )
    return items


@bp.route("/ui/change-requests")
@staff_page
@admits_supervisors
def change_requests() -> Any:
    state = _text_arg("state", 16) or "proposed"
    if state != "all" and state not in service.STATES:
        abort(400, description=f"state must be one of {', '.join(service.STATES)} or all")
    area = _text_arg("area", 64)
    principal = g.staff.principal()
    offset = min(_int_arg("offset") or 0, 10_000_000)
    with _sessions()() as session:
        items, total = service.list_requests(
            session,
            state=None if state == "all" else state,
            area=area,
            area_prefixes=list(principal.admin_areas) if principal.area_scoped else None,
            limit=PAGE_SIZE,
            offset=offset,
        )
        _with_current(session, items)
    record_page_read(items)
    return render_template(
        "ui/change_requests.html",
        items=items,
        total=total,
        offset=offset,
        state=state,
        states=service.STATES,
        area=area or "",
        shown=shown,
        me=principal.subject,
    )


@bp.route("/ui/change-requests/<uuid:request_id>/<action>", methods=["POST"])
@staff_page
@admits_supervisors
def change_request_decision(request_id: Any, action: str) -> Any:
    if action not in ("approve", "reject", "withdraw"):
        abort(404)
    reason = request.form.get("reason", "").strip()[:1000] or None
    back = request.form.get("back", "")
    principal = g.staff.principal()
    target = f"change-request:{request_id}"
    try:
        with _sessions()() as session, session.begin():
            found = service.load(session, request_id)
            service.may_read(principal, found)
            service.decide(
                session, _registry(), request_id, action, reason, principal, via="dashboard"
            )
    except service.RequestNotFound:
        abort(404, description="No such change request.")
    except service.NotAllowed as exc:
        _audit(f"correction_{action}", target, f"refused: {exc}")
        flash(f"Not done: {exc}", "error")
    except (service.StaleValue, service.Outranked, service.WrongState, ValueError) as exc:
        _audit(f"correction_{action}", target, f"refused: {exc}")
        flash(f"Not done: {exc}.", "error")
    else:
        _audit(f"correction_{action}", target, reason or "done")
        done = {"approve": "applied", "reject": "rejected", "withdraw": "withdrawn"}[action]
        flash(f"Correction {done}.", "ok")
    if back.startswith("/ui/change-requests") or back.startswith("/ui/households/"):
        return redirect(_safe_next(back))
    return redirect(url_for("ui.change_requests"))


@bp.route("/ui/households/<uuid:household_id>/change-requests")
@staff_page
@admits_supervisors
def household_change_requests(household_id: Any) -> Any:
    try:
        household = _registry().get_household(household_id)
    except NotFound:
        abort(404, description="No such household.")
    principal = g.staff.principal()
    if not principal.may_touch_area(household.get("admin_area_code")):
        abort(403, description="This household is outside the areas you supervise.")
    with _sessions()() as session:
        items, total = service.list_requests(
            session, household_id=household_id, limit=200, offset=0
        )
        _with_current(session, items)
    names = {
        m["id"]: f"{m.get('given_name') or ''} {m.get('family_name') or ''}".strip()
        for m in household.get("members", [])
    }
    record_page_read(items, households=(household,))
    return render_template(
        "ui/household_changes.html",
        household=household,
        items=items,
        total=total,
        names=names,
        shown=shown,
        me=principal.subject,
    )


from hub.ui import correction_form_views as _correction_form_views  # noqa: E402,F401
