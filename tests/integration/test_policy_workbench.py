"""The simulation workbench and the coverage report pages through the Flask test client, on
SQLite and PostgreSQL: who may open and run what, previews that change nothing in the
registry, saving, comparing, the API's validation messages beside the fields, CSRF, and small
cells shown as suppressed exactly where the API suppresses them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from tests.integration.staff_support import add_dashboard_user, csrf_of, log_in
from tests.integration.test_simulations import snapshot

MODEL = {
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
    ],
    "intercept": 10.0,
    "weights": {"size": -1.0, "children": -2.0},
}
RULE = {"model_code": "pmt", "threshold": {"max_score": 6.0}}
SCHEDULE = {"amount": 25.0, "per": "household", "period": "month", "periods": 12}


def person(given: str, born: str, relationship: str) -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": "Otieno",
        "sex": "female",
        "birth_date": born,
        "relationship": relationship,
    }


# score 10 - 2 - 2 = 6: eligible now; 10 - 1 = 9: not (eligible at 9)
WITH_CHILD = {
    "admin_area_code": "R01-D02",
    "members": [person("Amina", "1985-04-02", "head"), person("Cleo", "2020-09-09", "child")],
}
ALONE = {"admin_area_code": "R02-D01", "members": [person("Zawadi", "1970-01-01", "head")]}


class Hub:
    def __init__(self, app: Any, settings: Any) -> None:
        self.app = app
        self.settings = settings
        self.runtime = app.extensions["srhub_runtime"]

    def token(self, role: str) -> dict[str, str]:
        token = issue_token(self.settings, subject="tester", roles=[role])
        return {"Authorization": f"Bearer {token}"}

    def client(self, username: str | None = None, role: str = "registry_staff") -> Any:
        client = self.app.test_client()
        if username:
            add_dashboard_user(self.settings, username, role)
            log_in(client, username)
        return client


@pytest.fixture
def hub(db_url: str, tmp_path: Path) -> Iterator[Hub]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    app = create_app(settings)
    found = Hub(app, settings)
    found.runtime.registry.ensure_identifier_systems()
    api, admin = app.test_client(), found.token("admin")
    for body in (WITH_CHILD, ALONE):
        assert api.post("/api/v1/households", json=body, headers=admin).status_code == 201
    api.post("/api/v1/scoring/models/pmt/versions", json=MODEL, headers=admin)
    api.post("/api/v1/scoring/models/pmt/versions/1/activate", headers=admin)
    api.post("/api/v1/programs/cct/eligibility-rules", json=RULE, headers=admin)
    api.post("/api/v1/programs/cct/eligibility-rules/1/activate", headers=admin)
    api.post("/api/v1/programs/cct/benefit-schedules", json=SCHEDULE, headers=admin)
    yield found
    found.runtime.close()


def form_of(page: str, **changes: str) -> dict[str, str]:
    """The workbench form's fields as the page fills them, with ``changes``."""
    form = re.search(r'<form method="post"[^>]*id="scenario-form".*?</form>', page, re.S)
    assert form, "the page has no scenario form"
    body = form.group(0)
    fields = dict(re.findall(r'<input (?:type="hidden" )?name="([^"]+)"[^>]*value="([^"]*)"', body))
    for select in re.finditer(r'<select name="([^"]+)">(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', select.group(2))
        fields[select.group(1)] = chosen.group(1) if chosen else ""
    fields.update(changes)
    return fields


def cell(page: str, measure: str, side: str) -> str:
    row = re.search(rf'<tr data-measure="{measure}">(.*?)</tr>', page, re.S)
    assert row, measure
    found = re.search(rf'<td class="num {side}">(.*?)</td>', row.group(1), re.S)
    assert found, side
    return found.group(1).strip()


def saved_id(response: Any) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return str(response.headers["Location"].rsplit("/", 1)[-1])


