"""The broker contract (hub/broker/base.py), the same tests on every backend: routing,
confirms, settlement, dead-lettering, ordering, idempotency, depth."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from hub.broker import (
    EXCHANGE_DEAD,
    EXCHANGE_EVENTS,
    EXCHANGE_INBOUND,
    QUEUE_DEAD,
    Broker,
    BrokerError,
    Consumer,
    DeadLetterReason,
    Delivery,
    Message,
    QueueNotFound,
    QueueSpec,
    Unroutable,
)
from hub.broker.base import (
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_LAST_FAILURE,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_QUEUE,
    H_ORIGINAL_ROUTING_KEY,
    H_REASON,
)
from hub.broker.topic import matches
from tests.contract.conftest import BrokerTarget, depth_soon


def msg(key: str, mid: str, body: bytes | None = None, **headers: object) -> Message:
    return Message(
        body=body if body is not None else mid.encode(),
        routing_key=key,
        message_id=mid,
        headers=headers,
    )


def take(consumer: Consumer, count: int, timeout: float = 5.0) -> list[Delivery]:
    """Receive and ack exactly ``count`` deliveries, then check that no more is waiting."""
    out: list[Delivery] = []
    for _ in range(count):
        delivery = consumer.receive(timeout=timeout)
        assert delivery is not None, f"expected {count} deliveries, got {len(out)}"
        out.append(delivery)
        consumer.ack(delivery)
    extra = consumer.receive(timeout=0.2)
    assert extra is None, f"unexpected extra delivery {extra.message.message_id}"
    return out


def one_queue(target: BrokerTarget, broker: Broker, name: str = "work", limit: int = 5) -> str:
    queue = target.queue(name)
    broker.declare_topology(
        [QueueSpec(queue, [(EXCHANGE_EVENTS, target.key("#"))], delivery_limit=limit)]
    )
    return queue


# Binding patterns (after the test prefix) and the keys each must and must not receive.
ROUTING_CASES = {
    "star": "*.created",
    "hash": "#",
    "exact": "person.died",
    "middle": "#.died",
    "two": "household.*.*",
    "tail": "person.#",
}
KEYS = [
    "person.created",
    "household.created",
    "person.died",
    "person",
    "household.member.added",
    "household.member",
    "person.record.died",
    "a.b.c.d",
]


def test_topic_routing_matches_rabbitmq_semantics(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    p = broker_factory.prefix
    queues = {name: broker_factory.queue(name) for name in ROUTING_CASES}
    broker.declare_topology(
        [
            QueueSpec(queues[name], [(EXCHANGE_EVENTS, f"{p}.{pattern}")])
            for name, pattern in ROUTING_CASES.items()
        ]
    )
    broker.publish(EXCHANGE_EVENTS, [msg(f"{p}.{k}", k) for k in KEYS])

    for name, pattern in ROUTING_CASES.items():
        expected = sorted(k for k in KEYS if matches(f"{p}.{pattern}", f"{p}.{k}"))
        consumer = broker.open_consumer(queues[name], prefetch=50)
        got = sorted(d.message.message_id for d in take(consumer, len(expected)))
        consumer.close()
        assert got == expected, f"pattern {pattern!r}"
    # The expectations are not vacuous: each pattern both takes and refuses something.
    for pattern in ("*.created", "person.died", "#.died", "household.*.*", "person.#"):
        assert any(matches(pattern, k) for k in KEYS)
        assert not all(matches(pattern, k) for k in KEYS)


def test_exchanges_are_separate(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    inbound = broker_factory.queue("inbound")
    events = broker_factory.queue("events")
    broker.declare_topology(
        [
            QueueSpec(inbound, [(EXCHANGE_INBOUND, broker_factory.key("#"))]),
            QueueSpec(events, [(EXCHANGE_EVENTS, broker_factory.key("#"))]),
        ]
    )
    broker.publish(EXCHANGE_INBOUND, [msg(broker_factory.key("civil.birth"), "in-1")])
    broker.publish(EXCHANGE_EVENTS, [msg(broker_factory.key("person.born"), "ev-1")])
    assert broker.queue_depth(inbound) == 1
    assert broker.queue_depth(events) == 1
    (delivery,) = take(broker.open_consumer(inbound), 1)
    assert (delivery.message.message_id, delivery.exchange) == ("in-1", EXCHANGE_INBOUND)


def test_unroutable_message_is_reported_and_the_rest_is_stored(
    broker_factory: BrokerTarget,
) -> None:
    broker = broker_factory.make()
    queue = broker_factory.queue("work")
    broker.declare_topology([QueueSpec(queue, [(EXCHANGE_EVENTS, broker_factory.key("person.*"))])])
    batch = [
        msg(broker_factory.key("person.born"), "ok-1"),
        msg(broker_factory.key("nobody.listens"), "lost-1"),
        msg(broker_factory.key("person.died"), "ok-2"),
    ]
    with pytest.raises(Unroutable) as info:
        broker.publish(EXCHANGE_EVENTS, batch)
    assert info.value.message_ids == ["lost-1"]
    assert broker.queue_depth(queue) == 2


def test_publish_returns_only_when_durably_stored(broker_factory: BrokerTarget) -> None:
    publisher = broker_factory.make()
    queue = one_queue(broker_factory, publisher)
    batch = [
        Message(
            body=f'{{"n": {i}}}'.encode(),
            routing_key=broker_factory.key("person.verified"),
            message_id=f"m-{i}",
            headers={"n": i, "source": "contract", "nested": {"ok": True, "list": [1, "a"]}},
            content_type="application/json",
        )
        for i in range(50)
    ]
    publisher.publish(EXCHANGE_EVENTS, batch)
    publisher.close()

    # A different connection sees every message, with everything the publisher set.
    reader = broker_factory.make()
    assert reader.queue_depth(queue) == 50
    got = take(reader.open_consumer(queue, prefetch=20), 50)
    assert [d.message for d in got] == batch
    assert all(d.attempts == 1 and not d.redelivered for d in got)
    assert reader.queue_depth(queue) == 0


def test_bad_input_is_refused_before_anything_is_sent(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker)
    key = broker_factory.key("x")
    with pytest.raises(BrokerError, match="unknown exchange"):
        broker.publish("sr.nope", [msg(key, "a")])
    with pytest.raises(BrokerError, match="message_id"):
        broker.publish(EXCHANGE_EVENTS, [msg(key, "good"), msg(key, "")])
    with pytest.raises(BrokerError, match="header 'blob'"):
        broker.publish(EXCHANGE_EVENTS, [msg(key, "b", blob=b"\x00")])
    with pytest.raises(BrokerError, match="wildcard"):
        broker.publish(EXCHANGE_EVENTS, [msg(broker_factory.key("*"), "c")])
    broker.publish(EXCHANGE_EVENTS, [])  # an empty batch is a no-op
    assert broker.queue_depth(queue) == 0  # the good message of a refused batch was not sent


def test_unknown_queue_is_reported(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    broker.declare_topology([])
    missing = broker_factory.queue("never-declared")
    with pytest.raises(QueueNotFound):
        broker.queue_depth(missing)
    with pytest.raises(QueueNotFound):
        broker.purge(missing)
    with pytest.raises(QueueNotFound):
        broker.open_consumer(missing)
    # The broker stays usable after the error.
    assert broker.queue_depth(QUEUE_DEAD) >= 0


def test_depth_counts_ready_messages_and_purge_empties(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker)
    broker.publish(EXCHANGE_EVENTS, [msg(broker_factory.key("a"), f"d-{i}") for i in range(7)])
    assert broker.queue_depth(queue) == 7
    consumer = broker.open_consumer(queue, prefetch=1)
    held = consumer.receive(timeout=5)
    assert held is not None
    assert depth_soon(broker, queue, 6) == 6  # the one in flight is not ready
    assert broker.purge(queue) == 6
    assert broker.queue_depth(queue) == 0
    consumer.requeue(held)  # in flight survived the purge
    consumer.close()
    assert depth_soon(broker, queue, 1) == 1


def test_requeue_and_close_give_messages_back(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker)
    broker.publish(EXCHANGE_EVENTS, [msg(broker_factory.key("a"), f"r-{i}") for i in range(3)])
    consumer = broker.open_consumer(queue, prefetch=3)
    first = [consumer.receive(timeout=5) for _ in range(3)]
    assert [d.message.message_id for d in first if d] == ["r-0", "r-1", "r-2"]
    consumer.requeue(first[0])
    again = consumer.receive(timeout=5)
    assert again is not None
    assert (again.message.message_id, again.redelivered, again.attempts) == ("r-0", True, 2)
    with pytest.raises(BrokerError):
        consumer.ack(first[0])  # settled already: refused, not silently ignored
    consumer.close()  # r-0 (again), r-1 and r-2 unacked: all go back

    back = take(broker_factory.make().open_consumer(queue, prefetch=10), 3)
    assert sorted(d.message.message_id for d in back) == ["r-0", "r-1", "r-2"]
    assert all(d.redelivered for d in back)
    assert {d.message.message_id: d.attempts for d in back} == {"r-0": 3, "r-1": 2, "r-2": 2}


def test_ack_many_settles_exactly_the_batch(broker_factory: BrokerTarget) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker)
    broker.publish(EXCHANGE_EVENTS, [msg(broker_factory.key("a"), f"b-{i}") for i in range(6)])
    consumer = broker.open_consumer(queue, prefetch=6)
    held = [consumer.receive(timeout=5) for _ in range(6)]
    assert all(held)
    consumer.ack_many(held[:3])  # a contiguous batch: one round trip on RabbitMQ
    consumer.ack_many([held[3], held[5]])  # a gap: settled one by one
    with pytest.raises(BrokerError):
        consumer.ack_many([held[0]])  # already settled
    consumer.close()  # only b-4 was never acked
    back = take(broker_factory.make().open_consumer(queue, prefetch=10), 1)
    assert [d.message.message_id for d in back] == ["b-4"]
    assert depth_soon(broker, queue, 0) == 0


def test_dead_letter_after_delivery_limit(
    broker_factory: BrokerTarget, dead_queue_empty: None
) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker, limit=3)
    key = broker_factory.key("poison")
    broker.publish(EXCHANGE_EVENTS, [msg(key, "poison-1", b"{bad", origin="test")])
    consumer = broker.open_consumer(queue, prefetch=1)
    seen = []
    for _ in range(3):
        delivery = consumer.receive(timeout=5)
        assert delivery is not None
        seen.append((delivery.attempts, delivery.redelivered))
        consumer.requeue(delivery)
    assert seen == [(1, False), (2, True), (3, True)]
    assert consumer.receive(timeout=0.3) is None  # not delivered a fourth time
    assert depth_soon(broker, queue, 0) == 0

    dead = take(broker.open_consumer(QUEUE_DEAD), 1)
    assert [d.message.message_id for d in dead] == ["poison-1"]
    copy = dead[0].message
    assert copy.body == b"{bad"
    assert copy.routing_key == key
    assert dead[0].exchange == EXCHANGE_DEAD
    headers = dict(copy.headers)
    assert headers["origin"] == "test"
    assert headers[H_ERROR_CLASS] == "DeliveryLimitExceeded"
    assert "3 deliveries" in headers[H_REASON]
    assert headers[H_ORIGINAL_QUEUE] == queue
    assert headers[H_ORIGINAL_EXCHANGE] == EXCHANGE_EVENTS
    assert headers[H_ORIGINAL_ROUTING_KEY] == key
    assert headers[H_ATTEMPTS] == 3
    datetime.fromisoformat(headers[H_LAST_FAILURE])
    assert "x-death" not in headers and "x-delivery-count" not in headers


def test_dead_letter_with_reason(broker_factory: BrokerTarget, dead_queue_empty: None) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker)
    key = broker_factory.key("person.born")
    broker.publish(EXCHANGE_EVENTS, [msg(key, "bad-1", b"{}", trace="t-1"), msg(key, "good-1")])
    consumer = broker.open_consumer(queue, prefetch=2)
    bad = consumer.receive(timeout=5)
    assert bad is not None and bad.message.message_id == "bad-1"
    first = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    reason = DeadLetterReason(
        error_class="SchemaViolation",
        reason="'birth_date' is required at /person",
        attempts=bad.attempts,
        first_failure=first,
        last_failure=first + timedelta(seconds=9),
    )
    consumer.dead_letter(bad, reason)
    good = consumer.receive(timeout=5)
    assert good is not None and good.message.message_id == "good-1"  # the rest proceeds
    consumer.ack(good)
    consumer.close()
    assert broker.queue_depth(queue) == 0

    (dead,) = take(broker.open_consumer(QUEUE_DEAD), 1)
    assert dead.message.message_id == "bad-1"
    assert dead.message.body == b"{}"
    assert dict(dead.message.headers) == {
        "trace": "t-1",
        H_ERROR_CLASS: "SchemaViolation",
        H_REASON: "'birth_date' is required at /person",
        H_ORIGINAL_EXCHANGE: EXCHANGE_EVENTS,
        H_ORIGINAL_ROUTING_KEY: key,
        H_ORIGINAL_QUEUE: queue,
        H_ATTEMPTS: 1,
        H_FIRST_FAILURE: first.isoformat(),
        H_LAST_FAILURE: (first + timedelta(seconds=9)).isoformat(),
    }


@pytest.mark.parametrize("prefetch", [1, 25])
def test_per_subject_order_is_kept(broker_factory: BrokerTarget, prefetch: int) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker)
    subjects = ["hh-a", "hh-b", "hh-c", "hh-d"]
    sent = [
        msg(broker_factory.key("household.updated"), f"o-{i}", subject=subjects[i % 7 % 4], seq=i)
        for i in range(200)
    ]
    for start in range(0, len(sent), 40):
        broker.publish(EXCHANGE_EVENTS, sent[start : start + 40])
    got = take(broker.open_consumer(queue, prefetch=prefetch), 200)
    per_subject: dict[str, list[int]] = defaultdict(list)
    for delivery in got:
        per_subject[delivery.message.headers["subject"]].append(delivery.message.headers["seq"])
    assert set(per_subject) == set(subjects)
    for seqs in per_subject.values():
        assert seqs == sorted(seqs)
    if prefetch == 1:
        assert [d.message.headers["seq"] for d in got] == list(range(200))


def test_duplicates_keep_their_id_so_consumers_can_be_idempotent(
    broker_factory: BrokerTarget,
) -> None:
    broker = broker_factory.make()
    queue = one_queue(broker_factory, broker)
    batch = [msg(broker_factory.key("person.died"), f"i-{i}", seq=i) for i in range(20)]
    broker.publish(EXCHANGE_EVENTS, batch)
    broker.publish(EXCHANGE_EVENTS, batch[5:15])  # a relay retrying after a lost confirm
    got = take(broker.open_consumer(queue, prefetch=10), 30)
    applied: dict[str, Message] = {}
    for delivery in got:
        if delivery.message.message_id in applied:
            assert applied[delivery.message.message_id] == delivery.message
            continue
        applied[delivery.message.message_id] = delivery.message
    assert sorted(applied) == sorted(m.message_id for m in batch)


def test_declare_topology_is_idempotent_and_refuses_changed_policy(
    broker_factory: BrokerTarget,
) -> None:
    broker = broker_factory.make()
    queue = broker_factory.queue("policy")
    spec = QueueSpec(queue, [(EXCHANGE_EVENTS, broker_factory.key("#"))], delivery_limit=4)
    broker.declare_topology([spec])
    broker.publish(EXCHANGE_EVENTS, [msg(broker_factory.key("a"), "kept")])
    broker.declare_topology([spec])  # again: nothing changes, nothing is lost
    assert broker.queue_depth(queue) == 1
    changed = QueueSpec(queue, spec.bindings, delivery_limit=9)
    with pytest.raises(BrokerError):
        broker_factory.make().declare_topology([changed])
    assert broker_factory.make().queue_depth(queue) == 1
