"""The staff pages in headless Chromium: an auditor searches and opens a household and sees its
identifiers masked and where each value comes from; a registry officer finds it by national ID
in clear, records and withdraws a consent through the forms and sees the history follow; the
recertification list counts the overdue household by area and the officer confirms it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry_core.service import Source
from tests.integration.staff_support import add_dashboard_user, register
from tests.integration.test_dashboard import PASSWORD, running_dashboard


def _log_in(browser: Any, url: str, username: str) -> Any:
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}/ui/households")
    form = page.locator("#password-login")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#household-search")
    return page


def _search(page: Any, **fields: str) -> None:
    form = page.locator("#household-search")
    for name, value in fields.items():
        form.locator(f"input[name={name}]").fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#households-total")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_staff_pages_in_the_browser(browser: Any, db_url: str, tmp_path: Path) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        registry = hub.runtime.registry
        registry.ensure_identifier_systems()
        add_dashboard_user(hub.settings, "audrey", "auditor")
        add_dashboard_user(hub.settings, "olga", "registry_staff")
        house = register(registry, "R01-D01", "Wanjiku", "Kariuki", "12345678")
        register(registry, "R02-D03", "Amina", "Hassan", "55554444")
        # A household's own word on its address ranks below staff's: kept, but overridden.
        registry.update_household(
            house["id"], {"address": "Plot 9, Kibera"}, Source("self_declared", "call:88")
        )
        hid, head = house["id"], house["members"][0]["id"]

        # --- an auditor: finds it by name, reads it with identifiers masked
        auditor = _log_in(browser, hub.url, "audrey")
        _search(auditor, q="wanj")
        assert auditor.inner_text("#households-total") == "1"
        row = auditor.locator(f'tr[data-household-id="{hid}"]')
        assert row.locator(".identifier").inner_text() == "national_id: ******78"
        row.locator("a.open-household").click()
        auditor.wait_for_selector("#members")
        assert auditor.inner_text("#household-number") == house["registry_number"]
        assert auditor.locator("#members .identifier").inner_text() == "national_id: ******78"
        assert "12345678" not in auditor.content()
        address = auditor.locator('table[data-entity="household"] tr[data-field="address"]')
        assert address.locator(".current-value").inner_text() == "12 Mango Lane"
        assert address.locator(".source-system").inner_text() == "registry_staff"
        assert "Plot 9, Kibera" in address.locator(".overridden").inner_text()
        assert "self_declared" in address.locator(".overridden").inner_text()
        given = auditor.locator(f'table[data-entity="{head}"] tr[data-field="given_name"]')
        assert given.locator(".current-value").inner_text() == "Wanjiku"
        assert auditor.locator("#record-consent").count() == 0
        assert auditor.locator("#confirm-recertification").count() == 0

        # --- a registry officer: finds it by national ID, in clear
        officer = _log_in(browser, hub.url, "olga")
        _search(officer, national_id="1234 5678")
        assert officer.inner_text("#households-total") == "1"
        officer.locator(f'tr[data-household-id="{hid}"] a.open-household').click()
        officer.wait_for_selector("#members")
        assert officer.locator("#members .identifier").inner_text() == "national_id: 12345678"
        assert officer.locator('#history tr[data-type="consent.granted"]').count() == 0

        # records a consent for the head through the form ...
        form = officer.locator("#record-consent")
        form.locator("select[name=subject]").select_option(head)
        form.locator("input[name=program]").fill("CT")
        form.locator("input[name=purpose]").fill("cash_transfer")
        form.locator("select[name=channel]").select_option("verbal")
        form.locator("input[name=evidence_reference]").fill("call:123")
        form.locator("button[type=submit]").click()
        officer.wait_for_selector(".flash.ok")
        consent = officer.locator('#consents tr[data-program="CT"]')
        assert consent.get_attribute("data-status") == "active"
        assert "call:123" in consent.inner_text() and "ui:olga" in consent.inner_text()
        assert officer.locator('#history tr[data-type="consent.granted"]').count() == 1

        # ... and withdraws it with a reason: the row and the history follow
        consent.locator("form.withdraw input[name=reason]").fill("asked at the help desk")
        consent.locator("form.withdraw button").click()
        officer.wait_for_selector(".flash.ok")
        assert officer.url.split("#")[0].endswith(f"/ui/households/{hid}")
        consent = officer.locator('#consents tr[data-program="CT"]')
        assert consent.get_attribute("data-status") == "withdrawn"
        assert "asked at the help desk" in consent.locator(".reason").inner_text()
        assert officer.locator('#history tr[data-type="consent.revoked"]').count() == 1
        (stored,) = registry.list_consents(person_id=head)
        assert stored["status"] == "withdrawn" and stored["revoked_by"] == "ui:olga"

        # --- recertification: the round flags it overdue; the list counts it by area
        due = date.fromisoformat(house["recertification"]["due_on"])
        registry.run_recertification_round(due + timedelta(days=1))
        officer.goto(f"{hub.url}/ui/recertification")
        assert officer.inner_text("#total-overdue") == "2"  # both registered the same day
        for area in ("R01-D01", "R02-D03"):
            row = officer.locator(f'#recertification-areas tr[data-area="{area}"]')
            assert row.locator(".overdue-count").inner_text() == "1"
        filters = officer.locator("#recertification-filters")
        filters.locator("input[name=area]").fill("R01")
        filters.locator("button[type=submit]").click()
        officer.wait_for_selector("#recertification-total")
        assert officer.inner_text("#recertification-total") == "1"
        listed = officer.locator(f'#recertification-items tr[data-household-id="{hid}"]')
        assert listed.count() == 1
        listed.locator("form.confirm button").click()
        officer.wait_for_selector(".flash.ok")
        assert "area=R01" in officer.url  # back to the list as it was filtered
        assert officer.inner_text("#total-overdue") == "0"
        assert officer.locator("#no-recertification").count() == 1
        officer.goto(f"{hub.url}/ui/recertification")
        assert officer.inner_text("#total-overdue") == "1"  # the other area's is still there

        officer.goto(f"{hub.url}/ui/households/{hid}")
        assert officer.inner_text("#recertification-state") == "current"
        assert (
            officer.inner_text("#recertification-due")
            == (date.today() + timedelta(days=730)).isoformat()
        )
        assert officer.locator("#data-quality, #no-data-quality").count() == 1

    actions = [(r.actor, r.action) for r in hub.audit_rows()]
    assert ("olga", "consent_record") in actions
    assert ("olga", "consent_withdraw") in actions
    assert ("olga", "recertify") in actions
