"""RabbitMQ-only promises of the AMQP backend: broker nacks become ``PublishNotConfirmed``,
the topology comes back after a reconnect, and batch publishing pipelines confirms."""

from __future__ import annotations

import threading
import time

import pika
import pytest

from hub.broker import (
    EXCHANGE_EVENTS,
    BrokerError,
    ConnectionClosed,
    Message,
    PublishNotConfirmed,
    QueueSpec,
)
from tests.contract.conftest import AmqpSession, BrokerTarget

pytestmark = pytest.mark.amqp


@pytest.fixture
def amqp(amqp_target: BrokerTarget) -> BrokerTarget:
    return amqp_target


def test_broker_nack_is_reported_with_the_failed_ids(
    amqp: BrokerTarget, amqp_session: AmqpSession
) -> None:
    broker = amqp.make()
    ok_queue = amqp.queue("ok")
    full = amqp.queue("full")
    broker.declare_topology([QueueSpec(ok_queue, [(EXCHANGE_EVENTS, amqp.key("ok"))])])
    # A queue that refuses every message with a nack (max-length 0, reject-publish).
    raw = pika.BlockingConnection(pika.URLParameters(amqp_session.url))
    try:
        raw.channel().queue_declare(
            full, durable=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        raw.channel().queue_bind(full, EXCHANGE_EVENTS, amqp.key("full"))
    finally:
        raw.close()
    batch = [
        Message(b"1", amqp.key("ok"), "ok-1"),
        Message(b"2", amqp.key("full"), "full-1"),
        Message(b"3", amqp.key("ok"), "ok-2"),
        Message(b"4", amqp.key("full"), "full-2"),
    ]
    with pytest.raises(PublishNotConfirmed) as info:
        broker.publish(EXCHANGE_EVENTS, batch)
    assert sorted(info.value.failed_ids) == ["full-1", "full-2"]
    assert broker.queue_depth(ok_queue) == 2
    broker.publish(EXCHANGE_EVENTS, [Message(b"5", amqp.key("ok"), "ok-3")])  # still usable
    assert broker.queue_depth(ok_queue) == 3


def test_topology_is_declared_again_after_a_reconnect(amqp: BrokerTarget) -> None:
    broker = amqp.make()
    queue = amqp.queue("redeclared")
    broker.declare_topology([QueueSpec(queue, [(EXCHANGE_EVENTS, amqp.key("#"))])])
    other = amqp.make()
    other.delete_queue(queue)  # type: ignore[attr-defined]
    amqp.disrupt()
    retried = 0
    while True:
        try:
            broker.publish(EXCHANGE_EVENTS, [Message(b"x", amqp.key("a"), "after-reconnect")])
            break
        except ConnectionClosed:
            retried += 1
            assert retried < 5
    assert retried >= 1  # the old connection really was closed
    assert broker.queue_depth(queue) == 1  # the queue and its binding are back


def test_batch_publish_pipelines_confirms(amqp: BrokerTarget, amqp_session: AmqpSession) -> None:
    broker = amqp.make()
    queue = amqp.queue("rate")
    broker.declare_topology([QueueSpec(queue, [(EXCHANGE_EVENTS, amqp.key("#"))])])
    body = b"x" * 1024
    count = 1000

    # Baseline in the same run: pika's own confirm mode, one wait per persistent message.
    raw = pika.BlockingConnection(pika.URLParameters(amqp_session.url))
    try:
        channel = raw.channel()
        channel.confirm_delivery()
        started = time.perf_counter()
        for i in range(count):
            channel.basic_publish(
                EXCHANGE_EVENTS,
                amqp.key("a"),
                body,
                pika.BasicProperties(delivery_mode=2, message_id=f"b-{i}"),
                mandatory=True,
            )
        one_by_one = count / (time.perf_counter() - started)
    finally:
        raw.close()

    messages = [Message(body, amqp.key("a"), f"p-{i}") for i in range(count)]
    started = time.perf_counter()
    for start in range(0, count, 250):
        broker.publish(EXCHANGE_EVENTS, messages[start : start + 250])
    pipelined = count / (time.perf_counter() - started)

    assert broker.queue_depth(queue) == 2 * count
    # Typically 5-15x on a 2-core machine; 2x keeps the test honest yet robust under load.
    assert pipelined >= 2 * one_by_one, (pipelined, one_by_one)


def test_a_broker_refuses_a_second_thread(amqp: BrokerTarget) -> None:
    broker = amqp.make()
    broker.declare_topology([])  # this thread owns the connection now
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            broker.queue_depth("sr.dead.letters")
        except BrokerError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert len(errors) == 1 and "thread" in str(errors[0])
    assert broker.queue_depth("sr.dead.letters") >= 0  # still fine in its own thread
