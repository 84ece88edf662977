"""The policy pages (``/ui/policy``): what policymakers open, and all they open.

Policymakers see aggregates only: counts and rates with small cells suppressed, never a
household, a person or a staff page (``staff_page`` refuses them everywhere else with a 403
that says so). Staff and auditors open these pages too. The pages register on the dashboard's
blueprint so they share its session, CSRF and error pages.
"""

from __future__ import annotations

from typing import Any

from flask import render_template

from hub.ui.views import admits_auditors, admits_policymakers, bp, staff_page


@bp.route("/ui/policy")
@staff_page
@admits_auditors
@admits_policymakers
def policy_overview() -> Any:
    return render_template("ui/policy.html")
