"""Fixtures of the broker contract suite: one ``broker_factory`` per backend.

Every contract test runs three times: on the embedded queue in SQLite, on the embedded queue in
PostgreSQL, and on the machine's real RabbitMQ. A test only speaks the ``Broker`` contract, so
a backend that behaves differently fails it.

RabbitMQ isolation: several test runs may share the server, so each session gets a virtual
host of its own (``rabbitmqctl add_vhost``; deleted afterwards) when ``rabbitmqctl`` works, and
falls back to the URL's vhost otherwise. Within the session every test uses queue names and
routing-key prefixes of its own, and deletes its queues at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.broker import QUEUE_DEAD, Broker, connect
from tests.services import amqp_url_or_skip, unique_name

BACKENDS = [
    "embedded-sqlite",
    pytest.param("embedded-postgresql", marks=pytest.mark.postgres),
    pytest.param("amqp", marks=pytest.mark.amqp),
]

EMBEDDED_VISIBILITY = 2.0  # seconds; short so a killed consumer's lease runs out quickly


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False
    )


@dataclass
class AmqpSession:
    url: str
    vhost: str
    own_vhost: bool  # False: sharing the URL's vhost (rabbitmqctl unavailable)


@pytest.fixture(scope="session")
def amqp_session() -> Iterator[AmqpSession]:
    base = amqp_url_or_skip()
    params = pika.URLParameters(base)
    if shutil.which("rabbitmqctl"):
        vhost = unique_name("srhub_test")
        made = _rabbitmqctl("add_vhost", vhost)
        perms = (
            _rabbitmqctl(
                "set_permissions", "-p", vhost, params.credentials.username, ".*", ".*", ".*"
            )
            if made.returncode == 0
            else made
        )
        if made.returncode == 0 and perms.returncode == 0:
            user = quote(params.credentials.username, safe="")
            password = quote(params.credentials.password, safe="")
            url = f"amqp://{user}:{password}@{params.host}:{params.port}/{quote(vhost, safe='')}"
            try:
                yield AmqpSession(url=url, vhost=vhost, own_vhost=True)
            finally:
                _rabbitmqctl("delete_vhost", vhost)
            return
        if made.returncode == 0:
            _rabbitmqctl("delete_vhost", vhost)
    yield AmqpSession(url=base, vhost=params.virtual_host, own_vhost=False)


@dataclass
class BrokerTarget:
    """One backend under test: how to open brokers on it and how to disturb it."""

    kind: str
    url: str
    options: dict[str, Any]
    disrupt: Callable[[], None]
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    _brokers: list[Broker] = field(default_factory=list)
    _queues: set[str] = field(default_factory=set)

    def make(self, **overrides: Any) -> Broker:
        broker = connect(self.url, **{**self.options, **overrides})
        self._brokers.append(broker)
        return broker

    def queue(self, name: str) -> str:
        """A queue name private to this test."""
        full = f"{self.prefix}.{name}"
        self._queues.add(full)
        return full

    def key(self, rest: str) -> str:
        """A routing key private to this test (bindings use ``<prefix>.#``-style patterns)."""
        return f"{self.prefix}.{rest}"

    def cleanup(self) -> None:
        for broker in self._brokers:
            # Best effort: the vhost or the database goes away anyway.
            with contextlib.suppress(Exception):
                broker.close()
        if self.kind == "amqp" and self._queues:
            admin = connect(self.url, wait_for=5)
            try:
                for name in self._queues:
                    admin.delete_queue(name)  # type: ignore[attr-defined]
            finally:
                admin.close()


def _ensure_broker_tables(url: str) -> None:
    # The suite must not depend on when the broker tables reach the migrations: create them
    # if missing (a no-op when the schema already has them).
    from hub.broker.embedded_tables import BrokerBinding, BrokerMessage, BrokerQueue
    from registry_core.db import Base, make_engine

    engine = make_engine(url)
    try:
        Base.metadata.create_all(
            engine,
            tables=[BrokerQueue.__table__, BrokerBinding.__table__, BrokerMessage.__table__],
        )
    finally:
        engine.dispose()


def _terminate_postgres_sessions(url: str) -> None:
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        admin.dispose()


def _amqp_target(session: AmqpSession) -> BrokerTarget:
    def close_vhost_connections() -> None:
        if not session.own_vhost:
            pytest.skip("closing connections needs a vhost of our own (rabbitmqctl)")
        result = _rabbitmqctl("close_all_connections", "-p", session.vhost, "srhub contract test")
        assert result.returncode == 0, result.stderr

    return BrokerTarget("amqp", session.url, {"wait_for": 10}, close_vhost_connections)


def _make_target(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> BrokerTarget:
    if kind == "embedded-sqlite":
        from hub.dbschema import upgrade_to_head

        url = f"sqlite:///{(tmp_path / 'broker.db').as_posix()}"
        upgrade_to_head(url)
        _ensure_broker_tables(url)
        # SQLite has no server connection to drop; the recovery test still checks the counts.
        return BrokerTarget(
            kind, url, {"visibility_timeout": EMBEDDED_VISIBILITY, "wait_for": 10}, lambda: None
        )
    if kind == "embedded-postgresql":
        url = request.getfixturevalue("postgres_schema_ready")
        _ensure_broker_tables(url)
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        with engine.begin() as conn:
            conn.execute(
                text("TRUNCATE sr_broker_messages, sr_broker_bindings, sr_broker_queues CASCADE")
            )
        engine.dispose()
        return BrokerTarget(
            kind,
            url,
            {"visibility_timeout": EMBEDDED_VISIBILITY, "wait_for": 10},
            lambda: _terminate_postgres_sessions(url),
        )
    return _amqp_target(request.getfixturevalue("amqp_session"))


@pytest.fixture(params=BACKENDS)
def broker_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerTarget]:
    """The backend under test; brokers it made are closed and its AMQP queues deleted after."""
    target = _make_target(request.param, request, tmp_path)
    try:
        yield target
    finally:
        target.cleanup()


@pytest.fixture
def amqp_target(amqp_session: AmqpSession) -> Iterator[BrokerTarget]:
    """RabbitMQ only, for the promises that only the AMQP backend can be asked about."""
    target = _amqp_target(amqp_session)
    try:
        yield target
    finally:
        target.cleanup()


@pytest.fixture
def dead_queue_empty(broker_factory: BrokerTarget) -> None:
    """``sr.dead.letters`` is shared within an AMQP session vhost: start each test empty."""
    broker = broker_factory.make()
    broker.declare_topology([])
    broker.purge(QUEUE_DEAD)


def depth_soon(broker: Broker, queue: str, expected: int, within: float = 5.0) -> int:
    """The queue depth once it equals ``expected`` or ``within`` seconds passed.

    RabbitMQ applies acks and requeues asynchronously (see ``Broker.queue_depth``); a depth
    read right after a settlement may lag, so tests poll briefly instead of sleeping.
    """
    deadline = time.monotonic() + within
    while True:
        depth = broker.queue_depth(queue)
        if depth == expected or time.monotonic() >= deadline:
            return depth
        time.sleep(0.05)
