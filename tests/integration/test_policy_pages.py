"""The policy pages through Flask's test client: a policymaker logs in with a password, lands
on ``/ui/policy`` and is refused (403, with the reason) on every household, person and staff
page; staff and auditors open the policy pages too; the nav shows Policy to those who may.
Then the overview's figures on a registry described in ``policy_support``: headline counts,
program comparison and budget, the map's colours per layer and level with small cells
hatched (never their numbers), bad parameters refused, snapshots and the trend."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from hub.api import create_app
from hub.assembly import policy_snapshot_job
from hub.settings import load_settings
from hub.ui.maps import PALETTES
from registry_core.reports.snapshots import PolicySnapshot, snapshot_series
from standards.timeutil import utcnow
from tests.integration import policy_support as policy
from tests.integration.staff_support import add_dashboard_user, csrf_of, register
from tests.integration.test_dashboard import PASSWORD


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    made = create_app(settings)
    made.extensions["srhub_runtime"].registry.ensure_identifier_systems()
    for name, role, areas in (
        ("olga", "registry_staff", ()),
        ("audrey", "auditor", ()),
        ("pat", "policymaker", ()),
        ("sue", "supervisor", ("R01",)),
    ):
        add_dashboard_user(settings, name, role, areas)
    yield made
    made.extensions["srhub_runtime"].close()


def _log_in(client: FlaskClient, username: str, next_path: str = "") -> tuple[int, str, str]:
    """Log in without a ``next`` (as from the login page); the status, path and page landed."""
    form = client.get("/ui/login")
    data = {
        "csrf_token": csrf_of(form.get_data(as_text=True)),
        "method": "password",
        "username": username,
        "password": PASSWORD,
    }
    if next_path:
        data["next"] = next_path
    landed = client.post("/ui/login", data=data, follow_redirects=True)
    return landed.status_code, landed.request.path, landed.get_data(as_text=True)


def test_a_policymaker_lands_on_the_policy_page(app: Flask) -> None:
    client = app.test_client()
    status, path, html = _log_in(client, "pat")
    assert (status, path) == (200, "/ui/policy")
    assert "<h1>Policy" in html
    assert 'href="/ui/policy/simulations"' in html
    # The nav offers the policy pages and none of the registry's.
    assert ">Policy</a>" in html
    assert 'href="/ui/households"' not in html
    assert "(policymaker)" in html


def test_a_policymaker_is_refused_every_household_person_and_staff_page(app: Flask) -> None:
    registry = app.extensions["srhub_runtime"].registry
    household = register(registry, "R01-D01", "Wanjiku", "Kariuki", "12345678")
    client = app.test_client()
    _log_in(client, "pat")
    hid = household["id"]
    pages = [
        "/",
        "/ui/households",
        f"/ui/households/{hid}",
        f"/ui/households/{hid}/consents",
        f"/ui/households/{hid}/change-requests",
        f"/ui/households/{hid}/change-requests/new",
        "/ui/change-requests",
        "/ui/recertification",
        "/ui/queues",
        "/ui/intake/forms",
        "/ui/intake/submissions",
        "/ui/intake/conflicts",
        "/ui/duplicates",
        f"/ui/duplicates/{uuid.uuid4()}",
        "/ui/quality",
        "/ui/dead-letters",
        "/ui/review",
        "/ui/audit",
        "/ui/connectors/gis",
    ]
    for page in pages:
        answer = client.get(page)
        if page == "/":
            # The staff overview sends a policymaker home rather than refusing.
            assert answer.status_code == 302, page
            assert answer.headers["Location"].endswith("/ui/policy")
            continue
        body = answer.get_data(as_text=True)
        assert answer.status_code == 403, (page, answer.status_code)
        assert "Policymakers see aggregate figures only" in body, page
        assert "Wanjiku" not in body and "Kariuki" not in body
    # A POST is refused too (before any CSRF or form check could matter).
    page = client.get("/ui/policy").get_data(as_text=True)
    refused = client.post(
        f"/ui/households/{hid}/consents",
        data={"csrf_token": csrf_of(page)},
    )
    assert refused.status_code == 403


def test_a_policymaker_asking_for_a_household_page_at_login_is_refused_there(app: Flask) -> None:
    client = app.test_client()
    status, path, html = _log_in(client, "pat", next_path="/ui/households")
    assert (status, path) == (403, "/ui/households")
    assert "Policymakers see aggregate figures only" in html


@pytest.mark.parametrize(("username", "sees_policy"), [("olga", True), ("audrey", True)])
def test_staff_and_auditors_open_the_policy_page(
    app: Flask, username: str, sees_policy: bool
) -> None:
    client = app.test_client()
    _log_in(client, username)
    page = client.get("/ui/policy")
    assert page.status_code == 200
    assert (">Policy</a>" in page.get_data(as_text=True)) is sees_policy


def test_a_supervisor_neither_opens_nor_sees_the_policy_page(app: Flask) -> None:
    client = app.test_client()
    status, path, html = _log_in(client, "sue")
    assert (status, path) == (200, "/ui/review")
    assert ">Policy</a>" not in html
    refused = client.get("/ui/policy")
    assert refused.status_code == 403


def test_without_a_session_the_policy_page_asks_for_a_login(app: Flask) -> None:
    answer = app.test_client().get("/ui/policy")
    assert answer.status_code == 302
    assert "/ui/login" in answer.headers["Location"]


# --- the executive overview's figures -------------------------------------------------------

PATH_RE = re.compile(
    r'<path d="[^"]*" fill="(?P<fill>[^"]+)"[^>]*data-area="(?P<area>[^"]+)" '
    r'data-state="(?P<state>[^"]+)"(?: data-value="(?P<value>[^"]+)")?>'
    r"<title>(?P<title>[^<]*)</title>"
)


@pytest.fixture
def policy_app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = load_settings(
        env={"SRHUB_REPORTS__MIN_CELL": str(policy.MIN_CELL)},
        database_url=db_url,
        data_dir=tmp_path,
        sandbox=False,
    )
    made = create_app(settings)
    runtime = made.extensions["srhub_runtime"]
    runtime.registry.ensure_identifier_systems()
    policy.build(runtime.registry)
    add_dashboard_user(settings, "pat", "policymaker")
    add_dashboard_user(settings, "olga", "registry_staff")
    yield made
    runtime.close()


def _areas(html: str) -> dict[str, dict[str, str]]:
    return {m["area"]: m.groupdict() for m in PATH_RE.finditer(html)}


def _class_colour(palette: str, value: float, top: float) -> str:
    """The colour the legend gives ``value``: five equal classes over 0..top."""
    return PALETTES[palette][min(int(value / (top / 5)), 4)]


def _page(client: FlaskClient, query: str = "") -> str:
    answer = client.get(f"/ui/policy{query}")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def _cell(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found, element_id
    return found.group(1).strip()


def test_the_headline_counts_and_program_comparison(policy_app: Flask) -> None:
    client = policy_app.test_client()
    _log_in(client, "pat")
    html = _page(client)
    households = sum(r.households for r in policy.PLAN)
    enrolled = sum(r.enrolled for r in policy.PLAN)
    assert _cell(html, "hl-households") == f"{households:,}"
    assert _cell(html, "hl-people") == f"{2 * households:,}"  # two members each
    assert _cell(html, "hl-scored") == f"{households:,}"
    row = re.search(r'<table class="grid" id="headline-programs">.*?</table>', html, re.S)
    assert row
    cells = dict(re.findall(r'data-measure="(\w+)">([^<]*)<', row.group(0)))
    assert cells == {
        "eligible": str(households),
        "eligible_people": str(2 * households),
        "enrolled": str(enrolled),
        "enrolled_people": str(2 * enrolled),
        "eligible_not_enrolled": str(households - enrolled),
        "enrolled_not_eligible": "0",
    }
    comparison = re.search(r'id="program-comparison">.*?</table>', html, re.S)
    assert comparison and f"{100 * enrolled / households:.1f}%" in comparison.group(0)
    assert "no benefit schedule" in comparison.group(0)
    assert 'id="programs-chart"' in html and "<script" not in html


def test_a_benefit_schedule_gives_the_programs_budget(policy_app: Flask) -> None:
    registry = policy_app.extensions["srhub_runtime"].registry
    schedule = {"amount": 40, "per": "household", "period": "month", "periods": 12}
    registry.simulations.add_benefit_schedule("cct", {**schedule, "currency": "KES"}, "tester")
    client = policy_app.test_client()
    _log_in(client, "pat")
    html = _page(client)
    households = sum(r.households for r in policy.PLAN)
    enrolled = sum(r.enrolled for r in policy.PLAN)
    budgets = dict(re.findall(r'data-measure="(budget_\w+)">([^<]*)<', html))
    assert budgets["budget_eligible"] == f"{40 * 12 * households:,} KES"
    assert budgets["budget_enrolled"] == f"{40 * 12 * enrolled:,} KES"


def test_the_map_colours_each_area_by_its_value_and_hatches_hidden_ones(
    policy_app: Flask,
) -> None:
    client = policy_app.test_client()
    _log_in(client, "pat")
    shown = [r for r in policy.PLAN if r.code not in policy.HIDDEN]
    coverage = _areas(_page(client))
    assert sorted(coverage) == sorted(r.code for r in policy.PLAN)
    for region in shown:
        area = coverage[region.code]
        assert area["state"] == "value", region
        assert area["fill"] == _class_colour("green", region.coverage, 1.0), region
        assert f"{100 * region.coverage:.1f}%" in area["title"]
    assert coverage["R01"]["fill"] != coverage["R02"]["fill"]  # 60% and 25%
    for code in policy.HIDDEN:
        area = coverage[code]
        region = next(r for r in policy.PLAN if r.code == code)
        assert (area["state"], area["fill"], area["value"]) == (
            "suppressed",
            "url(#suppressed)",
            None,
        )
        hidden_figures = {str(region.enrolled), str(region.gap), str(region.households)}
        words = set(re.findall(r"\d+", area["title"].split(":", 1)[1]))
        assert not words & hidden_figures, area["title"]

    gap = _areas(_page(client, "?layer=gap&program=cct"))
    top = 10.0  # the largest gap, 9, rounded up to five classes of 2
    for region in shown:
        assert gap[region.code]["fill"] == _class_colour("orange", region.gap, top), region
        assert gap[region.code]["title"].endswith(f"{region.gap} households")

    poverty = _areas(_page(client, "?layer=poverty_rate"))
    for region in policy.PLAN:  # a GIS layer is no count: nothing is hidden
        assert poverty[region.code]["fill"] == _class_colour("purple", region.poverty_rate, 1.0)


def test_the_level_selector_draws_districts(policy_app: Flask) -> None:
    client = policy_app.test_client()
    _log_in(client, "pat")
    html = _page(client, "?level=2&layer=coverage_rate")
    districts = _areas(html)
    assert len(districts) == 2 * len(policy.PLAN)
    assert 'data-level="2"' in html
    for region in policy.PLAN:
        west, east = districts[f"{region.code}-D01"], districts[f"{region.code}-D02"]
        assert east["state"] == "no-data" and "no households" in east["title"]
        if region.code in policy.HIDDEN:
            assert west["state"] == "suppressed"
        else:
            assert west["fill"] == _class_colour("green", region.coverage, 1.0)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("level=9", "level"),
        ("level=two", "level"),
        ("layer=households", "layer"),
        ("program=%3Cscript%3E", "program"),
        ("colour=red", "parameters are"),
    ],
)
def test_bad_map_parameters_are_refused_naming_them(app: Flask, query: str, names: str) -> None:
    client = app.test_client()
    _log_in(client, "pat")
    answer = client.get(f"/ui/policy?{query}")
    assert answer.status_code == 400
    body = answer.get_data(as_text=True)
    assert names in body and "<script>" not in body


def test_snapshots_taken_by_staff_become_the_trend(policy_app: Flask) -> None:
    runtime = policy_app.extensions["srhub_runtime"]
    staff = policy_app.test_client()
    _log_in(staff, "olga")
    html = _page(staff)
    assert 'id="trends-empty"' in html and 'id="take-snapshot"' in html
    taken = staff.post("/ui/policy/snapshot", data={"csrf_token": csrf_of(html)})
    assert taken.status_code == 302

    pat = policy_app.test_client()
    _log_in(pat, "pat")
    page = _page(pat)
    assert 'id="take-snapshot"' not in page  # policymakers read, they do not write
    refused = pat.post("/ui/policy/snapshot", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403

    with runtime.sessions() as session:
        today = utcnow().date()
        series = snapshot_series(session, today)
    households = sum(r.households for r in policy.PLAN)
    assert series[today.isoformat()]["*"]["registered"] == households
    assert series[today.isoformat()]["CCT"]["eligible"] == households
    # The scheduled job leaves a recent row alone and retakes one an hour old.
    job = policy_snapshot_job(runtime.settings)
    with runtime.sessions.begin() as session:
        assert job.prune(session) == 0
        session.execute(update(PolicySnapshot).values(taken_at=utcnow() - timedelta(minutes=61)))
    with runtime.sessions.begin() as session:
        assert job.prune(session) == 2  # the common row and CCT's
    eligible = policy.add_history(runtime.sessions, today)
    charts = re.search(r'id="trend-charts">(.*?)</div>', _page(pat), re.S)
    assert charts, "no trend charts"
    assert "CCT: households" in charts.group(1)
    # pygal writes each point's value in the chart: the three past days and today.
    for value in [*eligible, households]:
        assert f">{value}<" in charts.group(1)
