"""The dashboard's data-quality page in headless Chromium: a registry officer reads the
kind x area counts and the trend chart, acknowledges and dismisses issues and starts a scan;
a supervisor sees and acts on their own area only. The page, the issue rows and the audit
trail agree."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.quality import scan as scans
from hub.settings.quality import QualitySettings
from tests.integration.test_dashboard import PASSWORD, add_user, running_dashboard
from tests.quality_support import issues, make_problems


def login(browser: Any, url: str, username: str) -> Any:
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{url}/ui/quality")
    form = page.locator("#password-login")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#quality-issues")
    return page


def cell(page: Any, kind: str, area: str) -> str:
    return str(page.inner_text(f'#quality-grid tr[data-kind="{kind}"] td[data-area="{area}"]'))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_officer_and_a_supervisor_work_the_data_quality_page(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        hub.runtime.registry.ensure_identifier_systems()
        problems = make_problems(hub.runtime.registry, hub.runtime.sessions)
        config = QualitySettings(max_household_size=3)
        with hub.runtime.sessions.begin() as session:
            scan_id = scans.start_scan(session, "test").id
        scans.run_to_end(hub.runtime.sessions, scan_id, config)
        add_user(hub.settings, "officer")
        added = CliRunner().invoke(
            main,
            ["users", "add", "sup", "--role", "supervisor", "--area", "R02", "--password-stdin"],
            input=PASSWORD + "\n",
            env={
                "SRHUB_DATABASE_URL": hub.settings.database_url,
                "SRHUB_DATA_DIR": str(hub.settings.data_dir),
            },
        )
        assert added.exit_code == 0, added.output
        by_kind = {row.kind: str(row.id) for row in issues(hub.runtime.sessions)}

        page = login(browser, hub.url, "officer")
        assert page.inner_text("#quality-total") == "8"
        assert page.inner_text('#quality-states [data-state="open"] .value') == "8"
        assert cell(page, "household_size", "R01") == "2"
        assert cell(page, "household_composition", "R02") == "1"
        assert cell(page, "household_composition", "R01") == "0"
        assert page.locator("#quality-trend svg").count() == 1
        assert "opened" in page.inner_text("#quality-trend")
        income = page.locator(f'tr[data-issue-id="{by_kind["income_mismatch"]}"]')
        assert "Ask the household" in income.locator(".reason").inner_text()

        # Acknowledge: it leaves the list of open issues and shows under acknowledged.
        income.locator("form.act-acknowledge button").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#quality-total") == "7"
        page.goto(f"{hub.url}/ui/quality?state=acknowledged")
        row = page.locator(f'tr[data-issue-id="{by_kind["income_mismatch"]}"]')
        assert row.locator(".state-cell").inner_text().startswith("acknowledged")
        assert "by officer" in row.locator(".state-cell").inner_text()
        assert row.locator("form.act-acknowledge").count() == 0  # no longer offered

        # Dismiss needs a reason; the reason is kept and shown.
        row.locator("form.act-dismiss input[name=reason]").fill("salary paid abroad")
        row.locator("form.act-dismiss button").click()
        page.wait_for_selector(".flash.ok")
        page.goto(f"{hub.url}/ui/quality?state=dismissed")
        row = page.locator(f'tr[data-issue-id="{by_kind["income_mismatch"]}"]')
        assert row.locator(".state-reason").inner_text() == "salary paid abroad"
        assert row.locator(".row-actions").inner_text() == "closed"
        assert cell(page, "income_mismatch", "R01") == "0"  # no longer live

        # One household's issues (the link a household's page gives): its members' too.
        page.goto(f"{hub.url}/ui/quality?state=all&household={problems.twice_other}")
        assert page.inner_text("#quality-total") == "1"
        assert page.locator("#household-filter").count() == 1
        listed = page.locator("#quality-issues tbody tr").get_attribute("data-kind")
        assert listed == "multiple_households"

        # A scan from the page; its progress shows on the page.
        page.goto(f"{hub.url}/ui/quality")
        page.locator("#start-scan button").click()
        page.wait_for_selector(".flash.ok")
        deadline = time.monotonic() + 30
        while page.inner_text("#scan-state") != "finished":
            assert time.monotonic() < deadline, "the scan did not finish"
            time.sleep(0.2)
            page.reload()
        assert "by ui:officer" in page.inner_text("#quality-scan")

        # The supervisor of R02 sees R02 alone, acts there, and may not scan.
        sup = login(browser, hub.url, "sup")
        headers = sup.locator("#quality-grid thead th").all_inner_texts()
        assert headers[1:-1] and all(h.startswith("R02") for h in headers[1:-1])
        rows = sup.locator("#quality-issues tbody tr")
        areas = sup.locator("#quality-issues tbody tr td:nth-child(4)").all_inner_texts()
        assert rows.count() >= 1 and all(a.startswith("R02") for a in areas)
        assert sup.locator("#start-scan").count() == 0
        young = sup.locator(f'tr[data-issue-id="{by_kind["household_composition"]}"]')
        young.locator("form.act-acknowledge button").click()
        sup.wait_for_selector(".flash.ok")

    states = {row.kind: (row.state, row.state_changed_by) for row in issues(hub.runtime.sessions)}
    assert states["income_mismatch"] == ("dismissed", "officer")
    assert states["household_composition"] == ("acknowledged", "sup")
    actions = [(r.action, r.target, r.outcome) for r in hub.audit_rows()]
    assert ("quality_acknowledge", f"quality:{by_kind['income_mismatch']}", "done") in actions
    assert (
        "quality_dismiss",
        f"quality:{by_kind['income_mismatch']}",
        "salary paid abroad",
    ) in actions
    assert any(a == "quality_scan" and o == "started" for a, _, o in actions)
