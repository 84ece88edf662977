"""The duplicates pages in headless Chromium: a registry officer starts a scan, watches it
finish, compares each pair side by side with the provenance of every value, merges one pair,
keeps the other apart, and undoes the merge; the registry and the audit trail agree."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from registry_core.service import Source
from tests.integration.test_dashboard import PASSWORD, add_user, running_dashboard


def _head(registry: Any, source: str, area: str, given: str, family: str, birth: str) -> str:
    record = registry.register_household(
        {
            "admin_area_code": area,
            "address": f"{area} market road",
            "members": [
                {
                    "given_name": given,
                    "family_name": family,
                    "birth_date": birth,
                    "sex": "female",
                    "relationship": "head",
                }
            ],
        },
        Source(source, f"{source}-1"),
    ).record
    return str(record["members"][0]["id"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_officer_merges_keeps_apart_and_undoes_in_the_browser(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        registry = hub.runtime.registry
        registry.ensure_identifier_systems()
        add_user(hub.settings, "officer")
        nafula_a = _head(registry, "program_ct_ovc", "KE-039-01", "Nafula", "Wekesa", "1972-04-09")
        nafula_b = _head(registry, "program_opct", "KE-039-02", "Nafulah", "Wekesa", "1972-04-09")
        _head(registry, "program_ct_ovc", "KE-001-01", "Halima", "Hassan", "1990-12-12")
        _head(registry, "program_pwsd", "KE-001-02", "Halima", "Hasan", "1990-12-12")

        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{hub.url}/ui/duplicates")
        form = page.locator("#password-login")
        form.locator("input[name=username]").fill("officer")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#start-scan")

        page.locator("#start-scan button").click()
        page.wait_for_selector(".flash.ok")
        deadline = time.monotonic() + 30
        while page.locator('#scans tr[data-state="done"]').count() == 0:
            assert time.monotonic() < deadline, "the scan did not finish on the page"
            time.sleep(0.2)
            page.reload()
        assert page.locator("#scans tr .found").first.inner_text() == "2"
        assert page.inner_text("#pairs-total") == "2"

        nafula_row = page.locator("#pairs tr", has_text="Nafula")
        nafula_row.locator("a.open-pair").click()
        page.wait_for_selector("#pair")
        # Side by side: the two spellings, each with the list that said it.
        given = page.locator('#pair tr[data-field="given_name"]')
        assert "program_ct_ovc" in given.inner_text() and "program_opct" in given.inner_text()
        assert given.locator("td.differs").count() == 2
        page.locator(f'#merge-form input[value="{nafula_a}"]').check()
        page.locator("#merge-form input[name=reason]").fill("same woman in CT-OVC and OPCT")
        page.locator("#merge-form button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#review-status") == "merged"
        assert registry.survivor_of(nafula_b) == nafula_a

        page.locator("form.unmerge input[name=reason]").fill("two sisters, checked by phone")
        page.locator("form.unmerge button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#review-status") == "unmerged"
        assert registry.survivor_of(nafula_b) is None
        assert registry.get_person(nafula_b)["given_name"] == "Nafulah"

        page.goto(f"{hub.url}/ui/duplicates")
        page.locator("#pairs tr", has_text="Halima").locator("a.open-pair").click()
        page.wait_for_selector("#keep-apart-form")
        page.locator("#keep-apart-form button").click()  # no reason: the browser refuses
        assert page.locator(".flash").count() == 0
        page.locator("#keep-apart-form input[name=reason]").fill("different fathers' names")
        page.locator("#keep-apart-form button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#review-status") == "kept_apart"
        page.goto(f"{hub.url}/ui/duplicates")
        assert page.inner_text("#pairs-total") == "0"

    actions = [(r.action, r.outcome) for r in hub.audit_rows()]
    assert ("duplicate_scan", "started") in actions
    assert any(a == "duplicate_merge" and "same woman" in o for a, o in actions)
    assert ("duplicate_unmerge", "undone: two sisters, checked by phone") in actions
    assert ("duplicate_keep_apart", "kept apart: different fathers' names") in actions
