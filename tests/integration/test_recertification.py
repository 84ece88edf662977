"""Recertification over real databases: registration sets the due date; the round (as of an
injected day) reminds once per cycle and flags overdue households without deleting them; a
staff confirmation through the API and an applied field submission reset the date; the lists
are area-scoped."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from hub.api import create_app
from hub.assembly import recertification_job
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from hub.workers.retention import run_retention
from registry_core.models import HouseholdRecertification
from registry_core.service import Registry, Source
from standards.timeutil import utcnow
from tests.intake_support import head, household, xlsform
from tests.integration.test_intake import STAFF, Hub

RECERT_EVENTS = ("household.recertification_due", "household.recertification_overdue")


def _household(area: str = "R01-D02", name: str = "Amina") -> dict[str, Any]:
    return {
        "admin_area_code": area,
        "address": "12 Mango Lane",
        "members": [
            {
                "given_name": name,
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "1985-04-02",
                "relationship": "head",
            }
        ],
    }


def _events(registry: Registry, household_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e.routing_key, e.data)
        for e in registry.outbox_since(0, 10_000)
        if e.routing_key in RECERT_EVENTS and e.subject == f"household/{household_id}"
    ]


def test_registration_sets_the_due_date(registry: Registry) -> None:
    record = registry.register_household(_household(), Source("registry_staff")).record
    status = record["recertification"]
    assert status["due_on"] == (utcnow().date() + timedelta(days=730)).isoformat()
    assert status["state"] == "current" and status["certified_by"] == "registry_staff"
    assert registry.get_household(record["id"])["recertification"] == status


def test_the_round_reminds_once_flags_overdue_and_deletes_nothing(registry: Registry) -> None:
    record = registry.register_household(_household(), Source("registry_staff")).record
    hid, version = record["id"], record["version"]
    due = date.fromisoformat(record["recertification"]["due_on"])

    before = registry.run_recertification_round(due - timedelta(days=61))
    assert before.reminded == [] and _events(registry, hid) == []

    window = registry.run_recertification_round(due - timedelta(days=60))
    assert window.reminded == [hid] and window.overdue == []
    again = registry.run_recertification_round(due)  # still due: nothing twice
    assert again.reminded == [] and again.overdue == []
    assert [t for t, _ in _events(registry, hid)] == ["household.recertification_due"]
    assert registry.get_household(hid)["recertification"]["state"] == "due"
    items, total = registry.list_recertification("due")
    assert total == 1 and items[0]["household_id"] == hid

    late = registry.run_recertification_round(due + timedelta(days=1))
    assert late.overdue == [hid] and late.reminded == []
    registry.run_recertification_round(due + timedelta(days=30))
    events = _events(registry, hid)
    assert [t for t, _ in events] == list(RECERT_EVENTS)
    assert events[1][1]["due_on"] == due.isoformat()
    assert events[1][1]["admin_area_code"] == "R01-D02"
    after = registry.get_household(hid)
    # Flagged, visible, never deleted or deactivated; the household itself is untouched.
    assert after["recertification"]["state"] == "overdue"
    assert after["status"] == "active" and after["version"] == version
    assert registry.list_recertification("due")[1] == 0
    assert registry.list_recertification("overdue")[1] == 1

    # Recertified: a new cycle, reminded again when it comes due.
    status = registry.recertify(hid, Source("registry_staff", "api:token:t1"))
    assert status["state"] == "current"
    new_due = date.fromisoformat(status["due_on"])
    assert new_due == utcnow().date() + timedelta(days=730)
    assert registry.list_recertification("overdue")[1] == 0
    registry.run_recertification_round(new_due - timedelta(days=10))
    assert [t for t, _ in _events(registry, hid)] == [*RECERT_EVENTS, RECERT_EVENTS[0]]


def test_a_round_that_missed_the_window_writes_both_events_and_starts_old_households(
    registry: Registry,
) -> None:
    hid = registry.register_household(_household(), Source("registry_staff")).record["id"]
    with registry._ws.sessions.begin() as session:  # as before the table existed
        session.execute(delete(HouseholdRecertification))
    assert "recertification" not in registry.get_household(hid)
    far = utcnow().date() + timedelta(days=800)
    result = registry.run_recertification_round(far)
    assert result.started == 1 and result.reminded == [hid] and result.overdue == [hid]
    assert [t for t, _ in _events(registry, hid)] == list(RECERT_EVENTS)
    assert registry.get_household(hid)["recertification"]["certified_by"] == "registry"


def test_the_retention_round_runs_it_with_an_injected_clock(db_url: str, tmp_path: Path) -> None:
    from hub.runtime import HubRuntime

    settings = load_settings(
        env={"SRHUB_RECERTIFICATION": '{"interval_days": 30, "reminder_days": 5}'},
        database_url=db_url,
        data_dir=tmp_path,
        sandbox=False,
    )
    runtime = HubRuntime(settings)
    try:
        registry = runtime.registry
        registry.ensure_identifier_systems()
        hid = registry.register_household(_household(), Source("registry_staff")).record["id"]
        due = date.fromisoformat(registry.get_household(hid)["recertification"]["due_on"])
        assert due == utcnow().date() + timedelta(days=30)
        day = {"today": due - timedelta(days=5)}
        job = recertification_job(settings, today=lambda: day["today"])
        assert run_retention(runtime.sessions, [job]) == {"recertification": 1}
        assert run_retention(runtime.sessions, [job]) == {"recertification": 0}
        day["today"] = due + timedelta(days=1)
        assert run_retention(runtime.sessions, [job]) == {"recertification": 1}
        assert registry.get_household(hid)["recertification"]["state"] == "overdue"
    finally:
        runtime.close()


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    registry = app.extensions["srhub_runtime"].registry
    registry.ensure_identifier_systems()

    def auth(*roles: str, areas: tuple[str, ...] = ()) -> dict[str, str]:
        token = issue_token(settings, subject="tester", roles=list(roles), admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.registry = registry  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def test_the_api_lists_by_area_and_staff_recertify(api: Any) -> None:
    registry: Registry = api.registry
    ours = registry.register_household(_household("R01-D02"), Source("field_survey")).record
    theirs = registry.register_household(_household("R02-D01", "Zawadi"), Source("x_y")).record
    due = date.fromisoformat(ours["recertification"]["due_on"])
    registry.run_recertification_round(due + timedelta(days=1))

    staff = api.auth("registry_staff")
    page = api.get("/api/v1/recertification?state=overdue", headers=staff).json
    assert page["total"] == 2 and page["limit"] == 50
    assert {i["household_id"] for i in page["items"]} == {ours["id"], theirs["id"]}
    narrowed = api.get("/api/v1/recertification?state=overdue&area=R02", headers=staff).json
    assert [i["household_id"] for i in narrowed["items"]] == [theirs["id"]]
    assert api.get("/api/v1/recertification?state=due", headers=staff).json["total"] == 0
    assert api.get("/api/v1/recertification?state=late", headers=staff).status_code == 400

    worker = api.auth("field_worker", areas=("R01",))
    mine = api.get("/api/v1/recertification?state=overdue", headers=worker).json
    assert [i["household_id"] for i in mine["items"]] == [ours["id"]]
    outside = api.get("/api/v1/recertification?state=overdue&area=R02", headers=worker).json
    assert outside["total"] == 0
    inside = api.get("/api/v1/recertification?state=overdue&area=R01-D02", headers=worker).json
    assert inside["total"] == 1
    assert api.get("/api/v1/recertification").status_code == 401

    # Confirming: not outside one's area, not as an auditor; then the date is reset.
    url = f"/api/v1/households/{theirs['id']}/recertify"
    assert api.post(url, headers=worker).status_code == 403
    assert api.post(url, headers=api.auth("auditor")).status_code == 403
    assert (
        api.post(f"/api/v1/households/{uuid.uuid4()}/recertify", headers=staff).status_code == 404
    )
    done = api.post(f"/api/v1/households/{ours['id']}/recertify", headers=worker)
    assert done.status_code == 200, done.json
    status = done.json["recertification"]
    assert status["state"] == "current" and status["certified_by"] == "field_survey"
    assert status["due_on"] == (utcnow().date() + timedelta(days=730)).isoformat()
    record = api.get(f"/api/v1/households/{ours['id']}", headers=staff).json
    assert record["recertification"] == status
    left = api.get("/api/v1/recertification?state=overdue", headers=staff).json
    assert [i["household_id"] for i in left["items"]] == [theirs["id"]]


@pytest.fixture
def hub(db_url: str, tmp_path: Path):
    made = Hub(db_url, tmp_path)
    yield made
    made.close()


def test_an_applied_field_submission_recertifies(hub: Hub) -> None:
    registry = hub.runtime.registry
    created = registry.register_household(
        {
            "admin_area_code": "R01-D02",
            "address": "Old road 1",
            "members": [{**head(), "relationship": "head"}],
        },
        Source("field_survey"),
    ).record
    hid, person_id = created["id"], created["members"][0]["id"]
    due = date.fromisoformat(created["recertification"]["due_on"])
    registry.run_recertification_round(due + timedelta(days=1))
    assert registry.get_household(hid)["recertification"]["state"] == "overdue"
    # The same household submitted again from the field, nothing changed but the visit.
    update = household(household_id=hid, base_version=created["version"], address="Old road 1")
    instance_id = hub.submit(update, [head(person_id=person_id)])
    assert hub.work(1)["processed"] == 1
    assert hub.row(instance_id)["status"] == "applied", hub.row(instance_id)["reason"]
    status = registry.get_household(hid)["recertification"]
    assert status["state"] == "current" and status["certified_by"] == "intake"
    assert date.fromisoformat(status["due_on"]) == utcnow().date() + timedelta(days=730)


def test_cadastro_unico_story_recertified_by_a_new_submission_or_flagged(hub: Hub) -> None:
    """Brazil's Cadastro Único: two families certified almost two years ago become due and are
    reminded; one is visited and submits again with a changed income (recertified, new due
    date); the other is not and is flagged overdue — still there, still active."""
    registry = hub.runtime.registry
    extra = [("integer", "monthly_income", "Monthly income", "", "", "", "")]
    hub.service.upload_form(xlsform(version="2", extra_rows=extra), "hh.xlsx", "admin")
    hub.xform = hub.service.form_document("hh_test", STAFF).xform  # type: ignore[union-attr]
    today = utcnow().date()
    long_ago = Source("field_survey", None, utcnow() - timedelta(days=700))
    visited = registry.register_household(
        {
            "admin_area_code": "R01-D02",
            "members": [{**head(), "relationship": "head"}],
        },
        long_ago,
    ).record
    absent = registry.register_household(
        {
            "admin_area_code": "R01-D03",
            "members": [{**head(given_name="Bia"), "relationship": "head"}],
        },
        long_ago,
    ).record
    due = today + timedelta(days=30)
    assert visited["recertification"]["due_on"] == due.isoformat()

    reminded = registry.run_recertification_round(today)
    assert sorted(reminded.reminded) == sorted([visited["id"], absent["id"]])
    assert registry.list_recertification("due", area_prefixes=["R01"])[1] == 2

    update = household(
        household_id=visited["id"], base_version=visited["version"], monthly_income="450"
    )
    instance_id = hub.submit(update, [head(person_id=visited["members"][0]["id"])])
    assert hub.work(1)["processed"] == 1
    assert hub.row(instance_id)["status"] == "applied", hub.row(instance_id)["reason"]
    now = registry.get_household(visited["id"])
    assert {a["name"]: a["value"] for a in now["attributes"]}["monthly_income"] == 450
    assert now["recertification"]["state"] == "current"
    assert now["recertification"]["due_on"] == (today + timedelta(days=730)).isoformat()

    flagged = registry.run_recertification_round(due + timedelta(days=1))
    assert flagged.overdue == [absent["id"]] and flagged.reminded == []
    late = registry.get_household(absent["id"])
    assert late["recertification"]["state"] == "overdue" and late["status"] == "active"
    assert [i["household_id"] for i in registry.list_recertification("overdue")[0]] == [
        absent["id"]
    ]
    assert [t for t, _ in _events(registry, visited["id"])] == [RECERT_EVENTS[0]]
    assert [t for t, _ in _events(registry, absent["id"])] == list(RECERT_EVENTS)


def test_dissolved_households_are_not_reminded(registry: Registry) -> None:
    from registry_core.models import Household

    kept = registry.register_household(_household(), Source("registry_staff")).record["id"]
    gone = registry.register_household(_household(name="Zuri"), Source("x_y")).record["id"]
    with registry._ws.sessions.begin() as session:
        session.execute(
            update(Household).where(Household.id == uuid.UUID(gone)).values(status="dissolved")
        )
    far = utcnow().date() + timedelta(days=800)
    result = registry.run_recertification_round(far)
    assert result.reminded == [kept] and result.overdue == [kept]
    assert registry.get_household(gone)["recertification"]["state"] == "current"


@pytest.fixture
def program_registry(db_engine: Any, cipher: Any) -> Registry:
    """A registry whose CT program recertifies yearly and OAP every three years."""
    from registry_core.db import make_session_factory
    from registry_core.recertification import RecertificationPolicy

    policy = RecertificationPolicy(730, 60, 0, program_intervals={"CT": 365, "OAP": 1095})
    service = Registry(make_session_factory(db_engine), cipher, recertification=policy)
    service.ensure_identifier_systems()
    return service


def _due_in_days(registry: Registry, household_id: str) -> int:
    status = registry.get_household(household_id)["recertification"]
    certified = date.fromisoformat(status["last_certified_at"][:10])
    return (date.fromisoformat(status["due_on"]) - certified).days


def test_the_due_date_follows_the_programs_a_household_is_enrolled_in(
    program_registry: Registry,
) -> None:
    registry = program_registry
    staff = Source("registry_staff")
    record = registry.register_household(_household(), staff).record
    hid, member = record["id"], record["members"][0]["id"]
    assert _due_in_days(registry, hid) == 730  # in no program: the registry-wide interval

    oap = registry.grant_consent("OAP", "benefits", "paper", staff, household_id=hid).record
    assert _due_in_days(registry, hid) == 1095
    ct = registry.grant_consent("CT", "benefits", "paper", staff, person_id=member).record
    assert _due_in_days(registry, hid) == 365  # a member's enrolment counts: the shortest wins

    registry.revoke_consent(ct["consent_id"], staff, "left the program")
    assert _due_in_days(registry, hid) == 1095
    registry.revoke_consent(oap["consent_id"], staff, "left the program")
    assert _due_in_days(registry, hid) == 730
    # A confirmation starts a new cycle by the same rule.
    registry.grant_consent("CT", "benefits", "paper", staff, household_id=hid)
    status = registry.recertify(hid, staff)
    assert date.fromisoformat(status["due_on"]) == utcnow().date() + timedelta(days=365)


def test_a_shorter_interval_never_flags_without_the_round(program_registry: Registry) -> None:
    """A consent that brings the due date into the past leaves the flag to the round, which
    writes the events; a withdrawal that moves it out again clears the flag at once."""
    registry = program_registry
    staff = Source("registry_staff")
    hid = registry.register_household(_household(), staff).record["id"]
    with registry._ws.sessions() as session, session.begin():  # certified 400 days ago
        session.execute(
            update(HouseholdRecertification)
            .where(HouseholdRecertification.household_id == uuid.UUID(hid))
            .values(last_certified_at=utcnow() - timedelta(days=400))
        )
    ct = registry.grant_consent("CT", "benefits", "paper", staff, household_id=hid).record
    status = registry.get_household(hid)["recertification"]
    assert status["state"] == "current" and _due_in_days(registry, hid) == 365
    result = registry.run_recertification_round()
    assert result.overdue == [hid] and result.reminded == [hid]
    assert registry.get_household(hid)["recertification"]["state"] == "overdue"

    registry.revoke_consent(ct["consent_id"], staff, "left the program")
    assert registry.get_household(hid)["recertification"]["state"] == "current"


def test_consents_given_at_registration_set_the_first_due_date(db_url: str, tmp_path: Path) -> None:
    """Through the API, with the intervals from settings: the consents recorded in the
    registration's transaction (after the household) shorten its first cycle."""
    env = {"SRHUB_RECERTIFICATION__PROGRAM_INTERVALS": "CT=365"}
    settings = load_settings(env=env, database_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    try:
        app.extensions["srhub_runtime"].registry.ensure_identifier_systems()
        token = issue_token(settings, subject="tester", roles=["registry_staff"])
        body = {
            **_household(),
            "consents": [{"program": "CT", "purpose": "cash", "channel": "paper", "member": 0}],
        }
        made = app.test_client().post(
            "/api/v1/households", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert made.status_code == 201, made.json
        status = made.json["recertification"]
        assert status["due_on"] == (utcnow().date() + timedelta(days=365)).isoformat()
        plain = app.test_client().post(
            "/api/v1/households", json=_household(), headers={"Authorization": f"Bearer {token}"}
        )
        due = plain.json["recertification"]["due_on"]
        assert due == (utcnow().date() + timedelta(days=730)).isoformat()
    finally:
        app.extensions["srhub_runtime"].close()
