"""Replay: OpenCRVS sends one event more than once, and the registry changes once.

OpenCRVS re-sends the same registered event in several ways: its queue repeats a delivery whose
connection broke (the same bytes), and every subscription of the hub's client delivers every
event (the same Bundle, another ``id`` and ``timestamp``; OpenCRVS never merges
subscriptions). Here the same death, the same birth of a registered mother and the same birth
of a mother the registry does not know are each posted three times (twice the same bytes, once
through "another subscription") to the live hub's webhook, signed as OpenCRVS signs, and go
through the real pipeline (broker, ingest worker, registry). The registry must show one death
(one ``person.died``), one child, one review entry, and no dead letter at all.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select

from connectors.base.webhooks import opencrvs_signature
from hub.broker import connect
from hub.deadletters import list_dead_letters
from registry_core.models import OutboxEvent
from sandbox_mocks.civil_registry.fhir_bundles import build_bundle
from sandbox_mocks.civil_registry.webhooks import js_iso
from sandbox_mocks.population import iter_vital_events
from standards.identifiers import verhoeff_check_digit
from tests.scenarios.conftest import wait_for

MOCK_START = date(2025, 1, 1)
LATER = date(2025, 2, 1)  # the mock's clock stays at its start: these events reach us only here


def outbox(hub: Any, routing_key: str) -> list[OutboxEvent]:
    with hub.runtime.sessions() as session:
        return list(
            session.scalars(select(OutboxEvent).where(OutboxEvent.routing_key == routing_key))
        )


def registered(hub: Any, person: Any) -> dict[str, Any] | None:
    if person is None or not person.national_id:
        return None
    return hub.registry.find_person_by_identifier("national_id", person.national_id)


def copies(bundle: dict[str, Any], topic: str) -> list[bytes]:
    """Three deliveries of one event: a first one, its exact repeat, and the same event through
    a second subscription of the same client (another webhook id, a later timestamp)."""

    def body(webhook_id: str, stamp: str) -> bytes:
        payload = {
            "timestamp": stamp,
            "id": webhook_id,
            "event": {"hub": {"topic": topic}, "context": [bundle]},
        }
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    # Sent now: the connector refuses a delivery whose signed timestamp is outside its window.
    sent = datetime.now(UTC)
    first = body("0b6a1c2e-hook-one", js_iso(sent))
    return [first, first, body("7f3d9e41-hook-two", js_iso(sent + timedelta(seconds=2.517)))]


def test_an_event_sent_three_times_changes_the_registry_once(live_hub: Any) -> None:
    hub = live_hub
    section = hub.sandbox.connectors()["civil_registry"]
    secret = section["webhook_secret"].encode()
    webhook = f"{hub.url}/connectors/civil_registry/webhook"
    events = list(iter_vital_events(42, 600, MOCK_START, 365, as_of=MOCK_START))
    later = [e for e in events if e.registration_date >= LATER]
    death = next(e for e in later if e.kind == "death" and registered(hub, e.person))
    births = [e for e in later if e.kind == "birth" and registered(hub, e.mother)]
    known, other = births[0], births[1]
    body = str(int(time.time() * 1000))[-9:]
    stranger = dataclasses.replace(
        other.mother,
        person_key="not-in-the-registry",
        given_name="Imaan",
        family_name="Outlander",
        national_id=body + verhoeff_check_digit(body),
        birth_registration_number=None,
    )
    assert registered(hub, stranger) is None
    unknown = dataclasses.replace(other, mother=stranger, father=None)

    sent = 0
    for event, topic in (
        (death, "DEATH_REGISTERED"),
        (known, "BIRTH_REGISTERED"),
        (unknown, "BIRTH_REGISTERED"),
    ):
        for raw in copies(build_bundle(event), topic):
            answer = requests.post(
                webhook,
                data=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature": opencrvs_signature(secret, raw),
                },
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            sent += 1
    assert hub.host.statuses()["civil_registry"]["counts"]["pushes_accepted"] >= sent

    deceased = registered(hub, death.person)
    assert deceased is not None
    wait_for(lambda: outbox(hub, "person.died"), timeout=60, what="the death applied")
    wait_for(lambda: outbox(hub, "person.born"), timeout=60, what="the known birth applied")

    def birth_reviews() -> list[dict[str, Any]]:
        reviews, _ = hub.registry.list_reviews(limit=200)
        return [
            r
            for r in reviews
            if r["kind"] == "birth"
            and r["record"].get("registration_number") == unknown.registration_number
        ]

    wait_for(birth_reviews, timeout=60, what="the unknown mother's birth queued for review")
    time.sleep(2.0)  # copies still in flight would be applied by now

    died = outbox(hub, "person.died")
    assert [e.subject for e in died] == [f"person/{deceased['id']}"]
    assert registered(hub, death.person)["death_date"] == death.event_date.isoformat()
    born = outbox(hub, "person.born")
    mother = registered(hub, known.mother)
    assert len(born) == 1 and born[0].data["mother_person_id"] == mother["id"]
    assert len(birth_reviews()) == 1
    broker = connect(hub.settings)
    try:
        letters = [
            letter
            for letter in list_dead_letters(broker, wait=0.5)
            if letter.routing_key.startswith("civil_registry.")
        ]
    finally:
        broker.close()
    assert letters == []
