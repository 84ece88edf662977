"""The worker runtime over real brokers: bad input, duplicates, retries, shutdown, start-up.

Brokers: the embedded queue in the test's database (SQLite and PostgreSQL) and RabbitMQ.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.broker import Broker, Message
from hub.broker.base import (
    EXCHANGE_EVENTS,
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_LAST_FAILURE,
    H_ORIGINAL_ROUTING_KEY,
    H_REASON,
    Delivery,
    QueueSpec,
)
from hub.workers import idempotency
from hub.workers.errors import PermanentError, TransientError
from hub.workers.handlers import HandlerContext, HandlerRegistry, HandlerResult
from hub.workers.middleware import Middleware
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from registry_core.db import make_engine, make_session_factory
from standards.cloudevents import build_event, to_json_bytes
from tests.integration.pipeline_support import (
    BACKENDS,
    Target,
    add_events,
    effects,
    ensure_effects_table,
    ensure_tables,
    unpublished,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    ensure_tables(engine)
    ensure_effects_table(engine)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def event_message(target: Target, n: int, *, event_id: str | None = None) -> Message:
    event = build_event(
        type=target.key("created"),
        source="/test",
        subject=f"person/{n}",
        data={"n": n},
        id=event_id,
    )
    return Message(to_json_bytes(event), target.key("created"), event["id"])


def record_effect(event: dict[str, Any], ctx: HandlerContext) -> None:
    assert ctx.session is not None
    ctx.session.execute(effects.insert().values(message_id=event["id"], n=event["data"]["n"]))


def applied(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return [row.n for row in session.execute(select(effects.c.n).order_by(effects.c.id))]


def applied_count(db_url: str) -> int:
    """Count effects without taking SQLite's write lock (``make_engine`` begins every
    transaction with BEGIN IMMEDIATE), so polling never waits behind a busy worker."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(effects)) or 0)
    finally:
        engine.dispose()


class Running:
    """A ConsumerRuntime on a thread, stopped (gracefully) at the end of the ``with``."""

    def __init__(self, runtime: ConsumerRuntime) -> None:
        self.runtime = runtime
        self.thread = threading.Thread(target=runtime.run)

    def __enter__(self) -> ConsumerRuntime:
        self.thread.start()
        return self.runtime

    def __exit__(self, *exc: object) -> None:
        self.runtime.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def make_runtime(
    target: Target,
    sessions: sessionmaker[Session],
    handlers: HandlerRegistry,
    queue: QueueSpec,
    **options: Any,
) -> ConsumerRuntime:
    options.setdefault(
        "retry", RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.01)
    )
    options.setdefault("receive_timeout", 0.1)
    return ConsumerRuntime(
        "test-consumer",
        queue,
        target.broker,
        sessions,
        handlers,
        topology=[queue, target.dead_queue()],
        **options,
    )


def dead_letters(broker: Broker, queue: str, expected: int) -> list[Delivery]:
    consumer = broker.open_consumer(queue, prefetch=50)
    found: list[Delivery] = []
    try:
        deadline = time.monotonic() + 10
        while len(found) < expected and time.monotonic() < deadline:
            delivery = consumer.receive(0.2)
            if delivery is not None:
                found.append(delivery)
                consumer.ack(delivery)
    finally:
        consumer.close()
    return found


