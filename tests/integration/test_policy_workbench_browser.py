"""The simulation workbench in headless Chromium: a policymaker raises a program's threshold,
runs it, sees more households qualify and the budget grow (in the table, and in the chart's
pixels: the simulated bar is drawn taller than the current one, in proportion), saves it,
saves a second scenario and compares the two; the page's numbers are the API's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hub.auth.tokens import issue_token
from hub.ui.simulation_charts import CURRENT_COLOUR, SIMULATED_COLOUR
from tests.integration.staff_support import add_dashboard_user
from tests.integration.test_dashboard import PASSWORD, running_dashboard
from tests.integration.test_policy_workbench import MODEL, RULE, SCHEDULE, person
from tests.png_support import pixels, tallest_run

# (area, children, other adults): score 10 - size - 2 x children; eligible now at <= 6
HOUSEHOLDS = [
    ("R01-D01", 2, 0),  # 10 - 3 - 4 = 3
    ("R01-D01", 1, 1),  # 10 - 3 - 2 = 5
    ("R01-D02", 1, 0),  # 10 - 2 - 2 = 6
    ("R01-D02", 0, 1),  # 10 - 2 = 8: gains at 9
    ("R02-D01", 0, 0),  # 9: gains at 9
    ("R02-D01", 0, 2),  # 7: gains at 9
    ("R02-D02", 0, 0),  # 9: gains at 9
]


def seed(app: Any, settings: Any) -> None:
    token = issue_token(settings, subject="setup", roles=["admin"])
    admin = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    for index, (area, children, adults) in enumerate(HOUSEHOLDS):
        members = [person(f"H{index}", "1980-01-01", "head")]
        members += [person(f"A{index}{k}", "1982-02-02", "spouse") for k in range(adults)]
        members += [person(f"C{index}{k}", "2019-03-03", "child") for k in range(children)]
        body = {"admin_area_code": area, "members": members}
        assert api.post("/api/v1/households", json=body, headers=admin).status_code == 201
    for url, body in (
        ("/api/v1/scoring/models/pmt/versions", MODEL),
        ("/api/v1/scoring/models/pmt/versions/1/activate", None),
        ("/api/v1/programs/cct/eligibility-rules", RULE),
        ("/api/v1/programs/cct/eligibility-rules/1/activate", None),
        ("/api/v1/programs/cct/benefit-schedules", SCHEDULE),
    ):
        answer = api.post(url, json=body, headers=admin) if body else api.post(url, headers=admin)
        assert answer.status_code in (200, 201), (url, answer.json)


def number(page: Any, selector: str) -> float:
    text = str(page.inner_text(selector)).split()[0]
    return float(text.replace(",", ""))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_policymaker_raises_a_threshold_saves_and_compares(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    # k = 3 on this small registry: the totals (3 and 7 households) stay shown to the
    # policymaker, the districts of one or two households are hidden.
    with running_dashboard(db_url, tmp_path, {"SRHUB_REPORTS__MIN_CELL": "3"}) as hub:
        hub.runtime.registry.ensure_identifier_systems()
        seed(hub.app, hub.settings)
        add_dashboard_user(hub.settings, "minister", "policymaker")
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{hub.url}/ui/policy/simulations")
        form = page.locator("#password-login")
        form.locator("input[name=username]").fill("minister")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#scenario-form")
        assert page.input_value("#max_score") == "6"

        page.fill("#max_score", "9")
        page.click("#run-button")
        page.wait_for_selector("#simulation-result")
        page.screenshot(path=str(tmp_path / "workbench.png"), full_page=True)
        row = '#result-cct tr[data-measure="{}"] td.{}'
        current = number(page, row.format("households", "current"))
        simulated = number(page, row.format("households", "simulated"))
        assert (current, simulated) == (3, 7)  # four households gain at 9
        budget_now = number(page, row.format("budget", "current"))
        budget_then = number(page, row.format("budget", "simulated"))
        assert budget_then == 25.0 * 12 * simulated and budget_then > budget_now

        # The chart as drawn: the simulated bars stand taller, as much as the people counts.
        people_now = number(page, row.format("people", "current"))
        people_then = number(page, row.format("people", "simulated"))
        shot = page.locator("#chart-cct").screenshot()
        (tmp_path / "workbench-chart.png").write_bytes(shot)
        image = pixels(shot)
        grey, blue = tallest_run(image, CURRENT_COLOUR), tallest_run(image, SIMULATED_COLOUR)
        assert grey > 20 and blue > grey
        assert abs(blue / grey - people_then / people_now) < 0.08, (grey, blue)

        page.fill("#sim-name", "threshold 9")
        page.click("#save-button")
        page.wait_for_url(re.compile(r"/ui/policy/simulations/[0-9a-f-]{36}$"))
        first = page.url.rsplit("/", 1)[-1]
        token = issue_token(hub.settings, subject="check", roles=["policymaker"])
        api = hub.app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        saved = api.get(f"/api/v1/simulations/{first}", headers=headers).json
        (cct,) = saved["result"]["programs"]
        assert number(page, row.format("households", "simulated")) == cct["simulated"]["households"]
        assert number(page, row.format("people", "simulated")) == cct["simulated"]["people"]
        assert page.locator(".household-list").count() == 0  # staff only

        page.goto(f"{hub.url}/ui/policy/simulations")
        page.fill("#max_score", "7")
        page.fill("#sim-name", "threshold 7")
        page.click("#save-button")
        page.wait_for_url(re.compile(r"/ui/policy/simulations/[0-9a-f-]{36}$"))

        page.goto(f"{hub.url}/ui/policy/simulations")
        for name in ("threshold 9", "threshold 7"):
            page.check(f'#saved-simulations tr[data-name="{name}"] input[name=ids]')
        page.click("#compare-button")
        page.wait_for_selector("#compare-cct")
        ids = ",".join(
            str(page.get_attribute(f'#compare-cct tr[data-name="{n}"]', "data-simulation-id"))
            for n in ("threshold 9", "threshold 7")
        )
        compared = api.get(f"/api/v1/simulations/compare?ids={ids}", headers=headers).json
        by_name = {}
        for scenario in compared["programs"][0]["scenarios"]:
            cells = f'#compare-cct tr[data-name="{scenario["name"]}"] td[data-count="{{}}"]'
            expected = scenario["simulated"]["households"]
            if expected is None:  # hidden from a policymaker: the page shows no number either
                assert page.inner_text(cells.format("simulated_households")).strip() == (
                    "suppressed"
                )
            else:
                assert number(page, cells.format("simulated_households")) == expected
            by_name[scenario["name"]] = expected
        assert by_name["threshold 9"] == simulated  # the larger scenario is shown
        if by_name["threshold 7"] is not None:
            assert by_name["threshold 9"] > by_name["threshold 7"] > current
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

        # Coverage by district: two households or fewer each, so every district's count is
        # suppressed on the page; the JSON download is the API's answer.
        page.goto(f"{hub.url}/ui/policy/reports?level=2")
        districts = page.locator('#coverage-table tbody tr:not(.total) td[data-count="registered"]')
        assert districts.count() == 4
        assert set(districts.all_inner_texts()) == {"suppressed"}
        page.screenshot(path=str(tmp_path / "reports.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#download-json")
        theirs = api.get("/api/v1/reports/coverage?level=2&format=json", headers=headers)
        assert Path(download.value.path()).read_bytes() == theirs.data
