"""The outbox relay against real brokers and databases.

Every test runs on SQLite and PostgreSQL (``db_url``) and, for the broker, on the embedded queue
in that database and on RabbitMQ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from hub.broker import Broker, QueueSpec, Unroutable
from hub.broker.base import (
    EXCHANGE_DEAD,
    EXCHANGE_EVENTS,
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_LAST_FAILURE,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_QUEUE,
    H_ORIGINAL_ROUTING_KEY,
    H_REASON,
)
from hub.pipeline.relay import OutboxRelay
from hub.workers.handlers import HandlerRegistry
from hub.workers.runtime import ConsumerRuntime
from registry_core.db import make_engine, make_session_factory
from registry_core.models import OutboxEvent
from standards.cloudevents import parse_envelope
from tests.integration.pipeline_support import (
    BACKENDS,
    Target,
    add_events,
    effects,
    ensure_effects_table,
    ensure_tables,
    unpublished,
)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    ensure_tables(engine)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def take_all(broker: Broker, queue: str, expected: int, timeout: float = 10.0) -> list[bytes]:
    """Receive and ack messages until ``expected`` arrived (or time is up); return the bodies."""
    consumer = broker.open_consumer(queue, prefetch=200)
    bodies: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(bodies) < expected and time.monotonic() < deadline:
            delivery = consumer.receive(0.2)
            if delivery is not None:
                bodies.append(delivery.message.body)
                assert delivery.message.message_id == parse_envelope(delivery.message.body)["id"]
                consumer.ack(delivery)
        # Nothing beyond what was expected may be waiting.
        extra = consumer.receive(0.3)
        assert extra is None, "more messages than events were published"
    finally:
        consumer.close()
    return bodies


@BACKENDS
def test_publishes_in_sequence_order_in_batches_and_marks_rows(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    ids = add_events(sessions, target, 25, subjects=3)
    broker = target.broker()
    queue = target.events_queue()
    broker.declare_topology([queue])
    relay = OutboxRelay(sessions, broker, batch_size=10)

    assert relay.run_once() == 10
    assert unpublished(sessions) == 15
    assert relay.drain() == 15
    assert unpublished(sessions) == 0
    assert relay.run_once() == 0

    events = [parse_envelope(body) for body in take_all(broker, queue.name, 25)]
    assert [e["id"] for e in events] == ids
    assert [e["data"]["n"] for e in events] == list(range(25))
    assert {e["type"] for e in events} == {f"org.socialregistry.{target.key('created')}"}
    assert events[0]["subject"] == "person/0" and events[0]["source"] == "/srhub/registry"
    with sessions() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.sequence)).all()
        assert all(row.published_at is not None for row in rows)
        assert events[3]["time"].startswith(rows[3].time.strftime("%Y-%m-%dT%H:%M:%S"))


@BACKENDS
def test_crash_between_publish_and_mark_republishes_and_consumer_absorbs_it(
    target: Target, sessions: sessionmaker[Session], db_url: str
) -> None:
    count = 30
    ids = add_events(sessions, target, count)
    broker = target.broker()
    queue = target.events_queue()
    broker.declare_topology([queue])

    def crash(_published: list[str]) -> None:
        raise RuntimeError("simulated crash after the broker confirmed")

    with pytest.raises(RuntimeError):
        OutboxRelay(sessions, broker, batch_size=100, after_publish=crash).run_once()
    assert unpublished(sessions) == count  # not marked: it will be published again
    assert broker.queue_depth(queue.name) == count  # ...although the broker has them

    assert OutboxRelay(sessions, broker).drain() == count
    assert unpublished(sessions) == 0
    assert broker.queue_depth(queue.name) == 2 * count  # at least once: every event twice

    engine = make_engine(db_url)
    ensure_effects_table(engine)
    handlers = HandlerRegistry("test")

    def apply(event: dict, ctx) -> None:  # type: ignore[no-untyped-def]
        ctx.session.execute(effects.insert().values(message_id=event["id"], n=event["data"]["n"]))

    handlers.register(target.key("#"), apply)
    runtime = ConsumerRuntime("relay-test", queue, target.broker, sessions, handlers, topology=[])
    thread = threading.Thread(target=runtime.run)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            snap = runtime.status.snapshot()
            if snap["processed"] + snap["duplicates"] >= 2 * count:
                break
            time.sleep(0.05)
    finally:
        runtime.stop()
        thread.join(15)
    try:
        with engine.connect() as conn:
            applied = [row.message_id for row in conn.execute(select(effects.c.message_id))]
    finally:
        engine.dispose()
    assert sorted(applied) == sorted(ids)  # each effect exactly once
    assert runtime.status.duplicates == count


@BACKENDS
def test_two_relays_publish_each_event_once(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    count = 120
    add_events(sessions, target, count, subjects=7)
    queue = target.events_queue()
    target.broker().declare_topology([queue])
    errors: list[BaseException] = []

    def relay_loop() -> None:
        broker = target.broker()
        relay = OutboxRelay(sessions, broker, batch_size=15)
        try:
            deadline = time.monotonic() + 20
            while unpublished(sessions) and time.monotonic() < deadline:
                relay.run_once()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=relay_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert unpublished(sessions) == 0
    bodies = take_all(target.broker(), queue.name, count)
    assert len(bodies) == count
    assert len({parse_envelope(b)["id"] for b in bodies}) == count
    # Per-subject order survives two relays.
    per_subject: dict[str, list[int]] = {}
    for body in bodies:
        event = parse_envelope(body)
        per_subject.setdefault(event["subject"], []).append(event["data"]["n"])
    for numbers in per_subject.values():
        assert numbers == sorted(numbers)


@BACKENDS
def test_unroutable_batch_stays_unpublished(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    add_events(sessions, target, 5)
    broker = target.broker()
    broker.declare_topology([])  # no queue is bound to this test's routing keys
    with pytest.raises(Unroutable):
        OutboxRelay(sessions, broker).run_once()
    assert unpublished(sessions) == 5


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_later_event_waits_while_an_earlier_one_of_its_subject_is_claimed(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Row claims (FOR UPDATE SKIP LOCKED) are the PostgreSQL path."""
    target = Target("embedded", db_url)
    try:
        add_events(sessions, target, 9, subjects=3)  # subjects person/0,1,2 round-robin
        broker = target.broker()
        queue = target.events_queue()
        broker.declare_topology([queue])
        with sessions() as other, other.begin():
            first = other.scalar(select(func.min(OutboxEvent.sequence)))
            # Another relay has claimed the first event (subject person/0) and not finished.
            other.execute(
                text("SELECT sequence FROM outbox WHERE sequence = :s FOR UPDATE"), {"s": first}
            )
            assert OutboxRelay(sessions, broker).run_once() == 6
            bodies = take_all(broker, queue.name, 6)
            assert {parse_envelope(b)["subject"] for b in bodies} == {"person/1", "person/2"}
        assert OutboxRelay(sessions, broker).run_once() == 3
        later = [parse_envelope(b) for b in take_all(broker, queue.name, 3)]
        assert [e["data"]["n"] for e in later] == [0, 3, 6]
    finally:
        target.cleanup()


