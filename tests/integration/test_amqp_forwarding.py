"""The AMQP channel of a hub on the embedded queue (SQLite and PostgreSQL): deliveries are
forwarded to the operator's RabbitMQ (``SRHUB_DELIVERY_AMQP_URL``, a virtual host of its own
here) with the content a hub on RabbitMQ gives, exactly once, consent applied; a delivery
broker outage is retried with backoff, then dead-lettered with the reason, and never holds up
another subscription.

Tests that need RabbitMQ skip without ``SRHUB_TEST_AMQP_URL`` (and fail under ``CI=true``);
the outage-until-dead-letter test needs no RabbitMQ at all (nothing listens at the URL).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pika
import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.broker import QUEUE_DEAD, connect
from hub.broker.amqp import queue_arguments
from hub.broker.base import EXCHANGE_EVENTS, H_ERROR_CLASS, H_REASON, Message
from hub.runtime import HubRuntime
from hub.settings import Settings, load_settings
from hub.subscriptions import service
from hub.subscriptions.delivery import start_delivery_workers
from hub.subscriptions.fanout import (
    CONTENT_TYPE,
    H_EVENT_ID,
    H_PERSONAL,
    H_REDRIVE,
    H_SEQUENCE,
    H_SUBSCRIPTION,
    deliver_key,
)
from hub.subscriptions.forwarding import AmqpForwarder
from hub.subscriptions.tables import (
    DEAD_LETTERED,
    DELIVERED,
    DUPLICATE,
    FAILED,
    QUEUED,
)
from hub.workers.egress import EgressPolicy
from registry_core.service import Source
from tests.contract.tcp_forward import Forwarder
from tests.integration.notification_support import (
    FAST_POLICY,
    log_rows,
    notification_workers,
    receiver,
    wait_until,
)

NID = "1234567897"


def _closed_port_url() -> str:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens here any more
    return f"amqp://guest:guest@127.0.0.1:{port}/%2F"


def _hub(db_url: str, tmp_path: Path, delivery_url: str) -> tuple[Settings, HubRuntime]:
    settings = load_settings(
        env={},
        database_url=db_url,
        data_dir=tmp_path,
        delivery_amqp_url=delivery_url,
        outbound={"allow_hosts": ["127.0.0.1"]},  # the webhook receivers run on loopback
    )
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    return settings, runtime


@pytest.fixture
def forwarding_hub(db_url: str, tmp_path: Path, amqp_url: str) -> Iterator[Any]:
    """A hub on the embedded queue whose AMQP subscribers consume at ``amqp_url``."""
    settings, runtime = _hub(db_url, tmp_path, amqp_url)
    try:
        yield settings, runtime
    finally:
        runtime.close()
        with connect(amqp_url, wait_for=5) as broker:  # the vhost is shared by this module
            for code in ("cash-amqp", "food-amqp", "redo-amqp", "flaky-amqp"):
                service.delete_queue(broker, code)


def subscribe(
    runtime: HubRuntime, settings: Settings, code: str, program: str, **extra: Any
) -> None:
    body = {
        "code": code,
        "event_types": ["person.died"],
        "channel": "amqp",
        "purpose": "cash_transfer",
        **extra,
    }
    service.validate_create(body, amqp_available=settings.offers_amqp_channel)
    with runtime.sessions() as session, session.begin():
        service.create(session, runtime.cipher, body, program_code=program, created_by="test")


def person_with_consent(runtime: HubRuntime, program: str = "cash") -> dict[str, Any]:
    record = {
        "admin_area_code": "R01-D02-L003",
        "members": [
            {
                "given_name": "Amina",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "1970-04-02",
                "relationship": "head",
                "identifiers": [{"system": "national_id", "value": NID}],
            }
        ],
    }
    household = runtime.registry.register_household(record, Source("registry_staff")).record
    person = household["members"][0]
    runtime.registry.grant_consent(
        program, "cash_transfer", "paper", Source("registry_staff"), person_id=person["id"]
    )
    return person


class Inbox:
    """Everything that arrives on one queue of the delivery RabbitMQ, as raw AMQP."""

    def __init__(self, url: str, queue: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.queue = queue
        self.items: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.items
            self.items.append(
                {
                    "at": time.monotonic(),
                    "routing_key": method.routing_key,
                    "properties": properties,
                    "body": body,
                    "json": json.loads(body),
                }
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


@contextlib.contextmanager
def inbox(url: str, queue: str) -> Iterator[Inbox]:
    found = Inbox(url, queue)
    try:
        yield found
    finally:
        found.close()


@pytest.mark.amqp
def test_a_death_is_forwarded_once_with_the_content_of_a_rabbitmq_hub(forwarding_hub, amqp_url):
    settings, runtime = forwarding_hub
    assert settings.uses_embedded_broker and settings.forwards_amqp_deliveries
    subscribe(runtime, settings, "cash-amqp", "cash")
    subscribe(runtime, settings, "food-amqp", "food")  # no consent: nothing personal
    person = person_with_consent(runtime)
    with connect(amqp_url, wait_for=5) as broker:  # the API does this at creation
        for code in ("cash-amqp", "food-amqp"):
            service.declare_queue(broker, code)
    with (
        inbox(amqp_url, "sr.deliver.cash-amqp") as cash,
        inbox(amqp_url, "sr.deliver.food-amqp") as food,
        notification_workers(settings, runtime) as workers,
    ):
        wait_until(lambda: len(workers.statuses()) == 2, 10, "two forwarders")
        started = time.monotonic()
        runtime.registry.record_death(person["id"], "2025-01-02", Source("civil_registry"))
        wait_until(cash.poll, 10, "the death on the delivery broker")
        wait_until(food.poll, 10, "the consent-free death on the delivery broker")
        print(f"\nembedded -> delivery RabbitMQ: {cash.items[0]['at'] - started:.2f}s")
        assert cash.items[0]["at"] - started < 5.0
        time.sleep(0.7)  # a duplicate would show up now
        assert len(cash.poll()) == 1 and len(food.poll()) == 1

    [got] = cash.items
    event = got["json"]
    props = got["properties"]
    event_id = event["id"]
    # What a hub on RabbitMQ publishes to sr.deliver.<code> (hub/subscriptions/fanout.py).
    assert got["routing_key"] == deliver_key("cash-amqp")
    assert props.message_id == f"{event_id}.cash-amqp"
    assert props.content_type == CONTENT_TYPE
    assert props.delivery_mode == 2  # persistent
    assert props.headers[H_EVENT_ID] == event_id
    assert props.headers[H_SUBSCRIPTION] == "cash-amqp"
    assert props.headers[H_PERSONAL] is True
    assert isinstance(props.headers[H_SEQUENCE], int)
    assert H_REDRIVE not in props.headers
    assert event["type"] == "org.socialregistry.person.died"
    assert event["srpersonal"] is True and event["srsubscription"] == "cash-amqp"
    assert event["data"]["person_id"] == person["id"]
    assert event["data"]["death_date"] == "2025-01-02"
    assert event["data"]["person"]["identifiers"][0]["value"] == NID

    [nothing_personal] = food.items
    text = nothing_personal["body"].decode()
    assert nothing_personal["json"]["srpersonal"] is False
    assert nothing_personal["properties"].headers[H_PERSONAL] is False
    assert set(nothing_personal["json"]["data"]) == {
        "admin_area_code",
        "subject_ref",
        "personal_data",
    }
    for value in (person["id"], NID, "Amina", "Otieno", "2025-01-02"):
        assert value not in text

    # The queue is the durable quorum queue a hub on RabbitMQ declares: declaring it again with
    # those arguments is accepted (RabbitMQ refuses a declaration that differs).
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        connection.channel().queue_declare(
            "sr.deliver.cash-amqp",
            durable=True,
            arguments=queue_arguments(service.delivery_queue("cash-amqp")),
        )
    finally:
        connection.close()

    for code, personal in (("cash-amqp", True), ("food-amqp", False)):
        rows = log_rows(runtime, code)
        assert [(r.status, r.attempt, r.personal) for r in rows] == [(QUEUED, 1, personal)]
        assert rows[0].event_id == event_id and rows[0].event_type == "person.died"


def _publish_to_embedded(settings: Settings, code: str, *, redrive: bool = False) -> None:
    headers: dict[str, Any] = {
        H_EVENT_ID: "evt-1",
        H_SUBSCRIPTION: code,
        H_PERSONAL: False,
        H_SEQUENCE: 7,
    }
    if redrive:
        headers[H_REDRIVE] = True
    message = Message(
        body=b'{"id":"evt-1","type":"org.socialregistry.person.died","srpersonal":false}',
        routing_key=deliver_key(code),
        message_id=f"evt-1.{code}",
        headers=headers,
        content_type=CONTENT_TYPE,
    )
    with connect(settings, wait_for=5) as broker:
        service.declare_queue(broker, code)
        broker.publish(EXCHANGE_EVENTS, [message])


@pytest.mark.amqp
def test_a_redelivered_event_is_not_forwarded_twice_but_a_redrive_is(forwarding_hub, amqp_url):
    settings, runtime = forwarding_hub
    subscribe(runtime, settings, "redo-amqp", "cash")
    with connect(amqp_url, wait_for=5) as broker:  # the API does this at creation
        service.declare_queue(broker, "redo-amqp")
    with inbox(amqp_url, "sr.deliver.redo-amqp") as box:
        workers = start_delivery_workers(settings, runtime, FAST_POLICY)
        try:
            _publish_to_embedded(settings, "redo-amqp")
            wait_until(box.poll, 10, "the first forward")
            _publish_to_embedded(settings, "redo-amqp")  # e.g. after a crash before the ack
            wait_until(
                lambda: [r.status for r in log_rows(runtime, "redo-amqp")] == [QUEUED, DUPLICATE],
                10,
                "the duplicate logged",
            )
            assert len(box.poll()) == 1
            _publish_to_embedded(settings, "redo-amqp", redrive=True)  # an operator's re-drive
            wait_until(lambda: len(box.poll()) == 2, 10, "the re-driven forward")
        finally:
            workers.stop(10)
    assert [r.status for r in log_rows(runtime, "redo-amqp")] == [QUEUED, DUPLICATE, QUEUED]
    assert box.items[1]["properties"].headers[H_REDRIVE] is True
    with connect(settings, wait_for=5) as broker:
        assert broker.queue_depth("sr.deliver.redo-amqp") == 0


@pytest.mark.amqp
def test_an_outage_of_the_delivery_broker_is_retried_until_it_is_back(db_url, tmp_path, amqp_url):
    params = pika.URLParameters(amqp_url)
    proxy = Forwarder(0, (params.host, params.port))
    user, password = params.credentials.username, params.credentials.password
    vhost = amqp_url.rsplit("/", 1)[1]
    via_proxy = f"amqp://{user}:{password}@127.0.0.1:{proxy.port}/{vhost}"
    settings, runtime = _hub(db_url, tmp_path, via_proxy)
    policy = replace(
        FAST_POLICY, retry=replace(FAST_POLICY.retry, attempts=12, initial_delay=0.2, max_delay=0.4)
    )
    subscribe(runtime, settings, "flaky-amqp", "cash")
    try:
        proxy.down()
        workers = start_delivery_workers(settings, runtime, policy)
        try:
            _publish_to_embedded(settings, "flaky-amqp")
            wait_until(
                lambda: [r.status for r in log_rows(runtime, "flaky-amqp")].count(FAILED) >= 2,
                15,
                "failed attempts while the broker is away",
            )
            proxy.up = True
            wait_until(
                lambda: QUEUED in [r.status for r in log_rows(runtime, "flaky-amqp")],
                15,
                "the forward once the broker is back",
            )
        finally:
            workers.stop(10)
        statuses = [r.status for r in log_rows(runtime, "flaky-amqp")]
        assert statuses[-1] == QUEUED and set(statuses[:-1]) == {FAILED}
        assert [r.attempt for r in log_rows(runtime, "flaky-amqp")] == list(
            range(1, len(statuses) + 1)
        )
        with inbox(amqp_url, "sr.deliver.flaky-amqp") as box:
            assert len(wait_until(box.poll, 5, "the message")) == 1
        with connect(settings, wait_for=5) as broker:
            assert broker.queue_depth("sr.deliver.flaky-amqp") == 0
            assert broker.queue_depth(QUEUE_DEAD) == 0
    finally:
        proxy.close()
        runtime.close()


def test_a_delivery_broker_that_stays_away_dead_letters_and_blocks_nobody(db_url, tmp_path):
    settings, runtime = _hub(db_url, tmp_path, _closed_port_url())
    try:
        subscribe(runtime, settings, "cash-amqp", "cash")
        body = {
            "code": "cash-hook",
            "event_types": ["person.died"],
            "channel": "webhook",
            "target": "",
            "purpose": "cash_transfer",
        }
        person = person_with_consent(runtime)
        with receiver() as hook:
            body["target"] = hook.url
            service.validate_create(
                body, amqp_available=True, egress=EgressPolicy.from_settings(settings)
            )
            with runtime.sessions() as session, session.begin():
                service.create(session, runtime.cipher, body, program_code="cash", created_by="t")
            with notification_workers(settings, runtime) as workers:
                wait_until(lambda: len(workers.statuses()) == 2, 10, "two workers")
                kinds = {type(s) for s, _t in workers.senders.values()}
                assert AmqpForwarder in kinds
                started = time.monotonic()
                runtime.registry.record_death(person["id"], "2025-01-02", Source("civil_registry"))
                wait_until(lambda: hook.requests, 10, "the webhook despite the AMQP outage")
                assert time.monotonic() - started < 5.0
                wait_until(
                    lambda: DEAD_LETTERED in [r.status for r in log_rows(runtime, "cash-amqp")],
                    20,
                    "the forward dead-lettered",
                )
        rows = log_rows(runtime, "cash-amqp")
        assert [r.status for r in rows] == [FAILED] * FAST_POLICY.retry.attempts + [DEAD_LETTERED]
        assert all(r.error for r in rows)
        assert "guest" not in " ".join(r.error or "" for r in rows)  # no credentials in the log
        assert [r.status for r in log_rows(runtime, "cash-hook")] == [DELIVERED]
        with connect(settings, wait_for=5) as broker:  # not dropped: in sr.dead, with why
            assert broker.queue_depth("sr.deliver.cash-amqp") == 0
            consumer = broker.open_consumer(QUEUE_DEAD, prefetch=1)
            dead = consumer.receive(2.0)
            assert dead is not None
            assert dead.message.headers[H_ERROR_CLASS] == "DeliveryFailed"
            assert "subscription cash-amqp" in dead.message.headers[H_REASON]
            assert json.loads(dead.message.body)["data"]["person_id"] == person["id"]
            consumer.ack(dead)
            consumer.close()
    finally:
        runtime.close()


def test_the_api_offers_the_amqp_channel_only_with_a_delivery_broker(db_url, tmp_path):
    def post(settings: Settings) -> Any:
        app = create_app(settings)
        runtime = app.extensions["srhub_runtime"]
        try:
            token = issue_token(settings, subject="tester", roles=["program"], program="cash")
            return app.test_client().post(
                "/api/v1/subscriptions",
                json={
                    "code": "cash-amqp",
                    "event_types": ["person.died"],
                    "channel": "amqp",
                    "purpose": "cash_transfer",
                },
                headers={"Authorization": f"Bearer {token}"},
            )
        finally:
            runtime.close()

    refused = post(load_settings(env={}, database_url=db_url, data_dir=tmp_path))
    assert refused.status_code == 422
    [problem] = refused.get_json()["errors"]
    assert problem["path"] == "$.channel" and "SRHUB_DELIVERY_AMQP_URL" in problem["message"]

    accepted = post(
        load_settings(
            env={},
            database_url=db_url,
            data_dir=tmp_path,
            delivery_amqp_url=_closed_port_url(),  # unreachable now: declared later, by the worker
        )
    )
    assert accepted.status_code == 201, accepted.get_json()
    doc = accepted.get_json()
    assert doc["channel"] == "amqp" and doc["queue"] == doc["target"] == "sr.deliver.cash-amqp"


def test_a_hub_on_rabbitmq_starts_no_forwarder(db_url, tmp_path):
    """There AMQP subscribers consume the hub's own queues; the delivery URL is not used."""
    from hub.subscriptions.delivery import DeliveryWorkers

    url = _closed_port_url()
    settings = load_settings(
        env={}, database_url=db_url, data_dir=tmp_path, amqp_url=url, delivery_amqp_url=url
    )
    runtime = HubRuntime(settings)
    try:
        subscribe(runtime, settings, "cash-amqp", "cash")
        workers = DeliveryWorkers(settings, runtime, FAST_POLICY)
        workers.refresh()
        assert workers.senders == {}
        workers.stop(1)
    finally:
        runtime.close()
