"""Prefill by national ID against the live sandbox: four partners asked in parallel, a
proposal with provenance, a deadline that holds when a partner is slow, and access control."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.base import Connector, ConnectorContext
from connectors.base.testing import CollectingPublisher, SettingsOnlyConnector
from connectors.national_id import NationalIdConnector
from connectors.national_id.ids import verhoeff_digit
from hub.api import create_app
from hub.api.prefill import CONNECTORS_KEY, SERVICE_KEY
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from sandbox_mocks.launcher import (
    MOCK_NAMES,
    SANDBOX_IDENTIFIER_PROFILE,
    RunningSandbox,
    SandboxConfig,
    start_sandbox,
)
from sandbox_mocks.population.ids import sandbox_profile
from sandbox_mocks.population.model import Person

PROBLEM = "application/problem+json"
SOURCES = ("national_id", "civil_registry", "tax", "gis")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    config = SandboxConfig(
        people=600,
        ports=dict.fromkeys(MOCK_NAMES, 0),
        work_dir=tmp_path_factory.mktemp("sandbox"),
        only=SOURCES,
        tax_interval_seconds=0,
        tax_drop_on_start=False,
    )
    with start_sandbox(config) as running:
        # A year of registrations, so the civil registry knows this year's deaths.
        answer = requests.post(
            running.url("civil_registry") + "/_admin/clock/advance", json={"days": 365}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        yield running


def connectors_for(sandbox: RunningSandbox, skip: tuple[str, ...] = ()) -> dict[str, Connector]:
    publisher = CollectingPublisher()
    found: dict[str, Connector] = {}
    for name, section in sandbox.connectors().items():
        if name in skip:
            continue
        settings = {
            **section,
            "resilience": {
                "timeout_seconds": 2,
                "max_attempts": 2,
                "initial_backoff_seconds": 0.05,
                "jitter_seconds": 0,
            },
        }
        context = ConnectorContext(name, publisher, identifiers=sandbox_profile())
        found[name] = (
            NationalIdConnector(settings, context)
            if name == "national_id"
            else SettingsOnlyConnector(settings, context)
        )
    return found


@pytest.fixture
def api(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Any]:
    # The sandbox's country profile, as `srhub run` gives the hub while the sandbox runs.
    from hub.dbschema import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_to_head(url)  # a field worker's prefill first looks the person up in the registry
    settings = load_settings(
        env={},
        database_url=url,
        data_dir=tmp_path,
        identifier_profile=SANDBOX_IDENTIFIER_PROFILE,
    )
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()
    app.extensions[CONNECTORS_KEY] = connectors_for(sandbox)
    client = app.test_client()

    def auth(*roles: str, areas: tuple[str, ...] = ()) -> dict[str, str]:
        token = issue_token(settings, subject="tester", roles=list(roles), admin_areas=areas)
        return {"Authorization": f"Bearer {token}"}

    client.auth = auth  # type: ignore[attr-defined]
    client.app_under_test = app  # type: ignore[attr-defined]
    yield client
    service = app.extensions.get(SERVICE_KEY)
    if service is not None:
        service.close()
    app.extensions["srhub_runtime"].close()


@pytest.fixture(autouse=True)
def _repair(sandbox: RunningSandbox) -> Iterator[None]:
    yield
    for name in SOURCES:
        requests.delete(sandbox.url(name) + "/_admin/faults", timeout=5)


def deceased_taxpayer(sandbox: RunningSandbox) -> Any:
    """Someone every partner knows: a taxpayer whose death (early in the year the civil
    registry's clock was advanced through) the authority and the registry both hold."""
    taxpayers = {i.national_id for h in sandbox.households for i in h.incomes if i.national_id}
    store = sandbox.app("national_id").extensions["national_id"].store
    for record in sorted(store.records(), key=lambda r: r.uin):
        if record.deceased and record.uin in taxpayers and record.death_date <= date(2025, 10, 1):
            return record
    pytest.skip("no deceased taxpayer in this population")


def living_taxpayer(sandbox: RunningSandbox, index: int = 0) -> tuple[Person, str]:
    found = [
        (p, h.locality_code)
        for h in sandbox.households
        for p in h.members
        if p.national_id
        and p.tax_id
        and not p.death_date
        and any(i.national_id == p.national_id for i in h.incomes)
    ]
    return found[index]


def post(api: Any, body: dict[str, Any], *roles: str, **kw: Any) -> Any:
    return api.post(
        "/api/v1/prefill", json=body, headers=api.auth(*(roles or ("registry_staff",)), **kw)
    )


def test_full_answer_from_all_four_sources_with_provenance(api, sandbox) -> None:
    person = deceased_taxpayer(sandbox)
    response = post(api, {"national_id": person.uin})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert {s: body["sources"][s]["status"] for s in SOURCES} == dict.fromkeys(SOURCES, "ok")
    assert body["partial"] is False
    head = body["household"]["head"]
    assert head["birth_date"] == person.birth_date.isoformat()
    assert head["identifiers"][0] == {
        "system": "national_id",
        "value": person.uin,
        "verified": True,
    }
    # The civil registry ranks first for vital facts: its death wins.
    assert head["person_status"] == "deceased"
    assert head["death_date"] == person.death_date.isoformat()
    chosen = {(p["field"], p["source"]) for p in body["provenance"] if p["selected"]}
    assert ("head.death_date", "civil_registry") in chosen
    assert ("admin_area_code", "gis") in chosen
    by_source = {p["source"] for p in body["provenance"]}
    assert by_source == set(SOURCES)
    for entry in body["provenance"]:
        assert set(entry) >= {"source", "field", "value", "retrieved_at"}
    household = body["household"]
    assert household["admin_area_code"].startswith("R")
    incomes = [a for a in household["attributes"] if a["name"] == "gross_income"]
    assert incomes and all(a["source"] == "tax" and a["value"] > 0 for a in incomes)
    assert {a["name"] for a in household["attributes"]} >= {"flood_risk", "poverty_rate"}
    assert body["elapsed_ms"] < body["deadline_ms"]


def test_only_the_asked_persons_data_is_returned(api, sandbox) -> None:
    person, area = living_taxpayer(sandbox, 1)
    body = post(api, {"national_id": person.national_id}).get_json()
    identifiers = [p["value"] for p in body["provenance"] if "identifiers" in p["field"]]
    assert identifiers and all(
        i["value"] == person.national_id for i in identifiers if i["system"] == "national_id"
    )
    assert body["household"]["admin_area_code"] == area
    assert body["sources"]["civil_registry"]["status"] == "not_found"


def test_a_source_slower_than_the_deadline_is_reported_and_the_rest_answers(api, sandbox) -> None:
    person, _ = living_taxpayer(sandbox, 2)
    requests.put(
        sandbox.url("national_id") + "/_admin/faults", json={"latency_ms": 4000}, timeout=5
    )
    started = time.monotonic()
    response = post(api, {"national_id": person.national_id, "deadline_seconds": 1.0})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.get_json()
    assert body["sources"]["national_id"]["status"] == "timeout"
    assert body["sources"]["tax"]["status"] == "ok"
    assert body["sources"]["gis"]["status"] == "ok"  # the tax address gave it a point
    assert body["partial"] is True
    assert elapsed < 1.0 + 0.3
    assert body["household"]["attributes"]


def test_a_source_that_is_down_is_an_error_not_a_failure(api, sandbox) -> None:
    person, _ = living_taxpayer(sandbox, 3)
    requests.put(sandbox.url("tax") + "/_admin/faults", json={"down": True}, timeout=5)
    response = post(api, {"national_id": person.national_id})
    assert response.status_code == 200
    body = response.get_json()
    assert body["sources"]["tax"]["status"] == "error"
    assert "http_503" in body["sources"]["tax"]["reason"]
    assert body["sources"]["national_id"]["status"] == "ok"
    assert body["sources"]["gis"]["status"] == "ok"  # the national ID's area code sufficed
    assert body["household"]["head"]["given_name"]


def test_invalid_national_id_is_refused_before_any_partner_is_called(api, sandbox) -> None:
    person, _ = living_taxpayer(sandbox, 0)
    good = person.national_id
    wrong_digit = good[:-1] + str((int(good[-1]) + 1) % 10)
    before = requests.get(sandbox.url("national_id") + "/_admin/faults", timeout=5).json()
    for bad in (wrong_digit, "12345", "0" + good[1:]):
        response = post(api, {"national_id": bad})
        assert response.status_code == 422 and response.mimetype == PROBLEM
        assert bad not in response.get_data(as_text=True)
    after = requests.get(sandbox.url("national_id") + "/_admin/faults", timeout=5).json()
    assert after["stats"]["requests"] == before["stats"]["requests"]
    assert post(api, {"national_id": good, "deadline_seconds": 60}).status_code == 400
    assert post(api, {"nid": good}).status_code == 400


def test_valid_but_unknown_id_is_not_found_everywhere(api, sandbox) -> None:
    known = {p.national_id for h in sandbox.households for p in h.members}
    body = next(
        str(n) for n in range(222222220, 222222999) if str(n) + verhoeff_digit(str(n)) not in known
    )
    unknown = body + verhoeff_digit(body)
    answer = post(api, {"national_id": unknown}).get_json()
    assert {s: answer["sources"][s]["status"] for s in SOURCES} == dict.fromkeys(
        SOURCES, "not_found"
    )
    assert answer["household"]["head"] is None and answer["provenance"] == []


def test_access_control(api, sandbox) -> None:
    person, area = living_taxpayer(sandbox, 0)
    body = {"national_id": person.national_id}
    no_token = api.post("/api/v1/prefill", json=body)
    assert no_token.status_code == 401 and no_token.mimetype == PROBLEM
    for role in ("auditor", "partner"):
        assert post(api, body, role).status_code == 403
    assert post(api, body, "admin").status_code == 200
    assert post(api, body, "field_worker", areas=(area[:3],)).status_code == 200
    other = "R09" if not area.startswith("R09") else "R08"
    refused = post(api, body, "field_worker", areas=(other,))
    assert refused.status_code == 403
    assert person.family_name not in refused.get_data(as_text=True)


def test_a_source_not_configured_is_named_in_a_503(api, sandbox) -> None:
    api.app_under_test.extensions[CONNECTORS_KEY] = connectors_for(sandbox, skip=("gis",))
    person, _ = living_taxpayer(sandbox, 0)
    response = post(api, {"national_id": person.national_id})
    assert response.status_code == 503 and response.mimetype == PROBLEM
    body = response.get_json()
    assert body["missing_sources"] == ["gis"] and "gis" in body["detail"]
    assert body["sources"]["gis"] == {"status": "error", "ms": 0.0, "reason": "not configured"}
    assert body["sources"]["national_id"]["status"] == "ok"
    assert body["household"]["head"]["given_name"]


def published(api: Any) -> list[Any]:
    """What the prefill's connectors handed to the ingest (shared by the four of them)."""
    connector = api.app_under_test.extensions[CONNECTORS_KEY]["national_id"]
    return list(connector.context.publisher.published)


def outbox_size(api: Any) -> int:
    from sqlalchemy import func, select

    from registry_core.models import OutboxEvent

    runtime = api.app_under_test.extensions["srhub_runtime"]
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def test_prefill_refused_403_applies_and_publishes_nothing(api, sandbox) -> None:
    """Finding of issue 17: a prefill answered 403 still published the partners' answers (300
    prefills wrote 1,140 history rows on one person). Refused or granted, repeated prefills
    now hand nothing to the ingest and change nothing in the registry."""
    person, area = living_taxpayer(sandbox, 2)
    body = {"national_id": person.national_id}
    other = "R09" if not area.startswith("R09") else "R08"
    events_before = outbox_size(api)
    for _ in range(5):
        refused = post(api, body, "field_worker", areas=(other,))
        assert refused.status_code == 403
        assert person.family_name not in refused.get_data(as_text=True)
    assert published(api) == []
    for _ in range(3):
        assert post(api, body, "registry_staff").status_code == 200
    assert published(api) == []  # a prefill proposes; registering the household writes
    assert outbox_size(api) == events_before


def test_prefill_area_decision_does_not_depend_on_which_partner_answers_first(api, sandbox):
    """Someone not registered: the national ID authority's area decides, every time."""
    person, area = living_taxpayer(sandbox, 1)
    body = {"national_id": person.national_id}
    region = area.split("-")[0]
    answers = [post(api, body, "field_worker", areas=(region,)).status_code for _ in range(6)]
    assert answers == [200] * 6
    sibling = region + "0"  # R010 is not inside R01: segments, not string prefixes
    assert post(api, body, "field_worker", areas=(sibling,)).status_code == 403


def test_prefill_registered_person_is_judged_by_the_registry_before_any_partner(api, sandbox):
    """A person the registry holds is judged by their household's area, before any partner is
    asked: a worker of that area is served whatever the partners say, another is refused."""
    person, area = living_taxpayer(sandbox, 3)
    registered_in = "R77-D01" if not area.startswith("R77") else "R78-D01"
    household = {
        "admin_area_code": registered_in,
        "members": [
            {
                "given_name": person.given_name,
                "family_name": person.family_name,
                "sex": person.sex,
                "birth_date": person.birth_date.isoformat(),
                "relationship": "head",
                "identifiers": [{"system": "national_id", "value": person.national_id}],
            }
        ],
    }
    created = api.post("/api/v1/households", json=household, headers=api.auth("registry_staff"))
    assert created.status_code == 201, created.get_json()
    region = area.split("-")[0]
    refused = post(api, {"national_id": person.national_id}, "field_worker", areas=(region,))
    assert refused.status_code == 403  # the partners would place them here; the registry not
    assert "sources" not in (refused.get_json() or {})
    served = post(
        api, {"national_id": person.national_id}, "field_worker", areas=(registered_in[:3],)
    )
    assert served.status_code == 200, served.get_json()
