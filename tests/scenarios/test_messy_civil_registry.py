"""User story: the civil registry sends bundles as messy as real OpenCRVS ones, and the
registry still gets every birth and death right.

The sandbox's civil registry runs with every bundle messy (empty strings, other reference
forms, dates without times), a quarter of them without a registration number yet (tracking id
only) and a quarter trimmed the way OpenCRVS trims them for a webhook client with limited
permissions (no Composition, no father, no place). Deliveries come by webhook and by the feed,
so each event arrives at least twice. Nothing may be dead-lettered; each death marks the right
person with the right date and ends the membership on it; each birth makes one child in the
mother's household, found again by its registration number or (provisional) tracking id.
"""

from __future__ import annotations

from datetime import date

import pytest
import requests
from sqlalchemy import select

from hub.broker import connect
from hub.deadletters import list_dead_letters
from registry_core.models import OutboxEvent
from sandbox_mocks.civil_registry.fhir_bundles import build_bundle, tracking_id, variant
from sandbox_mocks.population import iter_vital_events
from tests.scenarios.conftest import wait_for

SEED, PEOPLE = 42, 600


def outbox(hub, routing_key: str) -> list[OutboxEvent]:
    with hub.runtime.sessions() as session:
        return list(
            session.scalars(select(OutboxEvent).where(OutboxEvent.routing_key == routing_key))
        )


def registered(hub, person) -> dict | None:
    """The registry's person for a person of the synthetic world, by their ID numbers."""
    for system, value in (
        ("national_id", person.national_id),
        ("birth_registration", person.birth_registration_number),
    ):
        found = value and hub.registry.find_person_by_identifier(system, value)
        if found:
            return found
    return None


def child_of(hub, event) -> dict | None:
    """The child a birth made: by its registration number, else by its tracking id."""
    return hub.registry.find_person_by_identifier(
        "birth_registration", event.registration_number
    ) or hub.registry.find_person_by_identifier("crvs_tracking_id", tracking_id(event))


@pytest.mark.slow
@pytest.mark.sandbox(civil_registry_messy_rate=1.0)
# One backend: the registry's handling is run on SQLite and PostgreSQL by
# tests/integration/test_civil_registry_bundles.py; this story is about the messy partner.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_messy_real_world_bundles_still_give_the_right_births_and_deaths(live_hub):
    hub = live_hub
    events = list(iter_vital_events(SEED, PEOPLE, date(2025, 1, 1), 365, as_of=date(2025, 1, 1)))
    deaths = [e for e in events if e.kind == "death" and registered(hub, e.person)]
    births = [e for e in events if e.kind == "birth" and registered(hub, e.mother)]
    bends = {e.registration_number: variant(build_bundle(e), SEED) for e in events}
    assert any("provisional" in bends[e.registration_number] for e in deaths + births)
    assert any("scoped" in bends[e.registration_number] for e in deaths + births)
    advance = requests.post(
        f"{hub.mock('civil_registry')}/_admin/clock/advance", json={"days": 366}, timeout=10
    )
    assert advance.ok

    wait_for(
        lambda: all(registered(hub, e.person)["is_deceased"] for e in deaths),
        timeout=90,
        what="every registered death applied",
    )
    for event in deaths:
        person = registered(hub, event.person)
        assert person["death_date"] == event.event_date.isoformat()
        ended = person["memberships"][-1]
        assert (ended["end_reason"], ended["end_date"]) == ("death", event.event_date.isoformat())
        ids = {i["system"] for i in person["identifiers"]}
        provisional = "provisional" in bends[event.registration_number]
        assert ("death_registration" in ids) is not provisional
    wait_for(lambda: len(outbox(hub, "person.died")) >= len(deaths), timeout=30)
    died = outbox(hub, "person.died")
    assert sorted(e.subject for e in died) == sorted(
        f"person/{registered(hub, e.person)['id']}" for e in deaths
    )

    # Births whose mother the registry knows: one child each, in her household.
    wait_for(lambda: all(child_of(hub, e) for e in births), timeout=60, what="births applied")
    born = outbox(hub, "person.born")
    assert len({e.subject for e in born}) == len(born)
    for event in births:
        child = child_of(hub, event)
        mother = registered(hub, event.mother)
        household_id = child["memberships"][0]["household_id"]
        assert household_id == mother["memberships"][-1]["household_id"]
        assert child["birth_date"] == event.event_date.isoformat()
        [news] = [e for e in born if e.subject == f"person/{child['id']}"]
        shape = bends[event.registration_number]
        assert news.data.get("provisional", False) is ("provisional" in shape)
        assert ("place_admin_area_code" in news.data) is ("scoped" not in shape)

    broker = connect(hub.settings)
    try:
        letters = [
            letter
            for letter in list_dead_letters(broker, wait=0.2)
            if letter.routing_key.startswith("civil_registry.")
        ]
    finally:
        broker.close()
    assert letters == [], [letter.reason for letter in letters]
