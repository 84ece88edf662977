"""Real-shaped OpenCRVS births and deaths through the ingest worker into the registry.

Each fixture Bundle (``tests/fixtures/opencrvs``) travels as OpenCRVS delivers it
(``{"timestamp", "id", "event": {"hub": {"topic"}, "context": [Bundle]}}``) as a raw record on
the embedded broker (SQLite and PostgreSQL), is mapped by the shipped specs and applied by the
registry: births join the mother's household with the declared facts, deaths mark the right
person with the right date and end the membership on that date, and a provisional record
followed by its registration makes one person and one event.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base.envelope import raw_event
from connectors.base.records import RawRecord
from hub.broker import Message, connect
from hub.broker.base import EXCHANGE_INBOUND, QUEUE_DEAD
from hub.pipeline.ingest import IngestServices, ingest_handlers
from hub.pipeline.routes import default_routes
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import INGEST_QUEUE
from registry_core.db import make_session_factory
from registry_core.models import OutboxEvent
from registry_core.service import Source
from standards.cloudevents import to_json_bytes
from tests.integration.pipeline_support import run_until_handled

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "opencrvs"
TOPICS = {"birth": "BIRTH_REGISTERED", "death": "DEATH_REGISTERED"}


def bundle(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def member(given: str, family: str, sex: str, born: str, relationship: str, nid: str) -> dict:
    return {
        "given_name": given,
        "family_name": family,
        "sex": sex,
        "birth_date": born,
        "relationship": relationship,
        "identifiers": [{"system": "national_id", "value": nid}],
    }


@pytest.fixture
def households(registry) -> dict[str, dict[str, Any]]:
    """The people the fixtures are about, as a field survey registered them."""
    late = Source("field_survey", "form-h1", datetime(2026, 11, 1, 9, tzinfo=UTC))
    early = Source("field_survey", "form-h2", datetime(2026, 1, 5, 9, tzinfo=UTC))
    juma = registry.register_household(
        {
            "admin_area_code": "R03-D01-L002",
            "address": "Plot 7, Mwanza Road, Mnarani",
            "members": [
                member("Musa", "Juma", "male", "1990-07-01", "head", "7316502847"),
                member("Halima", "Juma", "female", "1994-03-12", "spouse", "4820193755"),
                member("Juma", "Bakari", "male", "1951-04-02", "parent", "2908471630"),
            ],
        },
        late,  # registered after Juma Bakari died: his death predates his membership's start
    ).record
    banda = registry.register_household(
        {
            "admin_area_code": "R03-D01-L004",
            "members": [
                member("Grace", "Banda", "female", "1998-05-30", "head", "6152049374"),
                member("Zawadi", "Said", "female", "1940-10-30", "parent", "3749156082"),
            ],
        },
        early,
    ).record
    mwita = registry.register_household(
        {
            "admin_area_code": "R03-D01-L002",
            "address": "Shamba 12",
            "members": [
                member("Rehema", "Mwita", "female", "2001-12-09", "head", "1937582644"),
                member("Amani", "Kitwana", "male", "1979-06-11", "other_relative", "8264710356"),
            ],
        },
        early,
    ).record
    return {"juma": juma, "banda": banda, "mwita": mwita}


class Pipeline:
    """Publish deliveries to sr.inbound and run the ingest worker until they are handled."""

    def __init__(self, registry, db_engine, db_url: str) -> None:
        self.handlers = ingest_handlers(IngestServices(registry), default_routes())
        self.registry = registry
        self.url = db_url
        self.sessions = make_session_factory(db_engine)
        self.sent = 0

    def deliver(self, *items: tuple[str, dict[str, Any]]) -> None:
        messages = []
        for kind, payload in items:
            delivery = {
                "timestamp": "2026-11-20T08:00:00.000Z",
                "id": "0d5e7c2a-webhook-of-the-hub",
                "event": {"hub": {"topic": TOPICS[kind]}, "context": [payload]},
            }
            record = RawRecord(kind, delivery, source_id=f"delivery-{self.sent}")
            self.sent += 1
            event = raw_event("civil_registry", record, time=datetime(2026, 11, 20, tzinfo=UTC))
            messages.append(Message(to_json_bytes(event), f"civil_registry.{kind}", event["id"]))
        broker = connect(self.url)
        broker.declare_topology([INGEST_QUEUE])
        broker.publish(EXCHANGE_INBOUND, messages)
        runtime = ConsumerRuntime(
            "ingest",
            INGEST_QUEUE,
            lambda: connect(self.url),
            self.sessions,
            self.handlers,
            retry=RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.05, jitter=0.01),
            receive_timeout=0.1,
        )
        run_until_handled(runtime, len(messages))
        dead = broker.open_consumer(QUEUE_DEAD, prefetch=10)
        letters = []
        while (d := dead.receive(0.2)) is not None:
            letters.append(d)
            dead.ack(d)
        dead.close()
        broker.close()
        assert not letters, [d.message.headers for d in letters]

    def events(self, routing_key: str) -> list[OutboxEvent]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.routing_key == routing_key)
                    .order_by(OutboxEvent.sequence)
                )
            )


@pytest.fixture
def pipeline(registry, db_engine, db_url) -> Pipeline:
    return Pipeline(registry, db_engine, db_url)


def by_nid(registry, value: str) -> dict[str, Any]:
    found = registry.find_person_by_identifier("national_id", value)
    assert found is not None
    return found


def ids_of(person: dict[str, Any]) -> dict[str, str]:
    return {i["system"]: i["value"] for i in person["identifiers"]}


def facts_of(registry, person_id: str) -> dict[str, dict[str, Any]]:
    return {row["field"]: row for row in registry.provenance("person", person_id)}


# ---------------------------------------------------------------------------- births


def test_births_join_the_mothers_household_with_the_declared_facts(registry, pipeline, households):
    pipeline.deliver(
        ("birth", bundle("birth_registered_full")),
        ("birth", bundle("birth_webhook_scoped")),
        ("birth", bundle("birth_private_home")),
    )
    born = {e.data["mother_person_id"]: e for e in pipeline.events("person.born")}
    assert len(born) == 3

    halima = by_nid(registry, "4820193755")
    event = born[halima["id"]]
    assert event.data["household_id"] == households["juma"]["id"]
    assert event.data["place_admin_area_code"] == "R03-D01"
    assert "provisional" not in event.data
    assert event.data["source"] == {"system": "civil_registry", "record_id": "2026B7K2QWE"}
    neema = registry.get_person(event.data["person_id"])
    assert (neema["given_name"], neema["family_name"], neema["birth_date"], neema["sex"]) == (
        "Neema",
        "Juma",
        "2026-10-14",
        "female",
    )
    assert ids_of(neema) == {
        "birth_registration": "2026B7K2QWE",
        "crvs_tracking_id": "B7K2QWE",
        "crvs_draft_id": "D7EB5E3015F945B9935B6D53FCBE24CD",
    }
    assert neema["memberships"] == [
        {
            "household_id": households["juma"]["id"],
            "relationship": "child",
            "start_date": "2026-10-14",
        }
    ]
    # The declaration's other facts are provenance of the child; identifiers in them sealed.
    facts = facts_of(registry, neema["id"])
    assert facts["birth_place"]["value"] == {
        "admin_area_code": "R03-D01",
        "type": "health_facility",
        "name": "Mnarani Mother and Child Clinic",
    }
    assert facts["informant"]["value"]["relationship"] == "mother"
    father = facts["father"]["value"]
    assert (father["given_name"], father["family_name"]) == ("Musa", "Juma")
    assert [i["system"] for i in father["identifiers"]] == ["national_id"]
    assert "7316502847" not in json.dumps(facts) and "4820193755" not in json.dumps(facts)
    assert facts["father"]["source_record_id"] == "2026B7K2QWE"
    # The surveyed address stays; the civil registry's is kept beside it as provenance.
    juma = registry.get_household(households["juma"]["id"])
    assert juma["address"] == "Plot 7, Mwanza Road, Mnarani"
    addresses = [r for r in registry.provenance("household", juma["id"]) if r["field"] == "address"]
    assert {(r["source_system"], r["current"]) for r in addresses} == {
        ("field_survey", True),
        ("civil_registry", False),
    }
    assert facts_of(registry, halima["id"])["residence"]["value"]["admin_area_code"] == (
        "R03-D01-L002"
    )

    # A bundle trimmed to a webhook client's permissions: no Composition, no father, no place.
    grace = by_nid(registry, "6152049374")
    tadala = registry.get_person(born[grace["id"]].data["person_id"])
    assert tadala["given_name"] == "Tadala"
    assert "place_admin_area_code" not in born[grace["id"]].data
    banda = registry.get_household(households["banda"]["id"])
    assert banda["address"] == "14, Lilongwe Street, Kanengo"  # the registry had none
    assert {m["given_name"] for m in banda["members"]} == {"Grace", "Zawadi", "Tadala"}

    rehema = by_nid(registry, "1937582644")
    home = born[rehema["id"]]
    assert home.data["place_admin_area_code"] == "R03-D01-L002"
    baraka = registry.get_person(home.data["person_id"])
    assert baraka["memberships"][0]["relationship"] == "child"
    informant = facts_of(registry, baraka["id"])["informant"]["value"]
    assert informant["relationship"] == "grandmother"
    # The grandmother is provenance, not a new person of the registry.
    assert registry.find_person_by_identifier("national_id", "4472160931") is None
    assert registry.find_person_by_identifier("national_id", "6029384710") is None


def test_a_provisional_birth_then_its_registration_make_one_child_and_one_event(
    registry, pipeline, households
):
    pipeline.deliver(("birth", bundle("birth_tracking_only")))
    [first] = pipeline.events("person.born")
    assert first.data["provisional"] is True
    assert first.data["source"]["record_id"] == "B7K2QWE"
    child_id = first.data["person_id"]
    assert "birth_registration" not in ids_of(registry.get_person(child_id))

    pipeline.deliver(("birth", bundle("birth_registered_full")))
    pipeline.deliver(("birth", bundle("birth_registered_full") | {"id": "a-feed-copy"}))

    assert [e.data["person_id"] for e in pipeline.events("person.born")] == [child_id]
    assert len(pipeline.events("household.member_added")) == 1
    found = registry.find_person_by_identifier("birth_registration", "2026B7K2QWE")
    assert found["id"] == child_id
    updates = [
        e for e in pipeline.events("household.updated") if e.data.get("person_id") == child_id
    ]
    assert [u.data["changed_fields"] for u in updates] == [["person.identifiers"]]
    assert updates[0].data["source"]["record_id"] == "2026B7K2QWE"
    household = registry.get_household(households["juma"]["id"])
    assert [m["given_name"] for m in household["members"]].count("Neema") == 1
    # The registered record's facts joined the provisional one's.
    records = {
        r["source_record_id"]
        for r in registry.provenance("person", child_id)
        if r["field"] == "birth_date"
    }
    assert records == {"B7K2QWE", "2026B7K2QWE"}
    places = [r for r in registry.provenance("person", child_id) if r["field"] == "birth_place"]
    assert [p["source_record_id"] for p in places] == ["2026B7K2QWE"]  # none while provisional


# ---------------------------------------------------------------------------- deaths


def test_deaths_mark_the_right_person_and_end_the_membership_on_the_date_of_death(
    registry, pipeline, households
):
    pipeline.deliver(
        ("death", bundle("death_registered_full")), ("death", bundle("death_webhook_scoped"))
    )
    died = {e.data["person_id"]: e for e in pipeline.events("person.died")}
    assert len(died) == 2

    juma = by_nid(registry, "2908471630")
    assert juma["is_deceased"] and juma["death_date"] == "2026-09-20"
    # Registered on 2026-11-01, dead since 2026-09-20: the membership ends on the date of
    # death, not on the day the news was processed; the interval is empty.
    assert juma["memberships"] == [
        {
            "household_id": households["juma"]["id"],
            "relationship": "parent",
            "start_date": "2026-11-01",
            "end_date": "2026-09-20",
            "end_reason": "death",
        }
    ]
    event = died[juma["id"]]
    assert (event.data["death_date"], event.data["place_admin_area_code"]) == (
        "2026-09-20",
        "R03-D01",
    )
    assert event.data["source"]["record_id"] == "2026D4TR8ZX"
    assert ids_of(juma)["death_registration"] == "2026D4TR8ZX"
    assert ids_of(juma)["crvs_tracking_id"] == "D4TR8ZX"
    facts = facts_of(registry, juma["id"])
    assert facts["death_place"]["value"]["name"] == "Kisiwa District Hospital"
    assert facts["informant"]["value"]["relationship"] == "spouse"
    assert "5583027164" not in json.dumps(facts)
    removed = [
        e for e in pipeline.events("household.member_removed") if e.data["person_id"] == juma["id"]
    ]
    assert [r.data["end_date"] for r in removed] == ["2026-09-20"]

    zawadi = by_nid(registry, "3749156082")
    assert zawadi["death_date"] == "2026-10-05"
    assert zawadi["memberships"][0]["end_date"] == "2026-10-05"
    banda = registry.get_household(households["banda"]["id"])
    assert [m["given_name"] for m in banda["members"]] == ["Grace"]


def test_a_provisional_death_then_its_registration_emit_one_person_died(
    registry, pipeline, households
):
    pipeline.deliver(("death", bundle("death_tracking_only")))
    [first] = pipeline.events("person.died")
    assert first.data["provisional"] is True
    amani = by_nid(registry, "8264710356")
    assert amani["death_date"] == "2026-08-03"

    registered = bundle("death_tracking_only")
    task = next(
        e["resource"] for e in registered["entry"] if e["resource"]["resourceType"] == "Task"
    )
    task["identifier"].append(
        {"system": "http://opencrvs.org/specs/id/death-registration-number", "value": "2026DX3RT6Y"}
    )
    task["businessStatus"]["coding"][0]["code"] = "REGISTERED"
    patient = next(
        e["resource"] for e in registered["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["deceasedDateTime"] = "2026-08-02"  # the registrar corrected the date
    pipeline.deliver(("death", registered))
    pipeline.deliver(("death", copy.deepcopy(registered) | {"id": "a-feed-copy"}))

    assert [e.data["person_id"] for e in pipeline.events("person.died")] == [amani["id"]]
    assert len(pipeline.events("household.member_removed")) == 1
    amani = registry.get_person(amani["id"])
    assert ids_of(amani)["death_registration"] == "2026DX3RT6Y"
    assert amani["death_date"] == "2026-08-02"
    assert amani["memberships"][0]["end_date"] == "2026-08-02"  # moved with the date
