"""What the broker promises when things go wrong: a consumer killed mid-message, a connection
closed by the broker, competing consumer processes, and 10,000 messages counted in and out."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from hub.broker import (
    EXCHANGE_EVENTS,
    Broker,
    ConnectionClosed,
    Consumer,
    Delivery,
    Message,
    QueueSpec,
)
from tests.contract import children
from tests.contract.conftest import BrokerTarget, depth_soon

SPAWN = multiprocessing.get_context("spawn")


def declare(target: BrokerTarget, broker: Broker, name: str = "work") -> str:
    queue = target.queue(name)
    broker.declare_topology([QueueSpec(queue, [(EXCHANGE_EVENTS, target.key("#"))])])
    return queue


def batch(target: BrokerTarget, start: int, count: int, size: int = 200) -> list[Message]:
    body = b"x" * size
    return [
        Message(body=body, routing_key=target.key("person.updated"), message_id=f"m-{i}")
        for i in range(start, start + count)
    ]


def test_redelivery_after_consumer_process_is_killed(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    queue = declare(broker_factory, broker)
    broker.publish(EXCHANGE_EVENTS, batch(broker_factory, 0, 1))

    report = SPAWN.Queue()
    child = SPAWN.Process(
        target=children.hold_one_delivery,
        args=(broker_factory.url, broker_factory.options, queue, report),
    )
    child.start()
    try:
        assert report.get(timeout=30) == "m-0"  # the child holds it, unacked
        assert depth_soon(broker, queue, 0) == 0
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    assert child.exitcode == -signal.SIGKILL

    consumer = broker.open_consumer(queue, prefetch=1)
    delivery = consumer.receive(timeout=15)  # embedded: once the dead consumer's lease ends
    assert delivery is not None
    assert delivery.message.message_id == "m-0"
    assert delivery.redelivered is True
    assert delivery.attempts == 2
    consumer.ack(delivery)
    consumer.close()
    assert broker.queue_depth(queue) == 0


def test_competing_consumer_processes_share_without_duplicates(
    broker_factory: BrokerTarget,
) -> None:
    broker = broker_factory.make()
    queue = declare(broker_factory, broker)
    total = 600
    broker.publish(EXCHANGE_EVENTS, batch(broker_factory, 0, total, size=50))

    go = SPAWN.Event()
    report = SPAWN.Queue()
    procs = [
        SPAWN.Process(
            target=children.consume_until_idle,
            args=(broker_factory.url, broker_factory.options, queue, 10, 0.001, go, report),
        )
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    try:
        assert [report.get(timeout=30) for _ in procs] == ["ready", "ready"]
        go.set()
        results = [report.get(timeout=60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    seen = [mid for result in results for mid in result]
    assert len(seen) == total, "no message delivered twice while its consumer was alive"
    assert set(seen) == {f"m-{i}" for i in range(total)}
    assert all(results), "both processes got work"
    assert broker.queue_depth(queue) == 0


def _publish_with_retry(broker: Broker, messages: list[Message]) -> int:
    """Publish like the relay does: on ConnectionClosed nothing is known, so send again."""
    retries = 0
    while True:
        try:
            broker.publish(EXCHANGE_EVENTS, messages)
            return retries
        except ConnectionClosed:
            retries += 1
            assert retries < 20


def _receive_with_reopen(
    broker: Broker, queue: str, consumer: Consumer, timeout: float
) -> tuple[Consumer, Delivery | None, bool]:
    try:
        return consumer, consumer.receive(timeout=timeout), False
    except ConnectionClosed:
        consumer.close()
        return broker.open_consumer(queue, prefetch=50), None, True


def test_nothing_is_lost_when_the_broker_closes_connections(
    broker_factory: BrokerTarget,
) -> None:
    publisher = broker_factory.make()
    queue = declare(broker_factory, publisher)
    sent: set[str] = set()
    for round_ in range(10):
        messages = batch(broker_factory, round_ * 100, 100)
        if round_ == 5:
            broker_factory.disrupt()  # every connection of the vhost / database is cut
        _publish_with_retry(publisher, messages)
        sent.update(m.message_id for m in messages)

    reader = broker_factory.make()
    consumer = reader.open_consumer(queue, prefetch=50)
    received: set[str] = set()
    acked = 0
    reopened = 0
    disrupted = False
    deadline = time.monotonic() + 60
    while received != sent and time.monotonic() < deadline:
        consumer, delivery, was_reopened = _receive_with_reopen(reader, queue, consumer, 1.0)
        reopened += was_reopened
        if delivery is None:
            continue
        received.add(delivery.message.message_id)
        if acked == 400 and not disrupted:
            disrupted = True
            broker_factory.disrupt()
        try:
            consumer.ack(delivery)
            acked += 1
        except ConnectionClosed:
            consumer.close()
            consumer = reader.open_consumer(queue, prefetch=50)
            reopened += 1
    # Redeliveries of deliveries whose ack was cut off may still come: settle them too.
    while (delivery := consumer.receive(timeout=0.3)) is not None:
        assert delivery.message.message_id in sent
        consumer.ack(delivery)
    consumer.close()
    assert received == sent
    assert depth_soon(reader, queue, 0) == 0
    assert publisher.status().state == "connected"
    if broker_factory.kind == "amqp":
        assert reopened >= 1, "the broker really closed the consumer's connection"


@pytest.mark.slow
def test_counts_in_equal_counts_out_over_10000_messages(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    queue = declare(broker_factory, broker)
    total = 10_000
    for start in range(0, total, 500):
        broker.publish(EXCHANGE_EVENTS, batch(broker_factory, start, 500, size=256))
    assert broker.queue_depth(queue) == total

    consumer = broker.open_consumer(queue, prefetch=200)
    ids: set[str] = set()
    count = 0
    while (delivery := consumer.receive(timeout=1.0)) is not None:
        ids.add(delivery.message.message_id)
        count += 1
        consumer.ack(delivery)
    consumer.close()
    assert count == total
    assert ids == {f"m-{i}" for i in range(total)}
    assert broker.queue_depth(queue) == 0
    # A fresh connection agrees: the acks were settled, nothing comes back.
    other = broker_factory.make()
    late = other.open_consumer(queue).receive(timeout=0.5)
    assert late is None
