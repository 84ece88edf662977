"""Helpers shared by the relay and worker-runtime tests: real brokers, outbox rows, effects.

The brokers are the real backends: the embedded queue in the test's own database (SQLite or
PostgreSQL) and RabbitMQ. On RabbitMQ each test session gets a virtual host of its own when
``rabbitmqctl`` works; every test also uses queue names and routing keys with a private prefix,
so nothing collides even on a shared virtual host.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pika
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.broker import Broker, QueueSpec, connect
from hub.broker.base import EXCHANGE_DEAD, EXCHANGE_EVENTS
from hub.workers.runtime import ConsumerRuntime
from registry_core.db import Base
from registry_core.models import OutboxEvent
from tests.services import unique_name


def ensure_tables(engine: Engine) -> None:
    """Create the tables these tests need if the schema lacks them (no-op otherwise)."""
    from hub.broker.embedded_tables import BrokerBinding, BrokerMessage, BrokerQueue
    from hub.workers.idempotency import ProcessedMessage

    Base.metadata.create_all(
        engine,
        tables=[
            OutboxEvent.__table__,
            ProcessedMessage.__table__,
            BrokerQueue.__table__,
            BrokerBinding.__table__,
            BrokerMessage.__table__,
        ],
    )


@contextmanager
def own_amqp_vhost(base_url: str) -> Iterator[str]:
    """An AMQP URL on a fresh virtual host (deleted afterwards), or ``base_url`` if
    ``rabbitmqctl`` is not usable here."""
    if not shutil.which("rabbitmqctl"):
        yield base_url
        return
    params = pika.URLParameters(base_url)
    vhost = unique_name("srhub_pipeline")

    def ctl(*args: str) -> bool:
        done = subprocess.run(
            ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
        )
        return done.returncode == 0

    if not ctl("add_vhost", vhost):
        yield base_url
        return
    try:
        user = params.credentials.username
        if not ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"):
            yield base_url
            return
        password = quote(params.credentials.password, safe="")
        yield (
            f"amqp://{quote(user, safe='')}:{password}@{params.host}:{params.port}/"
            f"{quote(vhost, safe='')}"
        )
    finally:
        ctl("delete_vhost", vhost)


@dataclass
class Target:
    """One backend under test plus a private namespace of queue names and routing keys."""

    kind: str  # "embedded" or "amqp"
    url: str  # amqp:// URL, or the database URL of the embedded queue
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    _brokers: list[Broker] = field(default_factory=list)
    _queues: set[str] = field(default_factory=set)

    def broker(self, **options: Any) -> Broker:
        options.setdefault("wait_for", 10)
        if self.kind == "embedded":
            options.setdefault("visibility_timeout", 5.0)
        broker = connect(self.url, **options)
        self._brokers.append(broker)
        return broker

    def key(self, rest: str) -> str:
        return f"{self.prefix}.{rest}"

    def events_queue(self, name: str = "events", delivery_limit: int = 5) -> QueueSpec:
        """A queue fed by this test's events on ``sr.events``."""
        full = f"{self.prefix}.{name}"
        self._queues.add(full)
        return QueueSpec(full, [(EXCHANGE_EVENTS, f"{self.prefix}.#")], delivery_limit)

    def dead_queue(self) -> QueueSpec:
        """A queue that collects this test's dead letters (they keep their routing key)."""
        full = f"{self.prefix}.dead"
        self._queues.add(full)
        return QueueSpec(full, [(EXCHANGE_DEAD, f"{self.prefix}.#")], 0, dead_letter=False)

    def cleanup(self) -> None:
        for broker in self._brokers:
            with contextlib.suppress(Exception):  # best effort: the vhost or database goes anyway
                broker.close()
        if self.kind == "amqp" and self._queues:
            admin = connect(self.url, wait_for=5)
            try:
                for name in self._queues:
                    admin.delete_queue(name)  # type: ignore[attr-defined]
            finally:
                admin.close()


def add_events(
    sessions: sessionmaker[Session],
    target: Target,
    count: int,
    *,
    subjects: int = 10,
    event: str = "created",
    start: int = 0,
) -> list[str]:
    """Insert ``count`` outbox rows (round-robin over ``subjects``); return their event ids."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    routing_key = target.key(event)
    with sessions() as session, session.begin():
        session.add_all(
            OutboxEvent(
                event_id=event_id,
                type=f"org.socialregistry.{routing_key}",
                routing_key=routing_key,
                source="/srhub/registry",
                subject=f"person/{(start + n) % subjects}",
                time=datetime.now(UTC),
                data={"n": start + n},
            )
            for n, event_id in enumerate(ids)
        )
    return ids


def unpublished(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
            or 0
        )


# A table for handler effects, outside the project's metadata: one row per effect, so an effect
# applied twice shows up as two rows.
effects_metadata = MetaData()
effects = Table(
    "test_pipeline_effects",
    effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False),
    Column("n", Integer, nullable=False),
)


def ensure_effects_table(engine: Engine) -> None:
    effects_metadata.drop_all(engine)
    effects_metadata.create_all(engine)


# ---------------------------------------------------------------- fixtures the pipeline tests share


# Broker x database: the embedded queue on both databases; RabbitMQ with SQLite for the
# idempotency store (the store's PostgreSQL path is covered by the embedded runs).
BACKENDS = pytest.mark.parametrize(
    ("db_url", "target"),
    [
        ("sqlite", "embedded"),
        pytest.param("postgresql", "embedded", marks=pytest.mark.postgres),
        pytest.param("sqlite", "amqp", marks=pytest.mark.amqp),
    ],
    indirect=True,
    ids=["embedded-sqlite", "embedded-postgresql", "amqp"],
)


def run_until_handled(
    runtime: ConsumerRuntime, count: int, broker: Broker | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """Run ``runtime`` in a thread until it has handled ``count`` deliveries (processed,
    duplicates and dead-lettered together) and, given ``broker``, its queue is empty; stop it
    and return its final status snapshot."""
    thread = threading.Thread(target=runtime.run)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            snap = runtime.status.snapshot()
            handled = snap["processed"] + snap["duplicates"] + snap["dead_lettered"]
            empty = broker is None or broker.queue_depth(runtime.queue.name) == 0
            if handled >= count and empty:
                break
            assert time.monotonic() < deadline, f"{runtime.name} did not finish in time"
            time.sleep(0.05)
    finally:
        runtime.stop()
        thread.join(30)
    return runtime.status.snapshot()
