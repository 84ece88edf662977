"""The staff pages through Flask's test client, on SQLite and PostgreSQL: household search
(name, registry number, id, national ID, area, status, pages), who may open what (a supervisor
outside their areas, an auditor's masked identifiers, a field worker kept out), the consent
and recertification forms' validation, and the queues page's counts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from hub.api import create_app
from hub.auth.roles import Principal, Role
from hub.corrections.service import Proposal, propose
from hub.quality.checks import check_subjects
from hub.settings import load_settings
from hub.ui.tables import UiAudit
from registry_core.models import Household, Membership
from registry_core.service import Registry, Source
from tests.integration.staff_support import (
    STAFF,
    add_dashboard_user,
    csrf_of,
    log_in,
    register,
)

ROW_RE = re.compile(r'<tr data-household-id="([0-9a-f-]{36})"')


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path, sandbox=False)
    made = create_app(settings)
    made.extensions["srhub_runtime"].registry.ensure_identifier_systems()
    for name, role, areas in (
        ("olga", "registry_staff", ()),
        ("sue", "supervisor", ("R01",)),
        ("audrey", "auditor", ()),
        ("fred", "field_worker", ("R01",)),
    ):
        add_dashboard_user(settings, name, role, areas)
    yield made
    made.extensions["srhub_runtime"].close()


def _registry(app: Flask) -> Registry:
    registry: Registry = app.extensions["srhub_runtime"].registry
    return registry


def _client(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    landed = log_in(client, username)
    assert landed.status_code == 200, landed.get_data(as_text=True)[:300]
    return client


def _found(client: FlaskClient, query: str) -> list[str]:
    page = client.get(f"/ui/households?{query}")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    return ROW_RE.findall(page.get_data(as_text=True))


def test_search_by_name_number_id_national_id_area_and_status(app: Flask) -> None:
    registry = _registry(app)
    wanjiku = register(
        registry, "R01-D01", "Wanjiku", "Kariuki", "12345678", second=("Otieno", "Ouma")
    )
    brien = register(registry, "R02-D07", "Siobhan", "O'Brien", "87654321")
    other = register(registry, "R01-D02", "Amina", "Hassan")
    with app.extensions["srhub_runtime"].sessions() as session, session.begin():
        session.execute(  # as a head's death leaves it
            update(Household)
            .where(Household.id == uuid.UUID(other["id"]))
            .values(status="needs_review")
        )
    client = _client(app, "olga")

    assert _found(client, "q=wanj") == [wanjiku["id"]]  # part of a name, any case
    assert _found(client, "q=KARIUKI+wanjiku") == [wanjiku["id"]]  # one member, both words
    assert _found(client, "q=Wanjiku+Ouma") == []  # two members' words are not one person
    assert _found(client, "q=o+brien") == [brien["id"]]  # punctuation folded
    assert _found(client, f"q={brien['registry_number']}") == [brien["id"]]
    assert _found(client, f"q={brien['registry_number'].lower()}") == [brien["id"]]
    assert _found(client, f"q={other['id']}") == [other["id"]]
    assert _found(client, "national_id=1234-5678") == [wanjiku["id"]]  # normalised, hashed
    assert _found(client, "national_id=12345679") == []
    assert sorted(_found(client, "area=R01")) == sorted([wanjiku["id"], other["id"]])
    assert _found(client, "status=needs_review") == [other["id"]]
    assert _found(client, "area=r01") == []  # area codes are exact, not case-blind

    refused = client.get("/ui/households?national_id=%40%40%40")
    assert refused.status_code == 400 and "national ID" in refused.get_data(as_text=True)
    assert "@@@" not in refused.get_data(as_text=True)
    assert client.get("/ui/households?status=sleeping").status_code == 400
    assert client.get("/ui/households?offset=ten").status_code == 400
    assert client.get("/ui/households?q=" + "a+" * 7).status_code == 400


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_search_pages_through_every_match(app: Flask) -> None:
    registry = _registry(app)
    made = {register(registry, "R03", f"Person{i}", "Pager")["id"] for i in range(27)}
    client = _client(app, "olga")
    first = client.get("/ui/households?q=pager").get_data(as_text=True)
    assert 'id="households-total">27<' in first
    second = client.get("/ui/households?q=pager&offset=25").get_data(as_text=True)
    seen = ROW_RE.findall(first) + ROW_RE.findall(second)
    assert len(seen) == 27 and set(seen) == made
    assert 'id="next-page"' in first and 'id="next-page"' not in second


def test_a_supervisor_sees_their_areas_only(app: Flask) -> None:
    registry = _registry(app)
    inside = register(registry, "R01-D01", "Wanjiku", "Kariuki", "12345678")
    outside = register(registry, "R02-D01", "Amina", "Hassan", "55554444")
    client = _client(app, "sue")

    assert _found(client, "") == [inside["id"]]
    assert _found(client, "area=R02") == []  # an area outside theirs lists nothing
    assert _found(client, "national_id=55554444") == []
    page = client.get(f"/ui/households/{inside['id']}")
    assert page.status_code == 200
    assert "national_id: 12345678" in page.get_data(as_text=True)  # supervisors check IDs
    assert client.get(f"/ui/households/{outside['id']}").status_code == 403
    assert client.get(f"/ui/households/{uuid.uuid4()}").status_code == 404
    token = csrf_of(page.get_data(as_text=True))
    recertify = client.post(f"/ui/households/{inside['id']}/recertify", data={"csrf_token": token})
    assert recertify.status_code == 403
    consent = client.post(
        f"/ui/households/{inside['id']}/consents",
        data={
            "csrf_token": token,
            "subject": "household",
            "program": "CT",
            "purpose": "x",
            "channel": "paper",
        },
    )
    assert consent.status_code == 403
    assert registry.list_consents(household_id=inside["id"]) == []
    assert client.get("/ui/queues").status_code == 403
    assert 'id="record-consent"' not in page.get_data(as_text=True)

    due = date.fromisoformat(inside["recertification"]["due_on"])
    registry.run_recertification_round(due + timedelta(days=1))  # both overdue
    listing = client.get("/ui/recertification").get_data(as_text=True)
    assert 'id="total-overdue">1<' in listing
    assert 'data-area="R01-D01"' in listing and 'data-area="R02-D01"' not in listing
    assert outside["id"] not in listing and 'class="confirm"' not in listing
    elsewhere = client.get("/ui/recertification?area=R02").get_data(as_text=True)
    assert 'id="total-overdue">0<' in elsewhere
    staff = _client(app, "olga").get("/ui/recertification").get_data(as_text=True)
    assert 'id="total-overdue">2<' in staff


def test_an_auditor_reads_with_identifiers_masked_and_changes_nothing(app: Flask) -> None:
    registry = _registry(app)
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki", "12345678")
    client = _client(app, "audrey")
    listing = client.get("/ui/households").get_data(as_text=True)
    assert "national_id: ******78" in listing and "12345678" not in listing
    page = client.get(f"/ui/households/{house['id']}").get_data(as_text=True)
    assert "national_id: ******78" in page and "12345678" not in page
    assert 'id="record-consent"' not in page and 'id="confirm-recertification"' not in page
    token = csrf_of(page)
    assert (
        client.post(f"/ui/households/{house['id']}/recertify", data={"csrf_token": token})
    ).status_code == 403
    assert client.get("/ui/recertification").status_code == 200
    assert client.get("/ui/dead-letters").status_code == 403
    assert client.get("/").headers["Location"].endswith("/ui/households")

    staff = _client(app, "olga").get(f"/ui/households/{house['id']}").get_data(as_text=True)
    assert "national_id: 12345678" in staff


def test_a_field_worker_has_no_dashboard(app: Flask) -> None:
    client = app.test_client()
    refused = log_in(client, "fred")
    assert refused.status_code == 401 and "no dashboard role" in refused.get_data(as_text=True)
    assert client.get("/ui/households").status_code == 302  # to the login page


def test_the_consent_form_is_validated_and_audited(app: Flask) -> None:
    registry = _registry(app)
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki")
    stranger = register(registry, "R01-D02", "Amina", "Hassan")["members"][0]["id"]
    client = _client(app, "olga")
    page = client.get(f"/ui/households/{house['id']}").get_data(as_text=True)
    token = csrf_of(page)
    url = f"/ui/households/{house['id']}/consents"
    good = {"subject": "household", "program": "CT", "purpose": "cash", "channel": "paper"}

    assert client.post(url, data=good).status_code == 400  # no CSRF token
    for bad, named in (
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"program": "C T"}, "program"),
        ({"purpose": ""}, "purpose"),
        ({"subject": stranger}, "whose consent"),
        ({"evidence_reference": "x" * 300}, "evidence reference"),
    ):
        answer = client.post(url, data={**good, **bad, "csrf_token": token}, follow_redirects=True)
        assert answer.status_code == 200
        text = answer.get_data(as_text=True)
        assert "Not recorded" in text and named in text, bad
    assert registry.list_consents(household_id=house["id"]) == []

    member = house["members"][0]["id"]
    done = client.post(
        url,
        data={**good, "subject": member, "evidence_reference": "scan:7", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Consent recorded for CT" in done.get_data(as_text=True)
    (consent,) = registry.list_consents(person_id=member)
    assert consent["person_id"] == member and consent["recorded_by"] == "ui:olga"
    assert consent["evidence_reference"] == "scan:7" and consent["channel"] == "paper"
    with app.extensions["srhub_runtime"].sessions() as session:
        actions = [(r.action, r.outcome) for r in session.query(UiAudit).all()]
    assert ("consent_record", "CT/cash") in actions
    assert sum(1 for a, o in actions if a == "consent_record" and o.startswith("refused")) == 5


def test_confirming_a_recertification_starts_a_new_cycle(app: Flask) -> None:
    registry = _registry(app)
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki")
    before = registry.get_household(house["id"])["recertification"]
    client = _client(app, "olga")
    token = csrf_of(client.get(f"/ui/households/{house['id']}").get_data(as_text=True))
    done = client.post(
        f"/ui/households/{house['id']}/recertify",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "Recertified; next due on" in done.get_data(as_text=True)
    after = registry.get_household(house["id"])["recertification"]
    assert after["certified_by"] == "registry_staff"
    assert after["last_certified_at"] > before["last_certified_at"]
    assert client.get("/ui/recertification?state=late").status_code == 400


def test_the_queues_page_counts_what_waits(app: Flask) -> None:
    registry = _registry(app)
    for n in range(3):
        registry.queue_review(
            kind="birth",
            reason="the mother is not registered",
            record={"child": {"given_name": "Baby"}},
            candidates=[],
            source=Source("civil_registry", f"b-{n}"),
        )
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki")
    due = registry.get_household(house["id"])["recertification"]["due_on"]
    registry.run_recertification_round(date.fromisoformat(due) + timedelta(days=1))
    page = _client(app, "olga").get("/ui/queues").get_data(as_text=True)
    counts = dict(re.findall(r'data-queue="(\w+)">.*?class="num count">([^<]+)<', page, re.S))
    assert counts["matches"] == "3" and counts["overdue"] == "1" and counts["due"] == "0"
    assert counts["review"] == "0"
    assert page.count("data-review-id=") == 3
    assert "Baby" not in page  # the sealed record stays sealed


def test_the_household_page_shows_history_and_data_quality_of_its_own_only(app: Flask) -> None:
    registry = _registry(app)
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki", second=("Otieno", "Ouma"))
    other = register(registry, "R01-D02", "Amina", "Hassan")
    spouse = house["members"][1]["id"]
    registry.record_data_quality_notes(
        spouse,
        [{"target": "birth_date", "rule": "date:plausible", "message": "born after the head"}],
        Source("civil_registry", "brn-7"),
    )
    registry.grant_consent("CT", "cash", "paper", STAFF, household_id=other["id"])
    registry.update_household(house["id"], {"address": "Plot 9"}, STAFF)
    page = _client(app, "olga").get(f"/ui/households/{house['id']}").get_data(as_text=True)

    history = page[page.index('id="history"') : page.index('id="data-quality"')]
    assert history.count('data-type="household.created"') == 1
    assert history.count('data-type="household.updated"') == 1
    assert "changed fields: address" in history
    assert "consent.granted" not in history  # the other household's consent is not ours
    quality = page[page.index('id="data-quality"') :]
    assert "born after the head" in quality and "date:plausible" in quality
    assert "Otieno Ouma" in quality and "civil_registry" in quality
    # The section order of household_sections.SECTIONS, each under its own id.
    order = [
        page.index(f'<section id="{key}">')
        for key in (
            "members",
            "recertification",
            "provenance",
            "consent",
            "corrections",
            "history",
            "data_quality",
        )
    ]
    assert order == sorted(order)


def test_a_proposed_correction_waits_in_queues_and_shows_on_its_household(app: Flask) -> None:
    registry = _registry(app)
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki")
    worker = Principal(subject="enum-7", roles=frozenset({Role.field_worker}), admin_areas=("R01",))
    proposal = Proposal(
        household_id=house["id"],
        person_id=None,
        target="household.address",
        old_value=house.get("address"),
        proposed_value="14 Mango Lane",
        reason="moved after the floods",
        on_behalf_of="beneficiary",
        channel="field_visit",
    )
    with app.extensions["srhub_runtime"].sessions() as session, session.begin():
        propose(session, registry, proposal, worker)
    officer = _client(app, "olga")
    page = officer.get("/ui/queues").get_data(as_text=True)
    counts = dict(re.findall(r'data-queue="(\w+)">.*?class="num count">([^<]+)<', page, re.S))
    assert counts["corrections"] == "1"
    view = officer.get(f"/ui/households/{house['id']}").get_data(as_text=True)
    assert 'id="corrections"' in view and "14 Mango Lane" in view
    assert f"/ui/households/{house['id']}/change-requests" in view
    # The auditor reads the section but is not sent to the page where requests are decided.
    audited = _client(app, "audrey").get(f"/ui/households/{house['id']}").get_data(as_text=True)
    assert 'data-state="proposed"' in audited
    assert f"/ui/households/{house['id']}/change-requests" not in audited


def test_the_household_page_lists_the_registry_s_data_quality_issues(app: Flask) -> None:
    registry = _registry(app)
    house = register(registry, "R01-D01", "Wanjiku", "Kariuki", second=("Otieno", "Ouma"))
    other = register(registry, "R01-D02", "Amina", "Hassan")
    # Two heads in one household: a composition issue of this household, none of the other.
    spouse = house["members"][1]["id"]
    runtime = app.extensions["srhub_runtime"]
    with runtime.sessions() as session, session.begin():
        session.execute(
            update(Membership)
            .where(Membership.person_id == uuid.UUID(spouse))
            .values(relationship_to_head="head")
        )
        check_subjects(
            session,
            runtime.settings.quality,
            datetime.now(UTC),
            households=[uuid.UUID(house["id"]), uuid.UUID(other["id"])],
        )
    page = _client(app, "olga").get(f"/ui/households/{house['id']}").get_data(as_text=True)
    issues = page[page.index('id="quality-issues"') : page.index("Notes from sources")]
    assert issues.count('data-kind="household_composition"') == 1
    assert "/ui/quality?household=" in page
    clean = _client(app, "audrey").get(f"/ui/households/{other['id']}").get_data(as_text=True)
    assert 'id="no-quality-issues"' in clean and 'data-kind="' not in clean
    # The auditor reads the quality page, without the buttons that change an issue.
    board = _client(app, "audrey").get("/ui/quality?state=all")
    assert board.status_code == 200
    assert "household_composition" in board.get_data(as_text=True)
    assert 'class="act-' not in board.get_data(as_text=True)
