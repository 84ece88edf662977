"""A hub given a RabbitMQ cluster's nodes (``SRHUB_AMQP_URL`` with several URLs) connects to
whichever answers: a node that is down costs a worker nothing. Needs RabbitMQ (skips without
``SRHUB_TEST_AMQP_URL``, fails under ``CI=true``)."""

from __future__ import annotations

import socket
import uuid

import pika

from hub.broker.amqp import AmqpBroker, describe_url, node_urls
from hub.broker.base import EXCHANGE_EVENTS, Message, QueueSpec
from tests.services import amqp_url_or_skip


def _dead_node(live: str) -> str:
    """The live URL's credentials and vhost on a port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    params = pika.URLParameters(live)
    credentials = f"{params.credentials.username}:{params.credentials.password}"
    vhost = live.rsplit("/", 1)[-1]
    return f"amqp://{credentials}@127.0.0.1:{port}/{vhost}"


def test_nodes_are_the_urls_between_commas() -> None:
    assert node_urls(" amqp://a/x ,amqp://b/x,, ") == ["amqp://a/x", "amqp://b/x"]
    described = describe_url("amqp://u:secret@a:5672/srhub,amqp://u:secret@b:5673/srhub")
    assert described == "amqp://a:5672/srhub,amqp://b:5673/srhub"
    assert "secret" not in described


def test_a_broker_with_one_node_down_connects_to_the_other_and_delivers() -> None:
    live = amqp_url_or_skip()
    dead = _dead_node(live)
    key = f"test-cluster-{uuid.uuid4().hex[:8]}"
    queue = QueueSpec(f"test.cluster.{key}", [(EXCHANGE_EVENTS, key)])
    for order in ((dead, live), (live, dead)):  # the dead node first, then second
        broker = AmqpBroker(",".join(order), wait_for=30, spread_nodes=False)
        assert broker.nodes[0].port == pika.URLParameters(order[0]).port
        try:
            broker.declare_topology([queue])
            broker.publish(EXCHANGE_EVENTS, [Message(b"{}", key, uuid.uuid4().hex)])
            assert broker.purge(queue.name) == 1
        finally:
            broker.close()
    cleanup = AmqpBroker(live, wait_for=10)
    try:
        cleanup.connection().channel().queue_delete(queue.name)
    finally:
        cleanup.close()
