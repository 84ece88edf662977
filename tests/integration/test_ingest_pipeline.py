"""The ingest worker end to end on the embedded broker (SQLite and PostgreSQL): raw civil
registry deliveries and tax rows from the sandbox's own renderers -> sr.inbound -> mapping ->
registry. Births join the mother's household, deaths close memberships, incomes land on the
household, and a bad record is dead-lettered with its reason while the good ones around it land.
Everything is published twice: the effect happens once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.base.envelope import raw_event
from connectors.base.records import RawRecord
from hub.broker import Message, connect
from hub.broker.base import EXCHANGE_INBOUND, H_ERROR_CLASS, H_REASON, QUEUE_DEAD
from hub.pipeline.ingest import IngestServices, ingest_handlers
from hub.pipeline.routes import default_routes
from hub.sandbox_seed import seed_registry
from hub.workers.middleware import OutcomeCounter
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import INGEST_QUEUE
from registry_core.db import make_session_factory
from registry_core.models import OutboxEvent, Person
from sandbox_mocks.civil_registry.fhir_bundles import build_bundle
from sandbox_mocks.population import iter_households, iter_vital_events
from standards.cloudevents import to_json_bytes
from tests.integration.pipeline_support import run_until_handled

SEED, PEOPLE = 11, 400
START = date(2025, 1, 1)


def delivery(bundle: dict[str, Any], topic: str) -> dict[str, Any]:
    """OpenCRVS's webhook body: ``id`` is the subscription's, the Bundle in event.context."""
    return {
        "timestamp": "2025-06-01T00:00:00.000Z",
        "id": "5f0e3c1a-webhook-subscription",
        "event": {"hub": {"topic": topic}, "context": [bundle]},
    }


def message(connector: str, record: RawRecord) -> Message:
    event = raw_event(connector, record, time=datetime(2025, 6, 1, tzinfo=UTC))
    return Message(to_json_bytes(event), f"{connector}.{record.record_type}", event["id"])


@pytest.fixture
def world(registry):
    households = list(iter_households(SEED, PEOPLE))
    assert seed_registry(registry, households) > 50
    events = list(iter_vital_events(SEED, PEOPLE, start=START, days=365))
    births = [e for e in events if e.kind == "birth"]
    deaths = [e for e in events if e.kind == "death"]
    assert births and deaths
    return births, deaths


def test_births_deaths_and_income_flow_in_once_and_bad_records_are_dead_lettered(
    registry, db_engine, db_url, world
):
    births, deaths = world
    sessions = make_session_factory(db_engine)
    broker = connect(db_url)
    broker.declare_topology([INGEST_QUEUE])
    messages = [
        message(
            "civil_registry",
            RawRecord(
                "birth",
                delivery(build_bundle(e), "BIRTH_REGISTERED"),
                source_id=e.registration_number,
            ),
        )
        for e in births
    ] + [
        message(
            "civil_registry",
            RawRecord(
                "death",
                delivery(build_bundle(e), "DEATH_REGISTERED"),
                source_id=e.registration_number,
            ),
        )
        for e in deaths
    ]
    from sandbox_mocks.tax.records import income_row

    earner, income = next(
        (p, inc)
        for h in iter_households(SEED, PEOPLE)
        for inc in h.incomes
        for p in h.members
        if p.tax_id == inc.tax_id and p.national_id and p.death_date is None
    )
    row = dict(income_row(income, earner, "XTS"), RECORD_NO="1")
    bad = delivery(build_bundle(births[0]), "BIRTH_REGISTERED")
    bad["event"]["context"][0]["entry"] = []  # a bundle with nothing in it
    messages.append(message("tax", RawRecord("income_row", row, source_id="f1:2")))
    messages.append(message("civil_registry", RawRecord("birth", bad, source_id="broken")))
    broker.publish(EXCHANGE_INBOUND, messages)
    broker.publish(EXCHANGE_INBOUND, messages)  # at-least-once upstream: every record twice

    runtime = ConsumerRuntime(
        "ingest",
        INGEST_QUEUE,
        lambda: connect(db_url),
        sessions,
        ingest_handlers(IngestServices(registry), default_routes()),
        retry=RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.01),
        receive_timeout=0.1,
        middleware=[outcomes := OutcomeCounter()],
    )
    run_until_handled(runtime, 2 * len(messages), broker)

    with sessions() as session:
        died_events = session.scalars(
            select(OutboxEvent).where(OutboxEvent.routing_key == "person.died")
        ).all()
        born_events = session.scalars(
            select(OutboxEvent).where(OutboxEvent.routing_key == "person.born")
        ).all()
        deceased = session.scalar(
            select(func.count()).select_from(Person).where(Person.is_deceased.is_(True))
        )
    # Every registered person who died is deceased, once; each applied birth emitted once.
    assert died_events and len(died_events) == deceased
    assert len({e.subject for e in died_events}) == len(died_events)
    assert born_events and len({e.subject for e in born_events}) == len(born_events)
    for event in born_events:
        child = registry.get_person(event.data["person_id"])
        household = registry.get_household(event.data["household_id"])
        assert any(m["id"] == child["id"] for m in household["members"])
        assert event.data["mother_person_id"] in {m["id"] for m in household["members"]}
    for event in died_events:
        person = registry.get_person(event.data["person_id"])
        assert person["is_deceased"] and person["memberships"][-1]["end_reason"] == "death"
    found = registry.find_person_by_identifier("national_id", earner.national_id)
    household = registry.get_household(found["memberships"][-1]["household_id"])
    incomes = [a for a in household["attributes"] if a["domain"] == "income"]
    assert sorted((a["name"], a["value"], a["period"]) for a in incomes) == [
        ("formal_employment", True, str(income.year)),
        ("gross_income", income.amount, str(income.year)),
    ]

    dead = broker.open_consumer(QUEUE_DEAD, prefetch=10)
    letters = []
    while (d := dead.receive(0.5)) is not None:
        letters.append(d)
        dead.ack(d)
    dead.close()
    broker.close()
    # Only the broken bundle (published twice, so dead-lettered twice) is dead; the good
    # records around it all landed.
    assert {d.message.headers[H_ERROR_CLASS] for d in letters} == {"MappingError"}
    assert {d.message.message_id for d in letters} == {messages[-1].message_id}
    assert "civil_registry_birth" in letters[0].message.headers[H_REASON]
    # The middleware saw what the handlers reported: records applied (each once, although
    # every record came twice: duplicates run no handler), and the mapping failure of both
    # copies of the broken bundle.
    assert outcomes.outcomes["applied"] >= 1
    assert sum(outcomes.outcomes.values()) == len(messages) - 1
    assert set(outcomes.failures) == {"MappingError"} and outcomes.failures["MappingError"] >= 2


def test_two_configured_tax_connectors_both_ingest(registry, db_engine, db_url, world, tmp_path):
    """Two tax authorities as two instances of the one tax connector (``kind = "tax"``): the
    routes come from the connector's declaration, so both instances' rows reach the registry
    (before, the second's were dead-lettered for want of a route), asserted as "tax"."""
    from connectors.base import FileDropRunner
    from hub.connectors_host import ConnectorHost
    from hub.settings import load_settings
    from registry_core.models import SocioEconomicAttribute
    from sandbox_mocks.tax.drops import DropRequest, TaxDropFolder
    from sandbox_mocks.tax.records import rows_by_period

    period, rows = next(iter(rows_by_period(iter_households(SEED, PEOPLE)).items()))
    # Two authorities, two sets of taxpayers (split by tax ID, so no one is in both files).
    halves = {
        "tax_north": [r for r in rows if int(r["TAXPAYER_TIN"]) % 2 == 0],
        "tax_south": [r for r in rows if int(r["TAXPAYER_TIN"]) % 2 == 1],
    }
    configs = {}
    for (name, part), fmt in zip(halves.items(), ("csv", "xml"), strict=True):
        folder = tmp_path / name
        TaxDropFolder(folder, {period: part}).drop_now(
            DropRequest(fmt=fmt, period=period, faults=(), bad_rows={})
        )
        configs[name] = {"kind": "tax", "drop_folder": str(folder), "batch_size": 50}
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False)
    host = ConnectorHost(settings, db_engine).build(configs)
    try:
        assert host.problems == {}
        assert sorted(host.routes) == ["tax_north.income_row", "tax_south.income_row"]
        published = 0
        for name in configs:
            FileDropRunner(host.connectors[name]).run_once()
            published += host.connectors[name].status.snapshot()["counts"]["records_published"]
    finally:
        host.stop()
    assert published == len(rows)

    broker = connect(settings)  # the host's publisher sealed the bodies with the hub's key
    # An instance nobody configured: its record has no route, and says so.
    stray = message("tax_west", RawRecord("income_row", rows[0], source_id="west:1"))
    broker.publish(EXCHANGE_INBOUND, [stray])
    runtime = ConsumerRuntime(
        "ingest",
        INGEST_QUEUE,
        lambda: connect(settings),
        make_session_factory(db_engine),
        ingest_handlers(IngestServices(registry), host.routes),
        retry=RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.01),
        receive_timeout=0.1,
    )
    assert run_until_handled(runtime, published + 1, broker)["dead_lettered"] == 1
    dead = broker.open_consumer(QUEUE_DEAD, prefetch=10)
    letter = dead.receive(5)
    assert letter is not None and dead.receive(0.5) is None
    dead.ack(letter)
    dead.close()
    broker.close()
    assert letter.message.message_id == stray.message_id
    assert letter.message.headers[H_ERROR_CLASS] == "NoRoute"
    assert "no ingest route for tax_west.income_row" in letter.message.headers[H_REASON]

    def incomes(part: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        """Tax IDs of ``part`` that are registered, and those with their income in the
        registry, asserted by "tax"."""
        found = {}
        for row in part:
            person = registry.find_person_by_identifier("tax_id", row["TAXPAYER_TIN"])
            if person is not None:
                found[uuid.UUID(person["id"])] = row["TAXPAYER_TIN"]
        with make_session_factory(db_engine)() as session:
            with_income = set(
                session.scalars(
                    select(SocioEconomicAttribute.person_id).where(
                        SocioEconomicAttribute.source_system == "tax",
                        SocioEconomicAttribute.name == "gross_income",
                        SocioEconomicAttribute.person_id.in_(list(found)),
                    )
                )
            )
        return set(found.values()), {tin for pid, tin in found.items() if pid in with_income}

    # Every registered taxpayer of each file has their income.
    for name, part in halves.items():
        registered, landed = incomes(part)
        assert registered and landed == registered, name
