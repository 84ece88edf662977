"""The data-quality API over real databases: who may read and act (auditors read, supervisors
within their areas), filters, state changes with their 409s, the summary, a scan started over
HTTP and followed to its end, a household's issues, and ``srhub quality scan``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.settings.model import with_overrides
from tests.quality_support import Problems, issues, make_problems


@dataclass
class Api:
    runtime: HubRuntime
    app: Any
    client: Any
    tokens: dict[str, dict[str, str]]
    problems: Problems

    def get(self, path: str, who: str = "staff", **params: Any) -> Any:
        return self.client.get(path, headers=self.tokens[who], query_string=params)

    def post(self, path: str, who: str = "staff", body: Any = None) -> Any:
        return self.client.post(path, headers=self.tokens[who], json=body)

    def issue(self, kind: str) -> dict[str, Any]:
        found = self.get("/api/v1/quality/issues", kind=kind).get_json()["items"]
        assert len(found) == 1, found
        return found[0]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var")
    settings = with_overrides(settings, quality={"max_household_size": 3, "scan_batch_size": 3})
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    app = create_app(settings, runtime)
    problems = make_problems(runtime.registry, runtime.sessions)

    def bearer(role: str, **kw: Any) -> dict[str, str]:
        token = issue_token(settings, subject=f"{role}-1", roles=[role], **kw)
        return {"Authorization": f"Bearer {token}"}

    tokens = {
        "staff": bearer("registry_staff"),
        "auditor": bearer("auditor"),
        "r01": bearer("supervisor", admin_areas=["R01"]),
        "r02": bearer("supervisor", admin_areas=["R02"]),
        "program": bearer("program", program="cash"),
        "field": bearer("field_worker", admin_areas=["R01"]),
    }
    yield Api(runtime, app, app.test_client(), tokens, problems)
    runtime.close()


def scan_over_http(api: Api) -> dict[str, Any]:
    started = api.post("/api/v1/quality/scans")
    assert started.status_code == 202, started.get_data(as_text=True)
    location = started.headers["Location"]
    deadline = time.monotonic() + 60
    while True:
        state = api.get(location).get_json()
        if state["state"] != "running":
            return state
        assert time.monotonic() < deadline, "scan did not finish"
        time.sleep(0.05)


def test_a_scan_over_http_then_reading_filtering_and_the_summary(api: Api) -> None:
    done = scan_over_http(api)
    assert done["state"] == "finished" and done["opened"] == 8
    assert done["households_checked"] == done["households_total"]

    everything = api.get("/api/v1/quality/issues", limit=200).get_json()
    assert everything["total"] == 8
    errors = api.get("/api/v1/quality/issues", severity="error").get_json()
    assert {i["kind"] for i in errors["items"]} == {
        "multiple_households",
        "impossible_date",
        "deceased_notified",
    }
    sizes = api.get("/api/v1/quality/issues", kind="household_size").get_json()
    assert sizes["total"] == 2  # the big household and the emptied one
    big = api.get("/api/v1/quality/issues", household_id=api.problems.big).get_json()["items"]
    assert [(i["kind"], i["details"]["size"]) for i in big] == [("household_size", 4)]
    # A household's filter also brings its members' issues, wherever they are filed.
    host = api.get("/api/v1/quality/issues", household_id=api.problems.twice_other).get_json()
    assert [i["kind"] for i in host["items"]] == ["multiple_households"]
    income = api.issue("income_mismatch")
    assert income["household_id"] == api.problems.income
    assert income["reasons"][0]["text"].startswith("The income the household declared")
    assert income["actions"] == ["acknowledge", "resolve", "dismiss"]

    summary = api.get("/api/v1/quality/summary", level=2).get_json()
    cells = {(c["kind"], c["area"]): c["count"] for c in summary["by_kind_area"]}
    assert cells[("household_composition", "R02-D01")] == 1
    assert summary["by_state"] == {"open": 8} and summary["level"] == 2
    assert sum(summary["trend"]["opened"]) == 8

    # Auditors read everything; program systems and field workers read nothing here.
    assert api.get("/api/v1/quality/issues", "auditor").get_json()["total"] == 8
    assert api.get("/api/v1/quality/issues", "program").status_code == 403
    assert api.get("/api/v1/quality/summary", "field").status_code == 403
    # A supervisor lists only their own areas, even when asking for another.
    r02 = api.get("/api/v1/quality/issues", "r02").get_json()
    assert r02["total"] >= 1
    assert all(i["admin_area_code"].startswith("R02") for i in r02["items"])
    assert api.get("/api/v1/quality/issues", "r02", area="R01").get_json()["total"] == 0

    bad = api.get("/api/v1/quality/issues", kind="bogus")
    assert bad.status_code == 400 and "kind must be one of" in bad.get_json()["detail"]


def test_state_changes_roles_areas_and_refusals(api: Api) -> None:
    scan_over_http(api)
    income = api.issue("income_mismatch")  # in R01-D02-L003
    path = f"/api/v1/quality/issues/{income['id']}"

    assert api.post(f"{path}/acknowledge", "auditor").status_code == 403
    outside = api.post(f"{path}/acknowledge", "r02")
    assert outside.status_code == 403
    assert api.get(path, "r02").status_code == 403

    done = api.post(f"{path}/acknowledge", "r01")
    assert done.status_code == 200
    assert done.get_json()["state"] == "acknowledged"
    assert done.get_json()["state_changed_by"] == "supervisor-1"
    again = api.post(f"{path}/acknowledge", "r01")
    assert again.status_code == 409
    assert again.get_json()["allowed"] == ["resolve", "dismiss"]

    no_reason = api.post(f"{path}/dismiss")
    assert no_reason.status_code == 409 and "needs a reason" in no_reason.get_json()["detail"]
    extra = api.post(f"{path}/dismiss", body={"reason": "x", "note": "y"})
    assert extra.status_code == 400
    dismissed = api.post(f"{path}/dismiss", body={"reason": "salary paid abroad, not taxed"})
    assert dismissed.status_code == 200
    body = dismissed.get_json()
    assert body["state"] == "dismissed" and body["state_reason"].startswith("salary paid")
    assert body["actions"] == [] and body["resolved_at"] is not None
    assert api.post(f"{path}/resolve").status_code == 409

    unknown = api.post("/api/v1/quality/issues/00000000-0000-0000-0000-000000000000/resolve")
    assert unknown.status_code == 404

    # A household's issues: its own and its current members', closed ones on request.
    mine = api.get(f"/api/v1/households/{api.problems.income}/quality").get_json()
    assert mine["items"] == []  # the only one was dismissed
    closed = api.get(f"/api/v1/households/{api.problems.income}/quality", include_closed="true")
    assert [i["kind"] for i in closed.get_json()["items"]] == ["income_mismatch"]
    foreign = api.get(f"/api/v1/households/{api.problems.young_head}/quality", "r01")
    assert foreign.status_code == 403


def test_the_command_scans_and_a_second_scan_changes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.cli import main

    env = {
        "SRHUB_DATABASE_URL": api.runtime.settings.effective_database_url,
        "SRHUB_DATA_DIR": str(api.runtime.settings.data_dir),
        "SRHUB_QUALITY": json.dumps({"max_household_size": 3}),
    }
    first = CliRunner().invoke(main, ["quality", "scan", "--batch-size", "2"], env=env)
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["state"] == "finished" and result["opened"] == 8
    assert "100%" in first.stderr
    second = CliRunner().invoke(main, ["quality", "scan"], env=env)
    assert json.loads(second.stdout.strip().splitlines()[-1])["opened"] == 0
    assert len(issues(api.runtime.sessions)) == 8
    counts = CliRunner().invoke(main, ["quality", "summary"], env=env)
    assert json.loads(counts.stdout)["by_state"] == {"open": 8}


def test_the_household_fragment_shows_a_households_issues_for_its_page(api: Api) -> None:
    """``ui/quality_household.html``, for the household's staff page: its issues with what to
    do, and a link to act on them on the data-quality page (filtered to the household)."""
    from flask import render_template

    from hub.quality.service import issues_for_household

    scan_over_http(api)
    household = api.problems.twice_other
    with api.runtime.sessions() as session:
        found = issues_for_household(session, household)
    with api.app.test_request_context("/"):
        html = render_template(
            "ui/quality_household.html", quality_issues=found, household_id=household
        )
    assert html.count("<tr data-issue-id=") == 1
    assert "more than one active household" in html and "a member" in html
    assert f"/ui/quality?household={household}" in html
    assert "Otieno" not in html and "Twice" not in html