def test_staff_preview_changes_nothing_then_save_and_compare(hub: Hub) -> None:
    staff = hub.client("officer")
    page = staff.get("/ui/policy/simulations").get_data(as_text=True)
    fields = form_of(page, max_score="9", action="run")
    assert fields["program"] == "cct" and fields["weight_children"] == "-2"
    before = snapshot(hub.runtime.registry)
    ran = staff.post("/ui/policy/simulations", data=fields)
    assert ran.status_code == 200
    shown = ran.get_data(as_text=True)
    assert snapshot(hub.runtime.registry) == before  # a run from the page writes nothing
    assert (cell(shown, "households", "current"), cell(shown, "households", "simulated")) == (
        "1",
        "2",
    )
    assert cell(shown, "budget", "simulated") == f"{25.0 * 12 * 2:,.2f}"
    assert 'id="chart-cct"' in shown and "<svg" in shown and "<script" not in shown
    assert hub.runtime.registry.simulations.list() == []  # a preview is not saved

    first = saved_id(
        staff.post("/ui/policy/simulations", data={**fields, "action": "save", "name": "t9"})
    )
    assert snapshot(hub.runtime.registry) == before
    weights = form_of(page, weight_children="-5", action="save", name="children weigh more")
    second = saved_id(staff.post("/ui/policy/simulations", data=weights))
    saved = staff.get(f"/ui/policy/simulations/{first}").get_data(as_text=True)
    api = hub.runtime.registry.simulations.get(first)
    (cct,) = api["result"]["programs"]
    assert cell(saved, "households", "simulated") == str(cct["simulated"]["households"])
    assert cell(saved, "people", "simulated") == str(cct["simulated"]["people"])
    # Staff see the households behind the figures, as the API lets staff.
    link = f"/ui/policy/simulations/{first}/households?program=cct&amp;change=gain"
    assert link in saved
    listed = staff.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert listed.count("/ui/households/") == cct["gainers"]["households"] == 1

    compared = staff.get(f"/ui/policy/simulations/compare?ids={first}&ids={second}")
    assert compared.status_code == 200
    text = compared.get_data(as_text=True)
    answer = hub.app.test_client().get(
        f"/api/v1/simulations/compare?ids={first},{second}", headers=hub.token("registry_staff")
    )
    for scenario in answer.json["programs"][0]["scenarios"]:
        row = re.search(rf'data-name="{re.escape(scenario["name"])}">(.*?)</tr>', text, re.S)
        assert row, scenario["name"]
        simulated = re.search(r'data-count="simulated_households">(\d+)<', row.group(1))
        assert simulated and int(simulated.group(1)) == scenario["simulated"]["households"]
    assert staff.get(f"/ui/policy/simulations/compare?ids={first}").status_code == 400


def test_the_api_refusals_show_beside_their_fields(hub: Hub) -> None:
    staff = hub.client("officer")
    page = staff.get("/ui/policy/simulations").get_data(as_text=True)
    api = hub.app.test_client()
    for cel, field in (("size % 2 == 0", "extend_cel"), ("size >=", "extend_cel")):
        answer = api.post(
            "/api/v1/simulations",
            json={"name": "x", "rules": {"cct": {"extend_to": cel}}},
            headers=hub.token("registry_staff"),
        )
        assert answer.status_code == 422
        message = answer.json["errors"][0]["message"]
        refused = staff.post(
            "/ui/policy/simulations", data=form_of(page, extend_cel=cel, action="run")
        )
        assert refused.status_code == 422
        shown = refused.get_data(as_text=True)
        found = re.search(rf'data-field="{field}">(.*?)</span>', shown, re.S)
        assert found, shown[:300]
        assert found.group(1) == escaped(message)
        assert "size % 2" in shown or "size &gt;=" in shown  # the typed text is kept

    wrong = staff.post("/ui/policy/simulations", data=form_of(page, max_score="nine"))
    assert wrong.status_code == 422
    assert re.search(r'data-field="max_score">[^<]*not a number', wrong.get_data(as_text=True))
    benefit = staff.post(
        "/ui/policy/simulations", data=form_of(page, benefit_currency="euros", action="run")
    )
    assert benefit.status_code == 422
    assert 'data-field="benefit_currency"' in benefit.get_data(as_text=True)

    saved_id(staff.post("/ui/policy/simulations", data=form_of(page, action="save", name="a")))
    again = staff.post("/ui/policy/simulations", data=form_of(page, action="save", name="a"))
    assert again.status_code == 409
    assert re.search(r'data-field="name">[^<]*exists', again.get_data(as_text=True))
    nameless = staff.post("/ui/policy/simulations", data=form_of(page, action="save"))
    assert nameless.status_code == 422 and 'data-field="name"' in nameless.get_data(as_text=True)
    assert len(hub.runtime.registry.simulations.list()) == 1


