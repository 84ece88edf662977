"""A broker that is down when the hub starts: wait and retry with a visible status, never an
exit loop; give up only when told to, and refuse at once what retrying cannot fix."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pika
import pytest
from sqlalchemy.engine import make_url

from hub.broker import EXCHANGE_EVENTS, BrokerError, ConnectionClosed, Message, QueueSpec, connect
from tests.contract.conftest import AmqpSession, _ensure_broker_tables
from tests.contract.tcp_forward import Forwarder, free_port

SERVERS = [
    pytest.param("embedded-postgresql", marks=pytest.mark.postgres),
    pytest.param("amqp", marks=pytest.mark.amqp),
]


@dataclass
class Server:
    kind: str
    url_for: Callable[[int, str], str]  # URL for a port and a password ("" = the real one)
    upstream: tuple[str, int]  # the real server


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> Server:
    if request.param == "embedded-postgresql":
        real = make_url(request.getfixturevalue("postgres_schema_ready"))
        _ensure_broker_tables(real.render_as_string(hide_password=False))

        def pg_url(port: int, password: str) -> str:
            return real.set(port=port, password=password or None).render_as_string(
                hide_password=False
            )

        return Server(request.param, pg_url, (real.host or "127.0.0.1", real.port or 5432))
    session: AmqpSession = request.getfixturevalue("amqp_session")
    params = pika.URLParameters(session.url)

    def amqp_url(port: int, password: str) -> str:
        user = quote(params.credentials.username, safe="")
        secret = quote(password or params.credentials.password, safe="")
        vhost = quote(params.virtual_host, safe="")
        return f"amqp://{user}:{secret}@127.0.0.1:{port}/{vhost}"

    return Server(request.param, amqp_url, (params.host, params.port))


def test_waits_with_visible_status_until_the_broker_comes_up(server: Server) -> None:
    port = free_port()
    broker = connect(server.url_for(port, ""), wait_for=30)
    outcome: list[object] = []

    def start_worker() -> None:  # the worker's own thread owns the broker
        try:
            broker.declare_topology([])
            outcome.append(broker.queue_depth("sr.dead.letters"))
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=start_worker)
    worker.start()
    deadline = time.monotonic() + 10
    while broker.status().attempts < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = broker.status()
    assert waiting.state == "waiting"
    assert waiting.attempts >= 2
    assert waiting.last_error
    assert waiting.since is not None
    assert worker.is_alive() and not outcome  # still trying: no exit, no crash

    forwarder = Forwarder(port, server.upstream)  # the broker "comes up"
    try:
        worker.join(30)
        assert outcome and isinstance(outcome[0], int), outcome
        assert broker.status().state == "connected"
    finally:
        broker.close()
        forwarder.close()
    assert broker.status().state == "closed"


def test_gives_up_after_wait_for_without_leaking_the_password(server: Server) -> None:
    broker = connect(server.url_for(free_port(), "s3cret-pw"), wait_for=1.0)
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        broker.publish(EXCHANGE_EVENTS, [Message(b"x", "a.b", "m-1")])
    assert 0.9 <= time.monotonic() - started < 10
    status = broker.status()
    assert status.state == "waiting" and status.attempts >= 2
    assert "s3cret-pw" not in status.last_error
    broker.close()


def test_wrong_credentials_fail_at_once_with_a_reason(server: Server) -> None:
    broker = connect(server.url_for(server.upstream[1], "wrong-password"), wait_for=30)
    started = time.monotonic()
    try:
        broker.declare_topology([QueueSpec("never", [(EXCHANGE_EVENTS, "x")])])
    except BrokerError as exc:
        assert not isinstance(exc, ConnectionClosed)
        assert "wrong-password" not in str(exc)
        assert time.monotonic() - started < 10  # not retried for the whole wait_for
        assert broker.status().state == "failed"
        assert broker.status().last_error == str(exc)
    else:
        # The local PostgreSQL may trust loopback connections and ignore the password.
        assert server.kind != "amqp", "RabbitMQ accepted a wrong password"
    finally:
        broker.close()
