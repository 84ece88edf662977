"""The dashboard in a real headless Chromium (Debian's package, driven by Python playwright):
log in, open a connector, open the dead-letter browser, replay one dead letter and see the
count go down, on the page and in the broker.

Locally the test is skipped (with the reason) when chromium or playwright is missing; under
CI=true it fails instead, so CI cannot pass without having run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.broker.base import QUEUE_DEAD, QUEUE_INGEST
from tests.integration.test_dashboard import (
    CONNECTOR,
    PASSWORD,
    add_user,
    make_dead_letters,
    running_dashboard,
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_staff_logs_in_opens_a_connector_and_replays_a_dead_letter(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        add_user(hub.settings, "officer")
        ids = make_dead_letters(hub.settings, 2, "SchemaViolation")
        make_dead_letters(hub.settings, 1, "MappingError", "unknown gender code 'Q'")
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{hub.url}/")
            assert "/ui/login" in page.url  # strangers are sent to the login page
            form = page.locator("#password-login")
            form.locator("input[name=username]").fill("officer")
            form.locator("input[name=password]").fill(PASSWORD)
            form.locator("button[type=submit]").click()
            page.wait_for_selector("#connectors")
            assert page.locator("#dead-letter-total").inner_text().strip() == "3"

            page.click(f"#connectors a:text-is('{CONNECTOR}')")
            page.wait_for_selector("#connector-name")
            assert page.locator("#connector-name").inner_text() == CONNECTOR
            assert page.locator("#connector-failures").inner_text().count("SchemaViolation") == 2

            page.click("header nav a:text-is('Dead letters')")
            page.wait_for_selector("#dead-letter-groups")
            assert page.locator("#dead-letter-count").inner_text() == "3"
            group = page.locator('#dead-letter-groups tr[data-error-class="SchemaViolation"]')
            assert group.locator(".group-count").inner_text() == "2"

            row = page.locator(f'#dead-letters tr[data-message-id="{ids[0]}"]')
            row.locator("button.replay").click()
            page.wait_for_selector("p.flash.ok")
            assert "Replayed 1 dead letter." in page.locator("p.flash.ok").inner_text()
            assert page.locator("#dead-letter-count").inner_text() == "2"
            assert group.locator(".group-count").inner_text() == "1"
            assert page.locator(f'tr[data-message-id="{ids[0]}"]').count() == 0
        finally:
            context.close()
        assert hub.depth(QUEUE_DEAD) == 2
        assert hub.depth(QUEUE_INGEST) == 1
        replays = [r for r in hub.audit_rows() if r.action == "dead_letter_replay"]
        assert [(r.actor, r.target, r.outcome) for r in replays] == [
            ("officer", ids[0], "replayed 1")
        ]