def escaped(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def test_a_post_without_the_csrf_token_is_refused(hub: Hub) -> None:
    staff = hub.client("officer")
    page = staff.get("/ui/policy/simulations").get_data(as_text=True)
    fields = form_of(page, action="save", name="forged")
    del fields["csrf_token"]
    assert staff.post("/ui/policy/simulations", data=fields).status_code == 400
    fields["csrf_token"] = "not-the-token"
    assert staff.post("/ui/policy/simulations", data=fields).status_code == 400
    assert hub.runtime.registry.simulations.list() == []
    anonymous = hub.client()
    assert anonymous.get("/ui/policy/simulations").status_code == 302  # to the login page
    assert anonymous.post("/ui/policy/simulations", data=fields).status_code == 401


def test_who_opens_what(hub: Hub) -> None:
    staff = hub.client("officer")
    page = staff.get("/ui/policy/simulations").get_data(as_text=True)
    simulation = saved_id(
        staff.post(
            "/ui/policy/simulations", data=form_of(page, max_score="9", action="save", name="s")
        )
    )
    auditor = hub.client("reader", "auditor")
    seen = auditor.get("/ui/policy/simulations")
    assert seen.status_code == 200 and 'id="scenario-form"' not in seen.get_data(as_text=True)
    fields = {"csrf_token": csrf_of(seen.get_data(as_text=True)), "program": "cct"}
    assert auditor.post("/ui/policy/simulations", data=fields).status_code == 403
    one = auditor.get(f"/ui/policy/simulations/{simulation}").get_data(as_text=True)
    assert "household-list" not in one  # the households behind the figures: staff only
    households = f"/ui/policy/simulations/{simulation}/households?program=cct&change=gain"
    assert auditor.get(households).status_code == 403
    assert auditor.get("/ui/policy/reports").status_code == 200

    supervisor = hub.app.test_client()
    add_dashboard_user(hub.settings, "sup", "supervisor", ("R01",))
    log_in(supervisor, "sup")
    for url in ("/ui/policy/simulations", f"/ui/policy/simulations/{simulation}", households):
        assert supervisor.get(url).status_code == 403, url
    assert supervisor.get("/ui/policy/reports").status_code == 403
    assert supervisor.get("/ui/policy/reports/export/coverage?format=csv").status_code == 403

    field = hub.app.test_client()
    add_dashboard_user(hub.settings, "enumerator", "field_worker", ("R01",))
    landed = log_in(field, "enumerator")
    assert "Login refused" in landed.get_data(as_text=True)  # field workers have no dashboard
    assert field.get("/ui/policy/simulations").status_code == 302


def test_small_cells_are_suppressed_for_auditors_as_the_api_gives_them(hub: Hub) -> None:
    staff = hub.client("officer")
    page = staff.get("/ui/policy/simulations").get_data(as_text=True)
    simulation = saved_id(
        staff.post(
            "/ui/policy/simulations", data=form_of(page, max_score="9", action="save", name="s")
        )
    )
    url = f"/ui/policy/simulations/{simulation}"
    area_row = re.compile(r'<tr data-key="R01"[^>]*>(.*?)</tr>', re.S)
    staff_row = area_row.search(staff.get(url).get_data(as_text=True))
    assert staff_row and 'data-count="simulated_households">1<' in staff_row.group(1)
    auditor = hub.client("reader", "auditor")
    shown = auditor.get(url).get_data(as_text=True)
    api = hub.app.test_client().get(
        f"/api/v1/simulations/{simulation}", headers=hub.token("auditor")
    )
    (cct,) = api.json["result"]["programs"]
    assert any(row.get("suppressed") for row in cct["by_area"])
    for row in cct["by_area"]:
        found = area_row.pattern.replace("R01", re.escape(row["area"]))
        html = re.search(found, shown, re.S)
        assert html
        assert_cells_as_the_api(html.group(1), row)


def assert_cells_as_the_api(html: str, row: dict[str, Any]) -> None:
    """Every count of a page's row is the API's: a number it hides reads suppressed, with
    no number at all; a number it shows is the same number."""
    cells = re.findall(r'data-count="([a-z_]+)">(.*?)</td>', html, re.S)
    assert cells
    for key, shown in cells:
        if row[key] is None:
            assert "suppressed" in shown and not re.search(r"\d", shown), key
        else:
            assert shown.strip() == str(row[key]), key


def test_report_pages_show_suppressed_cells_and_download_the_api_answer(hub: Hub) -> None:
    auditor = hub.client("reader", "auditor")
    page = auditor.get("/ui/policy/reports?level=2&program=cct")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    api = hub.app.test_client()
    answer = api.get("/api/v1/reports/coverage?level=2&program=cct", headers=hub.token("auditor"))
    for row in answer.json["rows"]:
        start = f'<tr data-area="{re.escape(row["area"])}" data-segment="{row["segment"]}"'
        html = re.search(start + r"[^>]*>(.*?)</tr>", text, re.S)
        assert html, row["area"]
        registered = re.search(r'data-count="registered">(.*?)</td>', html.group(1), re.S)
        assert registered
        if row["registered"] is None:
            assert "suppressed" in registered.group(1)
        else:
            assert registered.group(1) == f"{row['registered']:,}"
    assert any(row["registered"] is None for row in answer.json["rows"])  # two households
    for view, suffix in (("coverage", ""), ("gaps", "/gaps"), ("overlaps", "/overlaps")):
        for form in ("csv", "json"):
            query = f"level=2&program=cct&format={form}"
            mine = auditor.get(f"/ui/policy/reports/export/{view}?{query}")
            theirs = api.get(
                f"/api/v1/reports/coverage{suffix}?{query}", headers=hub.token("auditor")
            )
            assert mine.status_code == 200 and mine.data == theirs.data, (view, form)
            assert "attachment" in mine.headers["Content-Disposition"]
        assert auditor.get(f"/ui/policy/reports{suffix}?level=2").status_code == 200
    assert "/ui/policy/reports/export/coverage?level=2&amp;program=cct&amp;format=csv" in text
    bad = auditor.get("/ui/policy/reports?level=9")
    assert bad.status_code == 400 and "level" in bad.get_data(as_text=True)
    assert 'id="report-error"' in bad.get_data(as_text=True)


def test_a_policymaker_runs_saves_and_compares_with_small_cells_suppressed(hub: Hub) -> None:
    policymaker = hub.client("minister", "policymaker")
    page = policymaker.get("/ui/policy/simulations")
    assert page.status_code == 200
    fields = form_of(page.get_data(as_text=True), max_score="9", action="run")
    before = snapshot(hub.runtime.registry)
    preview = policymaker.post("/ui/policy/simulations", data=fields).get_data(as_text=True)
    assert snapshot(hub.runtime.registry) == before

    first = saved_id(
        policymaker.post("/ui/policy/simulations", data={**fields, "action": "save", "name": "a"})
    )
    # The preview shows what the API gives a policymaker for the same scenario, saved:
    # every area holds one household, so every area row is suppressed.
    (same,) = (
        hub.app.test_client()
        .get(f"/api/v1/simulations/{first}", headers=hub.token("policymaker"))
        .json["result"]["programs"]
    )
    total = same["simulated"]["households"]
    shown_total = cell(preview, "households", "simulated")
    assert shown_total == str(total) or (total is None and "suppressed" in shown_total)
    rows = re.findall(r'<tr data-key="(R0\d)"[^>]*>(.*?)</tr>', preview, re.S)
    assert {area for area, _ in rows} == {"R01", "R02"}
    by_area = {row["area"]: row for row in same["by_area"]}
    assert all(by_area[area].get("suppressed") for area, _ in rows)
    for area, html in rows:
        assert_cells_as_the_api(html, by_area[area])
    stricter = {**fields, "max_score": "5", "action": "save", "name": "b"}
    second = saved_id(policymaker.post("/ui/policy/simulations", data=stricter))
    saved = policymaker.get(f"/ui/policy/simulations/{first}").get_data(as_text=True)
    api = hub.app.test_client().get(
        f"/api/v1/simulations/{first}", headers=hub.token("policymaker")
    )
    (cct,) = api.json["result"]["programs"]
    for row in cct["by_area"]:
        html = re.search(rf'<tr data-key="{row["area"]}"([^>]*)>(.*?)</tr>', saved, re.S)
        assert html and ("suppressed-row" in html.group(1)) == bool(row.get("suppressed"))
    assert "household-list" not in saved
    households = f"/ui/policy/simulations/{first}/households?program=cct&change=gain"
    assert policymaker.get(households).status_code == 403
    compared = policymaker.get(f"/ui/policy/simulations/compare?ids={first},{second}")
    assert compared.status_code == 200
    text = compared.get_data(as_text=True)
    # The comparison as the API gives it to a policymaker (a count it hides reads suppressed).
    answer = hub.app.test_client().get(
        f"/api/v1/simulations/compare?ids={first},{second}", headers=hub.token("policymaker")
    )
    for scenario in answer.json["programs"][0]["scenarios"]:
        row = re.search(rf'data-name="{scenario["name"]}">(.*?)</tr>', text, re.S)
        assert row, scenario["name"]
        for side in ("current", "simulated"):
            for unit in ("households", "people"):
                shown = re.search(rf'data-count="{side}_{unit}">(.*?)</td>', row.group(1), re.S)
                assert shown
                value = scenario[side][unit]
                assert shown.group(1) == str(value) or (
                    value is None and "suppressed" in shown.group(1)
                )
    assert policymaker.get("/ui/policy/reports/gaps?level=2").status_code == 200
    assert policymaker.get("/ui/households").status_code == 403  # aggregates only
