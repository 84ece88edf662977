"""The overview's "keeping the registry right" tiles: open data-quality issues, corrections
waiting for approval and open duplicate pairs, each counted as its page lists them and linking
to it (Flask's test client on SQLite and PostgreSQL, then a click in headless Chromium)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from hub.api import create_app
from hub.auth.roles import Principal, Role
from hub.corrections.service import Proposal, decide, propose
from hub.quality.checks import check_subjects
from hub.settings import load_settings
from registry_core.models import Membership
from registry_core.resolution import open_duplicate_review
from tests.integration.staff_support import add_dashboard_user, log_in, register
from tests.integration.test_dashboard import PASSWORD, running_dashboard

TILE_RE = r'<a id="{}" class="value" href="([^"]+)">(\d+)</a>'


def _seed(runtime: Any) -> dict[str, int]:
    """Two open issues' worth of households, corrections in several states and duplicate pairs
    open and decided; returns what each tile must count."""
    registry = runtime.registry
    registry.ensure_identifier_systems()
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki", second=("Otieno", "Ouma"))
    twin = register(registry, "R01-D02", "Wanjiku", "Kariuki")
    other = register(registry, "R01-D03", "Amina", "Hassan")
    with runtime.sessions() as session, session.begin():
        session.execute(  # two heads: a composition issue of this household
            update(Membership)
            .where(Membership.person_id == uuid.UUID(house["members"][1]["id"]))
            .values(relationship_to_head="head")
        )
        check_subjects(
            session,
            runtime.settings.quality,
            datetime.now(UTC),
            households=[uuid.UUID(h["id"]) for h in (house, twin, other)],
        )
    from hub.quality.tables import DataQualityIssue

    with runtime.sessions() as session:
        issues = session.query(DataQualityIssue).filter(DataQualityIssue.state == "open").count()
    staff = Principal("olga", frozenset({Role.registry_staff}))
    made = []
    with runtime.sessions() as session, session.begin():
        for h, new in ((house, "1 Road"), (twin, "2 Road"), (other, "3 Road")):
            proposal = Proposal(
                h["id"],
                None,
                "household.address",
                h["address"],
                new,
                "typo",
                "beneficiary",
                "phone",
            )
            made.append(propose(session, registry, proposal, staff)["id"])
    with runtime.sessions() as session, session.begin():  # one decided: not waiting any more
        decide(
            session,
            registry,
            made[0],
            "reject",
            "no evidence",
            Principal("oscar", frozenset({Role.registry_staff})),
        )
    people = [h["members"][0]["id"] for h in (house, twin, other)]
    with runtime.sessions() as session, session.begin():
        for a, b in ((people[0], people[1]), (people[1], people[2]), (people[0], people[2])):
            open_duplicate_review(
                session,
                runtime.cipher,
                person_a=uuid.UUID(a),
                person_b=uuid.UUID(b),
                score=0.9,
                outcome="review",
                scan_id=None,
            )
    decided = registry.list_reviews("open", 10, 0, "duplicate")[0][0]
    from registry_core.services.merges import Actor

    registry.keep_apart(decided["id"], reason="two people", actor=Actor("olga"))
    return {"quality": issues, "corrections": 2, "duplicates": 2}


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Any:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    made = create_app(settings)
    add_dashboard_user(settings, "olga", "registry_staff")
    yield made
    made.extensions["srhub_runtime"].close()


def test_the_tiles_count_what_their_pages_list(app: Flask) -> None:
    expected = _seed(app.extensions["srhub_runtime"])
    assert expected["quality"] >= 1
    client = app.test_client()
    log_in(client, "olga")
    page = client.get("/").get_data(as_text=True)
    for key, row in (
        ("quality", "data-issue-id="),
        ("corrections", "data-request-id="),
        ("duplicates", "data-review-id="),
    ):
        found = re.search(TILE_RE.format(f"upkeep-{key}"), page)
        assert found is not None, key
        link, shown = found.group(1).replace("&amp;", "&"), int(found.group(2))
        assert shown == expected[key], key
        listed = client.get(link)
        assert listed.status_code == 200, link
        assert listed.get_data(as_text=True).count(row) == shown, key


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_tile_opens_its_page_in_the_browser(browser: Any, db_url: str, tmp_path: Path) -> None:
    with running_dashboard(db_url, tmp_path) as hub:
        expected = _seed(hub.runtime)
        add_dashboard_user(hub.settings, "olga", "registry_staff")
        page = browser.new_context().new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{hub.url}/")
        form = page.locator("#password-login")
        form.locator("input[name=username]").fill("olga")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_selector("#registry-upkeep")
        assert int(page.inner_text("#upkeep-duplicates")) == expected["duplicates"]
        assert int(page.inner_text("#upkeep-quality")) == expected["quality"]
        page.click("#upkeep-corrections")
        page.wait_for_selector("#change-requests")
        assert page.locator('tr[data-request-id][data-state="proposed"]').count() == 2
