"""User stories from the seed, end to end against the live sandbox.

- The civil registry registers deaths and births; the hub hears of them (signed webhooks and
  the pull feed, both on), and the registry marks each registered person deceased exactly once
  and adds each newborn to the mother's household.
- Registry staff ask the national ID authority to verify a person while the authority is down:
  the request is retried, dead-lettered with its reason, and replayed by an operator once the
  authority is back; then the verification lands, once.
"""

from __future__ import annotations

import time
from datetime import date

import requests
from sqlalchemy import select

from hub.broker import connect
from hub.deadletters import list_dead_letters, replay
from hub.deadletters import select as select_letters
from registry_core.models import OutboxEvent
from sandbox_mocks.population import iter_vital_events
from tests.scenarios.conftest import wait_for


def outbox(hub, routing_key: str) -> list[OutboxEvent]:
    with hub.runtime.sessions() as session:
        return list(
            session.scalars(select(OutboxEvent).where(OutboxEvent.routing_key == routing_key))
        )


def registered(hub, person) -> dict | None:
    for system, value in (
        ("national_id", person.national_id),
        ("birth_registration", person.birth_registration_number),
    ):
        if value:
            found = hub.registry.find_person_by_identifier(system, value)
            if found:
                return found
    return None


def test_registered_deaths_and_births_reach_the_registry_exactly_once(live_hub):
    hub = live_hub
    events = list(iter_vital_events(42, 600, date(2025, 1, 1), 365, as_of=date(2025, 1, 1)))
    deaths = [e for e in events if e.kind == "death" and registered(hub, e.person)]
    births = [e for e in events if e.kind == "birth"]
    assert deaths and births
    advance = requests.post(
        f"{hub.mock('civil_registry')}/_admin/clock/advance", json={"days": 366}, timeout=10
    )
    assert advance.ok

    def all_deceased() -> bool:
        return all(registered(hub, e.person)["is_deceased"] for e in deaths)

    wait_for(all_deceased, timeout=90, what="every registered death applied")
    for event in deaths:
        person = registered(hub, event.person)
        assert person["death_date"] == event.event_date.isoformat()
        assert person["memberships"][-1]["end_reason"] == "death"
    # The feed runs beside the webhooks, so each death arrives twice or more: one event each.
    wait_for(lambda: len(outbox(hub, "person.died")) >= len(deaths), timeout=30)
    died = outbox(hub, "person.died")
    assert sorted(e.subject for e in died) == sorted(
        f"person/{registered(hub, e.person)['id']}" for e in deaths
    )
    born = wait_for(lambda: outbox(hub, "person.born"), timeout=30, what="a birth applied")
    for event in born:
        household = hub.registry.get_household(event.data["household_id"])
        member_ids = {m["id"] for m in household["members"]}
        assert {event.data["person_id"], event.data["mother_person_id"]} <= member_ids
    assert len({e.subject for e in born}) == len(born)
    status = hub.host.statuses()["civil_registry"]
    assert status["state"] == "up"


def test_verification_during_an_outage_is_dead_lettered_then_replayed(live_hub):
    hub = live_hub
    households, _ = hub.registry.list_households(limit=50)
    person = next(
        m
        for h in households
        for m in h["members"]
        if any(i["system"] == "national_id" for i in m.get("identifiers", []))
    )
    hub.fault("national_id", down=True)
    queued = requests.post(
        f"{hub.url}/api/v1/persons/verifications",
        json={"person_ids": [person["id"]], "consent_obtained": True},
        headers=hub.token("registry_staff"),
        timeout=10,
    )
    assert queued.status_code == 202, queued.text
    broker = connect(hub.settings)
    try:
        letters = wait_for(
            lambda: [
                letter
                for letter in list_dead_letters(broker, wait=0.2)
                if letter.routing_key == "registry.verification_requested"
            ],
            timeout=90,
            what="the verification request dead-lettered",
        )
        assert letters[0].attempts >= 1 and letters[0].reason
        assert hub.registry.get_person(person["id"])["verification"]["status"] == "unverified"
        status = hub.host.statuses()["national_id"]
        assert status["state"] in ("down", "degraded") and status["last_error"]

        hub.heal("national_id")
        time.sleep(1.2)  # the connector's circuit breaker cool-down (1 s in these tests)
        outcome = replay(broker, select_letters(routing_key="registry.verification_requested"))
        assert len(outcome.selected) == len(letters)
    finally:
        broker.close()

    def checked() -> str | None:
        state = hub.registry.get_person(person["id"])["verification"]["status"]
        return state if state != "unverified" else None

    final = wait_for(checked, timeout=60, what="the verification applied after the replay")
    assert final in ("verified", "failed")
    kinds = outbox(hub, "person.verified") + outbox(hub, "person.verification_failed")
    assert [e.subject for e in kinds] == [f"person/{person['id']}"]
