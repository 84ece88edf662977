"""The dashboard's review queue in headless Chromium: a registry officer returns one item with
a reason and verifies another; the page, the item history and the audit trail agree."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.intake.contract import ReviewRequest
from hub.review.service import ReviewQueue
from hub.ui.tables import UiAudit
from tests.integration.test_dashboard import PASSWORD, add_user, running_dashboard


def open_item(hub: Any, area: str, by: str) -> str:
    with hub.runtime.sessions() as session, session.begin():
        ReviewQueue().submitted(
            session,
            ReviewRequest(
                instance_id=f"uuid:{uuid.uuid4()}",
                form_id="household_survey",
                form_version="1",
                submitted_by=by,
                admin_area_code=area,
                household_id=str(uuid.uuid4()),
                summary=f"household of 3 by {by}",
            ),
        )
    with hub.runtime.sessions() as session:
        items, _ = ReviewQueue.list_items(session, submitter=by)
    return str(items[0]["id"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_officer_returns_and_verifies_items_in_the_browser(
    browser: Any,
    db_url: str,
    tmp_path: Path,
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        add_user(hub.settings, "officer")
        to_return = open_item(hub, "R01-D01-L001", "amina")
        to_verify = open_item(hub, "R02-D05-L002", "baraka")
        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{hub.url}/ui/review")
        form = page.locator("#password-login")
        form.locator("input[name=username]").fill("officer")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#review-items")
        assert page.inner_text("#review-total") == "2"

        row = page.locator(f'tr[data-item-id="{to_return}"]')
        row.locator("form.decide-returned textarea").fill("photo of ID missing")
        row.locator("form.decide-returned button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#review-total") == "1"  # the submitted ones remain

        page.locator(f'tr[data-item-id="{to_verify}"] form.decide-verified button').click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#review-total") == "0"

        page.goto(f"{hub.url}/ui/review?state=returned")
        returned = page.locator(f'tr[data-item-id="{to_return}"]')
        assert returned.locator(".reason").inner_text() == "photo of ID missing"
        assert returned.locator(".state-cell").inner_text() == "returned"
        # From returned only rejecting is left: the page offers nothing else.
        assert returned.locator("form.decide-rejected").count() == 1
        assert returned.locator("form.decide-verified").count() == 0

    with hub.runtime.sessions() as session:
        item = ReviewQueue.load(session, to_return)
        assert item.state == "returned" and item.decided_by == "officer"
    actions = [(r.action, r.target, r.outcome) for r in hub.audit_rows()]
    assert ("review_returned", f"review:{to_return}", "photo of ID missing") in actions
    assert ("review_verified", f"review:{to_verify}", "done") in actions
    assert all(isinstance(r, UiAudit) for r in hub.audit_rows())
