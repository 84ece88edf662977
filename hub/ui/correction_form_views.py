"""Proposing a correction from the dashboard (the household page's *Corrections* section).

Two steps, because the page runs no script (``hub.ui.views.CSP``): the household page's small
form chooses whose value (the household or a member) and which target; ``GET
/ui/households/<id>/change-requests/new`` then shows the form with the value seen pre-filled
with the registry's value now, and ``POST /ui/households/<id>/change-requests`` proposes it.

The rules are the API's: the form becomes a ``service.Proposal`` checked by the same JSON
schema (``PROPOSAL_SCHEMA``) and proposed by ``service.propose`` (areas, the targets
``targets`` allows, the schemas' value rules, direct corrections for registry staff and
administrators on ``settings.corrections.direct_targets`` with an evidence reference). Who may
propose here: administrators, registry staff, supervisors (their areas); auditors read. Each
proposal, done or refused, is in the audit trail (``correction_propose``).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from jsonschema import Draft202012Validator

from hub.api.change_requests import PROPOSAL_SCHEMA
from hub.auth.roles import Principal
from hub.corrections import form_values, service, targets
from hub.ui.views import _audit, _sessions, admits_supervisors, bp, staff_page
from registry_core.errors import NotFound
from standards.validation import SchemaViolation

# The fields a correction may name, in the form's order (facts are typed: attribute.*).
HOUSEHOLD_TARGETS = tuple(f"household.{f}" for f in targets.HOUSEHOLD_FIELDS)
PERSON_TARGETS = tuple(f"person.{f}" for f in targets.PERSON_FIELDS)
FACT_EXAMPLE = "attribute.income.wage"
_PROPOSAL = Draft202012Validator(
    PROPOSAL_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


def _registry() -> Any:
    from hub.api.context import hub_registry

    return hub_registry()


def _direct_targets() -> tuple[str, ...]:
    from hub.api.context import hub_runtime

    return tuple(hub_runtime().settings.corrections.direct_targets)


def _viewer() -> Principal:
    principal: Principal = g.staff.principal()
    return principal


def _proposer_household(household_id: Any) -> dict[str, Any]:
    """The household, for a viewer who may propose corrections of it (else 403/404)."""
    viewer = _viewer()
    if not viewer.has_any(service.PROPOSER_ROLES):
        abort(403, description="Auditors read corrections; staff and supervisors propose them.")
    try:
        household: dict[str, Any] = _registry().get_household(household_id)
    except NotFound:
        abort(404, description="No such household.")
    if not viewer.may_touch_area(household.get("admin_area_code")):
        abort(403, description="This household is outside the areas you cover.")
    return household


def _chosen() -> tuple[str | None, str]:
    """The subject (None: the household) and the target, from the query or the form; a
    typed fact overrides the chosen field."""
    subject = request.values.get("subject", "household").strip()[:36]
    fact = request.values.get("fact", "").strip()[:100]
    target = fact or request.values.get("target", "").strip()[:100]
    return (None if subject in ("", "household") else subject), target


def _back_to_household(household_id: Any) -> Any:
    return redirect(url_for("ui.household", household_id=household_id) + "#corrections")


@bp.route("/ui/households/<uuid:household_id>/change-requests/new")
@staff_page
@admits_supervisors
def new_correction(household_id: Any) -> Any:
    household = _proposer_household(household_id)
    person_id, target_name = _chosen()
    try:
        target = targets.Target.parse(target_name)
        targets.check_subject(target, household, person_id)
        with _sessions()() as session:
            current = targets.current_value(
                session, _registry().within(session), target, household["id"], person_id
            )
    except targets.TargetProblem as exc:
        flash(f"Choose again: {exc}.", "error")
        return _back_to_household(household_id)
    names = {
        m["id"]: f"{m.get('given_name') or ''} {m.get('family_name') or ''}".strip()
        for m in household.get("members", [])
    }
    viewer = _viewer()
    return render_template(
        "ui/correction_form.html",
        household=household,
        person_id=person_id,
        who=names.get(person_id, "member") if person_id else "the household",
        target=target.name,
        current=form_values.shown_in_form(current),
        channels=service.CHANNELS,
        on_behalf=service.ON_BEHALF_OF,
        may_apply_directly=viewer.has_any(service.DIRECT_ROLES)
        and target.name in _direct_targets(),
    )


def _proposal(household: dict[str, Any], person_id: str | None, target_name: str) -> Any:
    """The form as a ``service.Proposal``, after the API's schema (``PROPOSAL_SCHEMA``)."""
    form = request.form
    target = targets.Target.parse(target_name)
    targets.check_subject(target, household, person_id)
    with _sessions()() as session:
        current = targets.current_value(
            session, _registry().within(session), target, household["id"], person_id
        )
    body: dict[str, Any] = {
        "household_id": household["id"],
        "target": target.name,
        "old_value": form_values.read_value(target.name, form.get("old_value", ""), current),
        "proposed_value": form_values.read_value(
            target.name, form.get("proposed_value", ""), current
        ),
        "reason": form.get("reason", "").strip(),
        "on_behalf_of": form.get("on_behalf_of", "beneficiary"),
        "channel": form.get("channel", ""),
        "apply_directly": form.get("apply_directly") == "yes",
    }
    if person_id:
        body["person_id"] = person_id
    evidence = form.get("evidence_reference", "").strip()
    if evidence:
        body["evidence_reference"] = evidence
    if body["proposed_value"] is None:
        raise targets.TargetProblem("type the proposed value")
    errors = _PROPOSAL.iter_errors(body)
    problems = sorted({str(e.path[0]) if e.path else "the form" for e in errors})
    if problems:
        raise targets.TargetProblem("check " + ", ".join(p.replace("_", " ") for p in problems))
    return service.Proposal(
        household_id=body["household_id"],
        person_id=person_id,
        target=body["target"],
        old_value=body["old_value"],
        proposed_value=body["proposed_value"],
        reason=body["reason"],
        on_behalf_of=body["on_behalf_of"],
        channel=body["channel"],
        evidence_reference=body.get("evidence_reference"),
        apply_directly=body["apply_directly"],
    )