@BACKENDS
def test_malformed_row_goes_to_dead_letters_and_does_not_block_the_outbox(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    ids = add_events(sessions, target, 3)
    with sessions() as session, session.begin():
        row = session.scalars(select(OutboxEvent).where(OutboxEvent.event_id == ids[1])).one()
        row.type = "person.died"  # not an org.socialregistry.* type: consumers would refuse it
    broker = target.broker()
    queue = target.events_queue()
    dead = QueueSpec(f"{target.prefix}.outbox_dead", [(EXCHANGE_DEAD, "outbox.invalid")], 0)
    target._queues.add(dead.name)
    broker.declare_topology([queue, dead])

    assert OutboxRelay(sessions, broker).run_once() == 3
    assert unpublished(sessions) == 0
    delivered = [parse_envelope(b)["id"] for b in take_all(broker, queue.name, 2)]
    assert delivered == [ids[0], ids[2]]
    consumer = broker.open_consumer(dead.name)
    try:
        letter = None
        deadline = time.monotonic() + 5
        while letter is None and time.monotonic() < deadline:
            letter = consumer.receive(0.2)
        assert letter is not None
        assert letter.message.message_id == ids[1]
        assert letter.message.headers[H_ERROR_CLASS] == "InvalidOutboxEvent"
        assert "$.type" in letter.message.headers[H_REASON]
        assert letter.message.headers[H_ORIGINAL_ROUTING_KEY] == target.key("created")
        # the same x-sr-* set as every other dead letter (one builder), the outbox its origin
        assert letter.message.headers[H_ORIGINAL_EXCHANGE] == EXCHANGE_EVENTS
        assert letter.message.headers[H_ORIGINAL_QUEUE] == "outbox"
        assert letter.message.headers[H_ATTEMPTS] == 1
        assert letter.message.headers[H_FIRST_FAILURE] == letter.message.headers[H_LAST_FAILURE]
        consumer.ack(letter)
    finally:
        consumer.close()