@BACKENDS
def test_invalid_envelopes_are_dead_lettered_and_the_next_message_still_processed(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue, dead = target.events_queue(), target.dead_queue()
    broker = target.broker()
    broker.declare_topology([queue, dead])
    key = target.key("created")
    wrong_time = build_event(type=key, source="/test", subject="s", data={"n": 9})
    wrong_time["time"] = "yesterday"
    broker.publish(
        EXCHANGE_EVENTS,
        [
            event_message(target, 1),
            Message(b"\x00not json at all", key, "garbage-1"),
            Message(to_json_bytes(wrong_time), key, wrong_time["id"]),
            event_message(target, 2),
        ],
    )
    handlers = HandlerRegistry("test")
    handlers.register(target.key("#"), record_effect)
    with Running(make_runtime(target, sessions, handlers, queue)) as runtime:
        wait_until(lambda: runtime.status.processed == 2 and runtime.status.dead_lettered == 2)
    assert applied(sessions) == [1, 2]

    letters = dead_letters(broker, dead.name, 2)
    by_id = {d.message.message_id: d.message.headers for d in letters}
    assert by_id["garbage-1"][H_ERROR_CLASS] == "InvalidEnvelope"
    assert "at $: not JSON" in by_id["garbage-1"][H_REASON]
    assert by_id[wrong_time["id"]][H_ERROR_CLASS] == "InvalidEnvelope"
    assert "$.time" in by_id[wrong_time["id"]][H_REASON]
    for headers in by_id.values():
        assert headers[H_ORIGINAL_ROUTING_KEY] == key
        assert headers[H_ATTEMPTS] == 1
        assert headers[H_FIRST_FAILURE] <= headers[H_LAST_FAILURE]
    assert broker.queue_depth(queue.name) == 0


@BACKENDS
def test_a_duplicate_message_has_its_effect_once(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue = target.events_queue()
    broker = target.broker()
    broker.declare_topology([queue, target.dead_queue()])
    handlers = HandlerRegistry("test")
    handlers.register(target.key("created"), record_effect)
    same = str(uuid.uuid4())
    # Twice in one batch, then once more after the first copies were handled.
    broker.publish(
        EXCHANGE_EVENTS,
        [event_message(target, 1, event_id=same), event_message(target, 1, event_id=same)],
    )
    with Running(make_runtime(target, sessions, handlers, queue)) as runtime:
        wait_until(lambda: runtime.status.processed + runtime.status.duplicates == 2)
        broker.publish(EXCHANGE_EVENTS, [event_message(target, 1, event_id=same)])
        wait_until(lambda: runtime.status.duplicates == 2)
    assert applied(sessions) == [1]
    assert runtime.status.processed == 1
    assert broker.queue_depth(queue.name) == 0


@BACKENDS
def test_unknown_routing_key_is_dead_lettered_with_no_handler(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue, dead = target.events_queue(), target.dead_queue()
    broker = target.broker()
    broker.declare_topology([queue, dead])
    handlers = HandlerRegistry("test")
    handlers.register(target.key("updated"), record_effect)
    broker.publish(EXCHANGE_EVENTS, [event_message(target, 5)])
    with Running(make_runtime(target, sessions, handlers, queue)) as runtime:
        wait_until(lambda: runtime.status.dead_lettered == 1)
    (letter,) = dead_letters(broker, dead.name, 1)
    assert letter.message.headers[H_ERROR_CLASS] == "NoHandler"
    assert "no handler" in letter.message.headers[H_REASON]
    assert applied(sessions) == []


@BACKENDS
def test_transient_failures_are_retried_and_the_effect_applies_once(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue = target.events_queue()
    broker = target.broker()
    broker.declare_topology([queue, target.dead_queue()])
    calls: list[int] = []

    def flaky(event: dict[str, Any], ctx: HandlerContext) -> None:
        record_effect(event, ctx)  # written, then rolled back with the failed attempt
        calls.append(event["data"]["n"])
        if event["data"]["n"] == 2 and calls.count(2) <= 3:
            raise TransientError("partner busy")

    handlers = HandlerRegistry("test")
    handlers.register(target.key("created"), flaky)
    broker.publish(EXCHANGE_EVENTS, [event_message(target, n) for n in (1, 2, 3)])
    with Running(make_runtime(target, sessions, handlers, queue)) as runtime:
        wait_until(lambda: runtime.status.processed == 3)
    assert applied(sessions) == [1, 2, 3]  # order kept, each once
    assert runtime.status.failed >= 2
    assert runtime.status.dead_lettered == 0


@BACKENDS
def test_persistent_transient_failure_is_requeued_then_dead_lettered_at_the_limit(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue, dead = target.events_queue(delivery_limit=2), target.dead_queue()
    broker = target.broker()
    broker.declare_topology([queue, dead])

    def down(_event: dict[str, Any], _ctx: HandlerContext) -> None:
        raise ConnectionError("partner unreachable")

    handlers = HandlerRegistry("test")
    handlers.register(target.key("created"), down)
    broker.publish(EXCHANGE_EVENTS, [event_message(target, 7)])
    with Running(
        make_runtime(target, sessions, handlers, queue, prefetch=1, batch_size=1)
    ) as runtime:
        wait_until(lambda: runtime.status.dead_lettered == 1)
    assert runtime.status.requeued == 1
    (letter,) = dead_letters(broker, dead.name, 1)
    headers = letter.message.headers
    assert headers[H_ERROR_CLASS] == "RetriesExhausted"
    assert "ConnectionError" in headers[H_REASON]
    assert headers[H_ATTEMPTS] == 2
    assert headers[H_FIRST_FAILURE] < headers[H_LAST_FAILURE]


@BACKENDS
def test_permanent_error_is_dead_lettered_without_blocking_the_queue(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue, dead = target.events_queue(), target.dead_queue()
    broker = target.broker()
    broker.declare_topology([queue, dead])

    def picky(event: dict[str, Any], ctx: HandlerContext) -> None:
        record_effect(event, ctx)
        if event["data"]["n"] == 2:
            raise PermanentError("household_size must be a number", error_class="MappingError")

    handlers = HandlerRegistry("test")
    handlers.register(target.key("created"), picky)
    broker.publish(EXCHANGE_EVENTS, [event_message(target, n) for n in (1, 2, 3)])
    with Running(make_runtime(target, sessions, handlers, queue)) as runtime:
        wait_until(lambda: runtime.status.processed == 2 and runtime.status.dead_lettered == 1)
    assert applied(sessions) == [1, 3]  # the failed message's own write was undone
    (letter,) = dead_letters(broker, dead.name, 1)
    assert letter.message.headers[H_ERROR_CLASS] == "MappingError"
    assert letter.message.headers[H_REASON] == "household_size must be a number"


CHILD = textwrap.dedent(
    """
    import signal, sys, time
    from hub.broker import QueueSpec, connect
    from hub.broker.base import EXCHANGE_EVENTS
    from hub.workers.handlers import HandlerRegistry
    from hub.workers.runtime import ConsumerRuntime
    from registry_core.db import make_engine, make_session_factory
    from tests.integration.pipeline_support import effects

    broker_url, db_url, queue, prefix = sys.argv[1:5]
    sessions = make_session_factory(make_engine(db_url))

    def slow_effect(event, ctx):
        ctx.session.execute(effects.insert().values(message_id=event["id"], n=event["data"]["n"]))
        time.sleep(0.002)

    handlers = HandlerRegistry("child")
    handlers.register(prefix + ".#", slow_effect)
    spec = QueueSpec(queue, [(EXCHANGE_EVENTS, prefix + ".#")])
    runtime = ConsumerRuntime(
        "sigterm-test", spec, lambda: connect(broker_url, wait_for=10), sessions, handlers,
        topology=[spec], batch_size=20, prefetch=40,
    )
    signal.signal(signal.SIGTERM, lambda *_: runtime.stop())
    runtime.run()
    print("processed", runtime.status.processed, flush=True)
    """
)


@pytest.mark.parametrize(
    ("db_url", "target"),
    [
        ("sqlite", "embedded"),
        pytest.param("postgresql", "amqp", marks=[pytest.mark.postgres, pytest.mark.amqp]),
    ],
    indirect=True,
    ids=["embedded-sqlite", "amqp-postgresql"],
)
def test_sigterm_mid_stream_loses_nothing_and_applies_nothing_twice(
    target: Target, sessions: sessionmaker[Session], db_url: str
) -> None:
    count = 300
    queue = target.events_queue()
    broker = target.broker()
    broker.declare_topology([queue, target.dead_queue()])
    broker.publish(EXCHANGE_EVENTS, [event_message(target, n) for n in range(count)])
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, target.url, db_url, queue.name, target.prefix],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_until(lambda: applied_count(db_url) >= 50, timeout=30)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    stopped_at = len(applied(sessions))
    assert stopped_at < count, "the worker finished before the signal; nothing was tested"
    assert int(out.split()[-1]) == stopped_at  # it acknowledged exactly what it committed

    handlers = HandlerRegistry("test")
    handlers.register(target.key("#"), record_effect)
    runtime = make_runtime(target, sessions, handlers, queue)
    runtime.name = "sigterm-test"  # the same consumer, restarted
    with Running(runtime):
        wait_until(lambda: applied_count(db_url) >= count, timeout=30)
        time.sleep(0.3)  # anything more would be a duplicate effect
    numbers = applied(sessions)
    assert sorted(numbers) == list(range(count))  # every message once: none lost, none twice


def test_purge_bounds_the_processed_message_store(sessions: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        for n in range(10):
            session.add(
                idempotency.ProcessedMessage(
                    consumer="a", message_id=f"m{n}", processed_at=now - timedelta(hours=n)
                )
            )
        session.add(
            idempotency.ProcessedMessage(
                consumer="b", message_id="old", processed_at=now - timedelta(days=30)
            )
        )
    with sessions() as session, session.begin():
        # Older than 7.5 hours: m8, m9 for "a"; "old" for "b".
        assert idempotency.purge(session, max_age=timedelta(hours=7.5), max_count=100) == 3
    with sessions() as session, session.begin():
        assert idempotency.purge(session, "a", max_count=3) == 5
        kept = session.scalars(
            select(idempotency.ProcessedMessage.message_id).order_by(
                idempotency.ProcessedMessage.message_id
            )
        ).all()
    assert kept == ["m0", "m1", "m2"]
    with sessions() as session:
        assert idempotency.known_ids(session, "a", ["m0", "m5", "zz"]) == {"m0"}
        assert session.scalar(select(func.count()).select_from(idempotency.ProcessedMessage)) == 3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_worker_waits_visibly_for_an_unreachable_broker_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    from hub.dbschema import upgrade_to_head

    upgrade_to_head(f"sqlite:///{tmp_path / 'var' / 'srhub.db'}")  # workers never migrate
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SRHUB_DATA_DIR": str(tmp_path / "var"),
        "SRHUB_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{_closed_port()}/%2F",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "worker", "dispatch"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert child.stderr is not None
        deadline = time.monotonic() + 30
        while sum("waiting_for_broker" in line for line in seen) < 2:
            assert time.monotonic() < deadline, "no waiting status logged:\n" + "".join(seen)
            line = child.stderr.readline()
            assert line, "the worker exited instead of waiting for the broker:\n" + "".join(seen)
            seen.append(line)
        assert child.poll() is None
        child.send_signal(signal.SIGTERM)
        _out, rest = child.communicate(timeout=20)
        err = "".join(seen) + rest
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0
    assert "waiting_for_broker" in err
    assert err.count("waiting_for_broker") >= 2  # it kept trying
    assert "stopped" in err
    assert "guest:guest" not in err  # no credentials in the log


def test_relay_worker_command_publishes_the_outbox(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    target = Target("embedded", db_url)
    try:
        queue = target.events_queue()
        target.broker().declare_topology([queue])
        add_events(sessions, target, 40)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SRHUB_DATA_DIR": str(tmp_path / "var"),
            "SRHUB_DATABASE_URL": db_url,
        }
        env.pop("SRHUB_AMQP_URL", None)
        child = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "relay", "--batch-size", "15"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: unpublished(sessions) == 0, timeout=30)
            child.send_signal(signal.SIGTERM)
            _out, err = child.communicate(timeout=20)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0, err
        assert "processed=40" in err
        assert target.broker().queue_depth(queue.name) == 40
    finally:
        target.cleanup()


def test_srhub_run_starts_relay_and_consumers_in_process(
    sessions: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    from hub.assembly import start_workers
    from hub.runtime import HubRuntime
    from hub.settings import load_settings

    settings = load_settings(
        env={"SRHUB_DATABASE_URL": db_url, "SRHUB_DATA_DIR": str(tmp_path / "var")}
    )
    runtime = HubRuntime(settings)
    target = Target("embedded", db_url)
    group = start_workers(runtime, ("relay", "dispatch"))
    try:
        # An exact routing key: it wins over the "#" the real dispatch handlers register.
        dispatch = group.workers["dispatch"]
        assert isinstance(dispatch, ConsumerRuntime)
        dispatch.handlers.register(target.key("created"), record_effect)
        add_events(sessions, target, 20)
        try:
            wait_until(lambda: applied_count(db_url) == 20, timeout=30)
        except AssertionError:
            pytest.fail(
                f"statuses {group.statuses()}; unpublished {unpublished(sessions)}; "
                f"applied {applied(sessions)} / {applied_count(db_url)}"
            )
    finally:
        group.stop()
        target.cleanup()
        runtime.close()
    statuses = group.statuses()
    assert {s["state"] for s in statuses.values()} == {"stopped"}
    assert statuses["relay"]["processed"] == 20
    assert statuses["dispatch"]["processed"] == 20
    assert unpublished(sessions) == 0
    assert sorted(applied(sessions)) == list(range(20))


class Recording(Middleware):
    """Every hook call, in order: (hook, message n, outcome or error class)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []

    def before(self, ctx: HandlerContext, event: dict[str, Any]) -> None:
        self.calls.append(("before", event["data"]["n"], ""))

    def after(self, ctx: HandlerContext, event: dict[str, Any], result: HandlerResult) -> None:
        assert ctx.consumer == "test-consumer" and ctx.services == "the services"
        self.calls.append(("after", event["data"]["n"], f"{result.outcome}{list(result.notes)}"))

    def failed(self, ctx: HandlerContext, event: dict[str, Any], error: BaseException) -> None:
        self.calls.append(("failed", event["data"]["n"], type(error).__name__))


class Broken(Middleware):
    def after(self, ctx: HandlerContext, event: dict[str, Any], result: HandlerResult) -> None:
        raise RuntimeError("a monitoring bug")


@BACKENDS
def test_middleware_sees_each_committed_outcome_once_and_every_failure(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue, dead = target.events_queue(), target.dead_queue()
    broker = target.broker()
    broker.declare_topology([queue, dead])
    runs = {"n": 0}

    def handler(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult | None:
        assert ctx.services == "the services"  # what the factory gave the registry
        n = event["data"]["n"]
        if n == 2:
            raise PermanentError("n=2 can never be applied", "Refused")
        if n == 3:
            runs["n"] += 1
            if runs["n"] == 1:
                raise TransientError("busy once")
        record_effect(event, ctx)
        return HandlerResult("review", ("a note",)) if n == 4 else None

    handlers = HandlerRegistry("test", services="the services")
    handlers.register(target.key("created"), handler)
    same = str(uuid.uuid4())
    messages = [event_message(target, 1, event_id=same), event_message(target, 1, event_id=same)]
    messages += [event_message(target, n) for n in (2, 3, 4)]
    broker.publish(EXCHANGE_EVENTS, messages)
    recording = Recording()
    runtime = make_runtime(target, sessions, handlers, queue, middleware=[Broken(), recording])
    with Running(runtime):
        wait_until(lambda: runtime.status.processed == 3 and runtime.status.dead_lettered == 1)
    after = [c for c in recording.calls if c[0] == "after"]
    # Each committed message once (the duplicate runs no handler), with what it reported; a
    # broken middleware before it changed nothing.
    assert sorted(after) == [
        ("after", 1, "applied[]"),
        ("after", 3, "applied[]"),
        ("after", 4, "review['a note']"),
    ]
    failed = [c for c in recording.calls if c[0] == "failed"]
    assert ("failed", 2, "PermanentError") in failed and ("failed", 3, "TransientError") in failed
    assert {c[1] for c in recording.calls if c[0] == "before"} == {1, 2, 3, 4}
    assert sorted(applied(sessions)) == [1, 3, 4]


@pytest.mark.parametrize(("db_url", "target"), [("sqlite", "embedded")], indirect=True)
def test_unexpected_handler_error_is_dead_lettered_without_its_text(
    target: Target, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    queue, dead = target.events_queue(), target.dead_queue()
    broker = target.broker()
    broker.declare_topology([queue, dead])

    def buggy(event: dict[str, Any], ctx: HandlerContext) -> None:
        if event["data"]["n"] == 1:
            personal = f"UIN {4711 * 10000 + 815}"
            raise KeyError(personal)  # a bug whose text carries personal data
        record_effect(event, ctx)

    handlers = HandlerRegistry("test")
    handlers.register(target.key("created"), buggy)
    broker.publish(EXCHANGE_EVENTS, [event_message(target, n) for n in (1, 2)])
    with Running(make_runtime(target, sessions, handlers, queue)) as runtime:
        wait_until(lambda: runtime.status.processed == 1 and runtime.status.dead_lettered == 1)
    assert applied(sessions) == [2]
    (letter,) = dead_letters(broker, dead.name, 1)
    assert letter.message.headers[H_ERROR_CLASS] == "KeyError"
    assert "47110815" not in letter.message.headers[H_REASON]
    assert "47110815" not in caplog.text
    assert "buggy" in caplog.text  # the log says where it failed


@BACKENDS
def test_handlers_with_external_effects_run_once_per_message_id(
    target: Target, sessions: sessionmaker[Session]
) -> None:
    queue = target.events_queue()
    broker = target.broker()
    broker.declare_topology([queue, target.dead_queue()])
    sent: list[int] = []
    calls = {"n": 0}

    def webhook(event: dict[str, Any], ctx: HandlerContext) -> None:
        assert ctx.session is None  # no transaction is held open across the external call
        calls["n"] += 1
        if event["data"]["n"] == 3 and calls["n"] < 5:
            raise TransientError("receiver busy")
        sent.append(event["data"]["n"])

    handlers = HandlerRegistry("test")
    handlers.register(target.key("created"), webhook, transactional=False)
    same = str(uuid.uuid4())
    messages = [event_message(target, 1, event_id=same), event_message(target, 1, event_id=same)]
    messages += [event_message(target, n) for n in (2, 3, 4)]
    broker.publish(EXCHANGE_EVENTS, messages)
    with Running(make_runtime(target, sessions, handlers, queue)) as runtime:
        wait_until(lambda: runtime.status.processed == 4)
    assert sent == [1, 2, 3, 4]
    assert runtime.status.duplicates == 1
    with sessions() as session:
        assert idempotency.known_ids(session, "test-consumer", [same]) == {same}