@bp.route("/ui/households/<uuid:household_id>/change-requests", methods=["POST"])
@staff_page
@admits_supervisors
def propose_correction(household_id: Any) -> Any:
    household = _proposer_household(household_id)
    person_id, target_name = _chosen()
    audit_target = f"household:{household_id}"
    try:
        proposal = _proposal(household, person_id, target_name)
        with _sessions()() as session, session.begin():
            made = service.propose(
                session,
                _registry(),
                proposal,
                _viewer(),
                via="dashboard",
                direct_targets=_direct_targets(),
            )
    except SchemaViolation as exc:
        rules = ", ".join(sorted({v.rule for v in exc.violations})) or "schema"
        _audit("correction_propose", audit_target, f"refused: {target_name}: {rules}"[:300])
        flash(f"Not proposed: the value does not fit {target_name} ({rules}).", "error")
    except (
        targets.TargetProblem,
        form_values.FormValueProblem,
        service.NotAllowed,
        service.StaleValue,
        service.Outranked,
    ) as exc:
        _audit("correction_propose", audit_target, f"refused: {exc}"[:300])
        flash(f"Not proposed: {str(exc).rstrip('.')}.", "error")
    else:
        request_id = made["id"]
        outcome = "applied directly" if made["state"] == "applied" else "proposed"
        _audit("correction_propose", f"change-request:{request_id}", f"{target_name} {outcome}")
        flash(
            f"Correction of {target_name} {outcome}."
            + ("" if outcome == "applied directly" else " Another person approves it."),
            "ok",
        )
        return _back_to_household(household_id)
    return redirect(
        url_for(
            "ui.new_correction",
            household_id=household_id,
            subject=person_id or "household",
            target=target_name,
        )
    )
