"""Dispatch and delivery on the embedded broker over SQLite and PostgreSQL: matching by type
and area, consent deciding the content, signed webhooks, a dead endpoint that does not slow
anyone else (measured), retries then dead-letter with the reason, per-subject order, and the
delivery log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from hub.broker import QUEUE_DEAD, connect
from hub.broker.base import H_REASON
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.subscriptions import service
from hub.subscriptions.signing import verify
from hub.subscriptions.tables import DEAD_LETTERED, DELIVERED, FAILED
from hub.workers.egress import EgressPolicy
from registry_core.service import Source
from tests.integration.notification_support import (
    log_rows,
    notification_workers,
    receiver,
    wait_until,
)

SECRET = "a-test-secret-of-some-length"


@pytest.fixture
def hub(db_url: str, tmp_path: Path):
    # The webhook receivers run on loopback: allowed explicitly, as an operator would.
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, outbound={"allow_hosts": ["127.0.0.1"]}
    )
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    yield settings, runtime
    runtime.close()


def subscribe(runtime: HubRuntime, code: str, program: str, target: str, **extra: Any) -> None:
    body = {
        "code": code,
        "event_types": extra.pop("event_types", ["person.died"]),
        "channel": "webhook",
        "target": target,
        "purpose": extra.pop("purpose", "cash_transfer"),
        "secret": SECRET,
        **extra,
    }
    if body["channel"] != "webhook":
        body.pop("secret")
    service.validate_create(
        body, amqp_available=False, egress=EgressPolicy.from_settings(runtime.settings)
    )
    with runtime.sessions() as session, session.begin():
        service.create(session, runtime.cipher, body, program_code=program, created_by="test")


def household(runtime: HubRuntime, area: str, nids: list[str]) -> dict[str, Any]:
    members = [
        {
            "given_name": f"Given{i}",
            "family_name": "Otieno",
            "sex": "female",
            "birth_date": f"19{70 + i}-04-02",
            "relationship": "head" if i == 0 else "other_relative",
            "identifiers": [{"system": "national_id", "value": nid}],
        }
        for i, nid in enumerate(nids)
    ]
    record = {"admin_area_code": area, "members": members}
    return runtime.registry.register_household(record, Source("registry_staff")).record


def test_consent_decides_content_area_filter_applies_and_every_delivery_is_logged(hub):
    settings, runtime = hub
    with receiver() as cash_rx, receiver() as food_rx:
        subscribe(runtime, "cash-deaths", "cash", cash_rx.url, filters={"admin_areas": ["R01"]})
        subscribe(
            runtime,
            "food-people",
            "food",
            food_rx.url,
            event_types=["person.*"],
            purpose="nutrition",
        )
        inside = household(runtime, "R01-D02-L003", ["1234567897"])
        outside = household(runtime, "R09-D01-L001", ["2234567891"])
        amina = inside["members"][0]["id"]
        runtime.registry.grant_consent(
            "cash", "cash_transfer", "paper", Source("registry_staff"), person_id=amina
        )
        with notification_workers(settings, runtime):
            runtime.registry.record_death(amina, "2025-01-02", Source("civil_registry"))
            runtime.registry.record_death(
                outside["members"][0]["id"], "2025-01-03", Source("civil_registry")
            )
            wait_until(lambda: len(food_rx.requests) >= 2, 20, "two deaths at food")
            wait_until(lambda: cash_rx.requests, 20, "a death at cash")
            time.sleep(0.5)  # anything extra would arrive now
        assert len(cash_rx.requests) == 1  # R09 is outside cash's area filter
        assert len(food_rx.requests) == 2

    sent = cash_rx.requests[0]
    verify(SECRET.encode(), sent["body"], sent["headers"])  # signed, fresh
    event = sent["json"]
    assert event["type"] == "org.socialregistry.person.died"
    assert event["subject"] == f"person/{amina}"
    assert event["srpersonal"] is True
    assert event["data"]["person_id"] == amina
    assert event["data"]["death_date"] == "2025-01-02"
    assert event["data"]["person"]["given_name"] == "Given0"
    assert event["data"]["person"]["identifiers"][0]["value"] == "1234567897"

    for request in food_rx.requests:  # no consent for nutrition: nothing personal at all
        event, text = request["json"], request["body"].decode()
        assert event["srpersonal"] is False
        assert set(event["data"]) == {"admin_area_code", "subject_ref", "personal_data"}
        assert event["subject"].startswith("ref/")
        for secret_value in ("1234567897", "2234567891", "Given0", "Otieno", amina, "2025-01-0"):
            assert secret_value not in text
    refs = {r["json"]["data"]["subject_ref"] for r in food_rx.requests}
    assert len(refs) == 2

    rows = log_rows(runtime, "cash-deaths")
    assert [(r.status, r.attempt, r.personal, r.http_status) for r in rows] == [
        (DELIVERED, 1, True, 200)
    ]
    assert rows[0].sequence is not None and rows[0].event_type == "person.died"
    assert all(not r.personal for r in log_rows(runtime, "food-people"))


def test_a_dead_endpoint_does_not_slow_another_subscriber(hub):
    settings, runtime = hub
    with (
        receiver(lambda _n: (503, 1.0)) as slow_rx,
        receiver() as fast_rx,
    ):
        subscribe(runtime, "slow", "cash", slow_rx.url)
        subscribe(runtime, "fast", "food", fast_rx.url)
        people = household(runtime, "R01-D02-L003", [f"{i}234567897"[-10:] for i in range(1, 6)])
        with notification_workers(settings, runtime):
            wait_until(lambda: True, 0, "")
            time.sleep(1.0)  # senders and consumers up
            started = time.monotonic()
            for member in people["members"]:
                runtime.registry.record_death(member["id"], "2025-01-02", Source("civil_registry"))
            wait_until(lambda: len(fast_rx.requests) >= 5, 10, "five deaths at fast")
            elapsed = time.monotonic() - started
            slow_seen = len(slow_rx.requests)
        print(f"\nfast subscriber got 5 events in {elapsed:.2f}s; slow endpoint saw {slow_seen}")
        assert elapsed < 3.0
        assert slow_seen <= 3  # still stuck on its first event


def test_retries_with_backoff_then_dead_letter_with_the_reason(hub):
    settings, runtime = hub
    with receiver(lambda _n: (500, 0.0)) as broken_rx, receiver(lambda _n: (401, 0.0)) as deny_rx:
        subscribe(runtime, "broken", "cash", broken_rx.url)
        subscribe(runtime, "denied", "food", deny_rx.url)
        person = household(runtime, "R01-D02-L003", ["1234567897"])["members"][0]["id"]
        with notification_workers(settings, runtime):
            runtime.registry.record_death(person, "2025-01-02", Source("civil_registry"))
            wait_until(
                lambda: (
                    any(r.status == DEAD_LETTERED for r in log_rows(runtime, "broken"))
                    and any(r.status == DEAD_LETTERED for r in log_rows(runtime, "denied"))
                ),
                20,
                "both dead-lettered",
            )
    broken = log_rows(runtime, "broken")
    assert [(r.status, r.attempt) for r in broken] == [
        (FAILED, 1),
        (FAILED, 2),
        (FAILED, 3),
        (DEAD_LETTERED, 3),  # the verdict, on attempt 3
    ]
    assert "HTTP 500" in broken[-1].error
    assert len(broken_rx.requests) == 3
    assert [r.status for r in log_rows(runtime, "denied")] == [FAILED, DEAD_LETTERED]
    assert len(deny_rx.requests) == 1  # a 401 is not retried
    with connect(settings, wait_for=5) as broker:
        consumer = broker.open_consumer(QUEUE_DEAD, prefetch=10)
        reasons = []
        while (delivery := consumer.receive(1.0)) is not None:
            reasons.append(delivery.message.headers.get(H_REASON, ""))
            consumer.requeue(delivery)
            if len(reasons) >= 2:
                break
        consumer.close()
    assert any("subscription broken" in r and "HTTP 500" in r for r in reasons)


def test_order_per_subject_is_kept_across_retries(hub):
    settings, runtime = hub
    with receiver(lambda n: (503, 0.0) if n <= 2 else (200, 0.0)) as flaky_rx:
        subscribe(runtime, "flaky", "cash", flaky_rx.url, event_types=["household.updated"])
        record = household(runtime, "R01-D02-L003", ["1234567897"])
        with notification_workers(settings, runtime):
            for n in range(4):
                runtime.registry.update_household(
                    record["id"], {"address": f"{n} Mango Lane"}, Source("registry_staff")
                )
            wait_until(lambda: len(flaky_rx.requests) >= 6, 20, "4 events after 2 failures")
            time.sleep(0.3)
    delivered = [r["json"] for r in flaky_rx.requests[2:]]
    sequences = [int(e["srsequence"]) for e in delivered]
    assert len(delivered) == 4 and sequences == sorted(sequences)
    assert flaky_rx.requests[0]["json"]["id"] == delivered[0]["id"]  # the retried one first
    statuses = [r.status for r in log_rows(runtime, "flaky")]
    assert statuses == [FAILED, FAILED, DELIVERED, DELIVERED, DELIVERED, DELIVERED]


def test_redrive_resends_history_to_one_subscription_only(hub):
    from hub.subscriptions.redrive import redrive

    settings, runtime = hub
    with receiver() as one_rx, receiver() as other_rx:
        subscribe(runtime, "one", "cash", one_rx.url)
        subscribe(runtime, "other", "food", other_rx.url)
        person = household(runtime, "R01-D02-L003", ["1234567897"])["members"][0]["id"]
        with notification_workers(settings, runtime):
            runtime.registry.record_death(person, "2025-01-02", Source("civil_registry"))
            wait_until(lambda: one_rx.requests and other_rx.requests, 15, "first delivery")
            with connect(settings, wait_for=5) as broker:
                examined, queued = redrive(runtime, broker, "one", from_sequence=1)
            wait_until(lambda: len(one_rx.requests) >= 2, 15, "the re-driven copy")
            time.sleep(0.3)
    assert queued == 1 and examined >= 3  # household.created, person.died, member_removed
    assert len(one_rx.requests) == 2 and len(other_rx.requests) == 1
    assert one_rx.requests[0]["json"]["id"] == one_rx.requests[1]["json"]["id"]
    with pytest.raises(ValueError, match="exactly one"):
        redrive(runtime, None, "one")  # type: ignore[arg-type]


def test_dci_notify_is_a_signed_envelope_and_is_withheld_without_consent(hub):
    from hub.subscriptions.tables import WITHHELD

    settings, runtime = hub
    with receiver() as dci_rx:
        subscribe(runtime, "dci-cash", "cash", dci_rx.url, channel="dci")
        subscribe(runtime, "dci-food", "food", dci_rx.url, channel="dci", purpose="nutrition")
        record = household(runtime, "R01-D02-L003", ["1234567897", "2234567891"])
        runtime.registry.grant_consent(
            "cash", "cash_transfer", "paper", Source("registry_staff"), household_id=record["id"]
        )
        person = record["members"][1]["id"]
        with notification_workers(settings, runtime):
            runtime.registry.record_death(person, "2025-01-02", Source("civil_registry"))
            wait_until(lambda: dci_rx.requests, 15, "a DCI notify")
            wait_until(
                lambda: [r.status for r in log_rows(runtime, "dci-food")] == [WITHHELD],
                15,
                "the consent-less notify withheld",
            )
            time.sleep(0.3)
    assert len(dci_rx.requests) == 1
    envelope = dci_rx.requests[0]["json"]
    assert set(envelope) == {"signature", "header", "message"}
    assert envelope["header"]["action"] == "notify"
    assert envelope["header"]["meta"]["subscription_code"] == "dci-cash"
    [item] = envelope["message"]["notify_event"]
    assert "1234567897" in str(item["data"]["reg_records"])  # the household's SR record
    assert [r.status for r in log_rows(runtime, "dci-cash")] == [DELIVERED]


def test_a_paused_subscription_queues_and_catches_up_when_resumed(hub):
    settings, runtime = hub
    with receiver() as rx:
        subscribe(runtime, "pausable", "cash", rx.url)
        with runtime.sessions() as session, session.begin():
            service.set_status(session, service.get(session, "pausable"), "paused")
        person = household(runtime, "R01-D02-L003", ["1234567897"])["members"][0]["id"]
        with notification_workers(settings, runtime):
            runtime.registry.record_death(person, "2025-01-02", Source("civil_registry"))
            time.sleep(1.5)
            assert rx.requests == []  # paused: nothing pushed
            with runtime.sessions() as session, session.begin():
                service.set_status(session, service.get(session, "pausable"), "active")
            wait_until(lambda: rx.requests, 10, "delivery after resuming")
    assert [r["json"]["type"] for r in rx.requests] == ["org.socialregistry.person.died"]
