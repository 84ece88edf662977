"""Dashboard page of a household's consents: every consent given for it or by one of its
members, active and withdrawn, with a withdraw button (a reason required).

The same ``staff_page`` rules as every page: a staff session, a CSRF token on each POST, an
audit row for each withdrawal (done or refused), a redirect after it. Dashboard staff
(administrators and registry staff) read and withdraw; supervisors do not open it. The
withdrawal is the registry's own (``Registry.revoke_consent``), as the API's
(``hub.api.consents``) is, so it applies to the next dispatch, DCI search and FHIR read
(docs/consent.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for

from hub.ui.page_reads import record_page_read
from hub.ui.views import _audit, bp, staff_page
from registry_core.errors import NotFound
from registry_core.service import Source


def _registry() -> Any:
    from hub.api.context import hub_registry

    return hub_registry()


def _uuid_or_none(text: str) -> uuid.UUID | None:
    """The page to go back to (a household id from the form), or None for anything else."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@bp.route("/ui/households/<uuid:household_id>/consents")
@staff_page
def household_consents(household_id: Any) -> Any:
    registry = _registry()
    try:
        household = registry.get_household(household_id)
    except NotFound:
        abort(404, description="No such household.")
    consents = {c["consent_id"]: c for c in registry.list_consents(household_id=household_id)}
    for member in household.get("members", []):
        for consent in registry.list_consents(person_id=member["id"]):
            consents.setdefault(consent["consent_id"], consent)
    names = {
        m["id"]: f"{m.get('given_name') or ''} {m.get('family_name') or ''}".strip()
        for m in household.get("members", [])
    }
    ordered = sorted(consents.values(), key=lambda c: (c["granted_at"], c["consent_id"]))
    record_page_read(ordered, households=(household,))
    return render_template(
        "ui/consents.html",
        household=household,
        consents=ordered,
        names=names,
    )


@bp.route("/ui/consents/<uuid:consent_id>/withdraw", methods=["POST"])
@staff_page
def withdraw_consent(consent_id: Any) -> Any:
    registry = _registry()
    try:
        registry.get_consent(consent_id)
    except NotFound:
        abort(404, description="No such consent.")
    household_id = _uuid_or_none(request.form.get("household", ""))
    reason = request.form.get("reason", "").strip()[:500]
    target = f"consent:{consent_id}"
    if not reason:
        _audit("consent_withdraw", target, "refused: no reason")
        flash("Not done: say why the consent is withdrawn.", "error")
    else:
        registry.revoke_consent(
            consent_id, Source("registry_staff", f"ui:{g.staff.name}"), reason, f"ui:{g.staff.name}"
        )
        _audit("consent_withdraw", target, reason)
        flash("Consent withdrawn.", "ok")
    if not household_id:
        return redirect(url_for("ui.overview"))
    if request.form.get("back") == "household":  # the household page's consent section
        return redirect(url_for("ui.household", household_id=household_id) + "#consent")
    return redirect(url_for("ui.household_consents", household_id=household_id))
