"""Supervisors and duplicate pairs (both databases for the API; the dashboard in Flask's client
and headless Chromium): they list, read, merge and keep apart only the pairs whose two people
both live in households of their areas; a pair straddling an area, forcing, undoing a merge
and scans stay with registry staff."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.resolution import open_duplicate_review
from registry_core.service import Source
from tests.integration.staff_support import add_dashboard_user, csrf_of, log_in
from tests.integration.test_dashboard import PASSWORD, running_dashboard


def _person(registry: Any, area: str, given: str) -> str:
    record = registry.register_household(
        {
            "admin_area_code": area,
            "address": f"{area} road",
            "members": [
                {
                    "given_name": given,
                    "family_name": "Otieno",
                    "birth_date": "1961-02-03",
                    "sex": "female",
                    "relationship": "head",
                }
            ],
        },
        Source("program_ct_ovc", f"CT-{area}-{given}"),
    ).record
    return str(record["members"][0]["id"])


def _pairs(runtime: Any) -> dict[str, str]:
    """Three pairs: both people in R01 ('inside'), one in R01 and one in R02 ('straddling'),
    both in R02 ('outside'); name -> review id."""
    registry = runtime.registry
    registry.ensure_identifier_systems()
    people = {
        "inside": (_person(registry, "R01-D01", "Achieng"), _person(registry, "R01-D02", "Akeng")),
        "straddling": (
            _person(registry, "R01-D03", "Awino"),
            _person(registry, "R02-D01", "Awinno"),
        ),
        "outside": (
            _person(registry, "R02-D02", "Atieno"),
            _person(registry, "R02-D03", "Atieeno"),
        ),
    }
    found = {}
    with runtime.sessions() as session, session.begin():
        for name, (a, b) in people.items():
            review, _new = open_duplicate_review(
                session,
                runtime.cipher,
                person_a=uuid.UUID(a),
                person_b=uuid.UUID(b),
                score=0.9,
                outcome="review",
                scan_id=None,
            )
            session.flush()
            found[name] = str(review.id)
    return found


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Any:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    app = create_app(settings)
    client = app.test_client()
    client.runtime = app.extensions["srhub_runtime"]  # type: ignore[attr-defined]

    def auth(role: str, areas: tuple[str, ...] = ()) -> dict[str, str]:
        token = issue_token(settings, subject=f"{role}-1", roles=[role], admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client.auth = auth  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def test_a_supervisor_decides_only_pairs_inside_their_areas(api: Any) -> None:
    pairs = _pairs(api.runtime)
    sue = api.auth("supervisor", ("R01",))
    listed = api.get("/api/v1/match-reviews", headers=sue).json
    assert [i["id"] for i in listed["items"]] == [pairs["inside"]] and listed["total"] == 1
    assert api.get("/api/v1/match-reviews?kind=birth", headers=sue).json["total"] == 0
    staff = api.auth("registry_staff")
    assert api.get("/api/v1/match-reviews", headers=staff).json["total"] == 3

    base = "/api/v1/match-reviews"
    assert api.get(f"{base}/{pairs['inside']}", headers=sue).status_code == 200
    assert api.get(f"{base}/{pairs['straddling']}", headers=sue).status_code == 403
    for decision in ("merge", "keep-apart"):
        refused = api.post(
            f"{base}/{pairs['straddling']}/{decision}", json={"reason": "same"}, headers=sue
        )
        assert refused.status_code == 403
        assert "areas you cover" in refused.json["detail"]
    forced = api.post(
        f"{base}/{pairs['inside']}/merge",
        json={"reason": "same", "force_reason": "sure"},
        headers=sue,
    )
    assert forced.status_code == 403
    merged = api.post(f"{base}/{pairs['inside']}/merge", json={"reason": "same"}, headers=sue)
    assert merged.status_code == 201 and merged.json["merged_by"] == "token:supervisor-1"
    # The merged-away person is read as the survivor: the decided pair stays theirs to read.
    decided = api.get("/api/v1/match-reviews?status=merged", headers=sue).json
    assert [i["id"] for i in decided["items"]] == [pairs["inside"]]
    assert api.get(f"{base}/{pairs['inside']}", headers=sue).status_code == 200
    undo = api.post(
        f"/api/v1/merges/{merged.json['id']}/unmerge", json={"reason": "no"}, headers=sue
    )
    assert undo.status_code == 403
    assert api.post("/api/v1/duplicates/scans", headers=sue).status_code == 403
    assert (
        api.get("/api/v1/match-reviews", headers=api.auth("field_worker", ("R01",))).status_code
        == 403
    )
    # Staff still decide the straddling pair.
    kept = api.post(
        f"{base}/{pairs['straddling']}/keep-apart", json={"reason": "two"}, headers=staff
    )
    assert kept.status_code == 200 and kept.json["status"] == "kept_apart"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_supervisors_duplicates_pages(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    app = create_app(settings)
    try:
        pairs = _pairs(app.extensions["srhub_runtime"])
        add_dashboard_user(settings, "sue", "supervisor", ("R01",))
        client = app.test_client()
        log_in(client, "sue")
        page = client.get("/ui/duplicates").get_data(as_text=True)
        assert pairs["inside"] in page and pairs["straddling"] not in page
        assert 'id="start-scan"' not in page
        assert client.get(f"/ui/duplicates/{pairs['straddling']}").status_code == 403
        token = csrf_of(page)
        refused = client.post(
            f"/ui/duplicates/{pairs['straddling']}/keep-apart",
            data={"csrf_token": token, "reason": "two people"},
            follow_redirects=True,
        )
        assert refused.status_code == 403 or "areas you cover" in refused.get_data(as_text=True)
        assert client.post("/ui/duplicates/scans", data={"csrf_token": token}).status_code == 403
        statuses = {
            r["id"]: r["status"]
            for r in app.extensions["srhub_runtime"].registry.list_reviews(None, 10, 0)[0]
        }
        assert statuses[pairs["straddling"]] == "open"
    finally:
        app.extensions["srhub_runtime"].close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_supervisor_merges_a_pair_of_their_area_in_the_browser(
    browser: Any, db_url: str, tmp_path: Path
) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        pairs = _pairs(hub.runtime)
        add_dashboard_user(hub.settings, "sue", "supervisor", ("R01",))
        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{hub.url}/ui/duplicates")
        form = page.locator("#password-login")
        form.locator("input[name=username]").fill("sue")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#supervised-pairs")
        assert page.locator("tr[data-review-id]").count() == 1
        page.click(f'tr[data-review-id="{pairs["inside"]}"] a.open-pair')
        page.wait_for_selector("#merge-form")
        assert page.locator("input[name=force_reason]").count() == 0
        page.locator("#merge-form input[name=reason]").fill("same woman, two lists")
        page.locator("#merge-form button[type=submit]").click()
        page.wait_for_selector(".flash.ok")
        assert page.inner_text("#review-status") == "merged"
        assert page.locator("form.unmerge").count() == 0  # undoing is for registry staff
    actions = [(r.action, r.actor, r.outcome) for r in hub.audit_rows()]
    assert any(
        a == "duplicate_merge" and who == "sue" and o.startswith("merged") for a, who, o in actions
    )


def test_a_pair_that_left_the_area_is_refused_at_decision_time(api: Any) -> None:
    pairs = _pairs(api.runtime)
    sue = api.auth("supervisor", ("R01",))
    detail = api.get(f"/api/v1/match-reviews/{pairs['inside']}", headers=sue).json
    moved = detail["people"][1]["household"]["id"]
    # After the supervisor read it, one household moves to an area they do not cover.
    api.runtime.registry.update_household(
        moved, {"admin_area_code": "R02-D09"}, Source("registry_staff")
    )
    refused = api.post(
        f"/api/v1/match-reviews/{pairs['inside']}/keep-apart",
        json={"reason": "two people"},
        headers=sue,
    )
    assert refused.status_code == 403
    assert api.runtime.registry.review_detail(pairs["inside"])["status"] == "open"
