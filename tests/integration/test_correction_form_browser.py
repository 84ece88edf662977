"""The dashboard's correction form in headless Chromium: from the household page an officer
chooses a member and a field, finds the value seen pre-filled, proposes a correction, sees it
in the household's corrections, then withdraws it from the queue with a reason; a second
officer applies an address directly with evidence. The registry and the audit trail agree."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.corrections import service
from registry_core.service import Source
from tests.integration.test_dashboard import PASSWORD, add_user, running_dashboard


def _log_in(browser: Any, url: str, username: str, path: str) -> Any:
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}{path}")
    form = page.locator("#password-login")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    return page


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_propose_from_the_household_page_then_withdraw(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        registry = hub.runtime.registry
        registry.ensure_identifier_systems()
        household = registry.register_household(
            {
                "admin_area_code": "R01-D02",
                "address": "12 Mango Lane",
                "members": [
                    {
                        "given_name": "Amina",
                        "family_name": "Otieno",
                        "sex": "female",
                        "birth_date": "1985-04-02",
                        "relationship": "head",
                    }
                ],
            },
            Source("self_declared"),
        ).record
        hid, person_id = household["id"], household["members"][0]["id"]
        add_user(hub.settings, "officer")
        add_user(hub.settings, "second")

        page = _log_in(browser, hub.url, "officer", f"/ui/households/{hid}")
        page.wait_for_selector("#choose-correction")
        chooser = page.locator("#choose-correction")
        chooser.locator("select[name=subject]").select_option(person_id)
        chooser.locator("select[name=target]").select_option("person.given_name")
        chooser.locator("button[type=submit]").click()
        page.wait_for_selector("#propose-correction")
        assert page.inner_text("#correction-target") == "person.given_name"
        assert page.inner_text("#correction-who") == "Amina Otieno"
        form = page.locator("#propose-correction")
        assert form.locator("input[name=old_value]").input_value() == "Amina"
        assert form.locator("#apply-directly").count() == 1  # a direct target, for staff
        form.locator("input[name=proposed_value]").fill("Aminah")
        form.locator("input[name=reason]").fill("The ID card reads Aminah")
        form.locator("input[name=evidence_reference]").fill("scan-0042")
        form.locator("select[name=channel]").select_option("phone")
        form.locator("button[type=submit]").click()
        page.wait_for_selector(".flash.ok")
        assert "proposed" in page.inner_text(".flash.ok")
        row = page.locator('#corrections tr[data-state="proposed"]')
        assert "Aminah" in row.inner_text() and "person.given_name" in row.inner_text()
        assert registry.get_person(person_id)["given_name"] == "Amina"  # not yet applied

        page.goto(f"{hub.url}/ui/change-requests")
        mine = page.locator("tr[data-request-id]").first
        assert mine.locator("form.decide-approve").count() == 0  # four eyes
        mine.locator("form.withdraw-request input[name=reason]").fill("asked by mistake")
        mine.locator("form.withdraw-request button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text(".flash.ok") == "Correction withdrawn."

        other = _log_in(browser, hub.url, "second", f"/ui/households/{hid}")
        other.wait_for_selector("#choose-correction")
        other.locator("#choose-correction select[name=target]").select_option("household.address")
        other.locator("#choose-correction button[type=submit]").click()
        other.wait_for_selector("#propose-correction")
        form = other.locator("#propose-correction")
        assert form.locator("input[name=old_value]").input_value() == "12 Mango Lane"
        form.locator("input[name=proposed_value]").fill("14 Mango Lane")
        form.locator("input[name=reason]").fill("utility bill")
        form.locator("input[name=evidence_reference]").fill("bill-2026-11")
        form.locator("#apply-directly").check()
        form.locator("button[type=submit]").click()
        other.wait_for_selector(".flash.ok")
        assert "applied directly" in other.inner_text(".flash.ok")
        assert registry.get_household(hid)["address"] == "14 Mango Lane"

        with hub.runtime.sessions() as db:
            found, _total = service.list_requests(db, household_id=uuid.UUID(hid))
        states = sorted((r["target"], r["state"], r["proposed_by"]) for r in found)
        assert states == [
            ("household.address", "applied", "second"),
            ("person.given_name", "withdrawn", "officer"),
        ]
    actions = [(r.action, r.actor, r.outcome) for r in hub.audit_rows()]
    assert ("correction_propose", "officer", "person.given_name proposed") in actions
    assert ("correction_withdraw", "officer", "asked by mistake") in actions
    assert ("correction_propose", "second", "household.address applied directly") in actions
