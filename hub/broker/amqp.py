"""The RabbitMQ backend (pika ``BlockingConnection``), for production and scale-out.

Topology: durable topic exchanges ``sr.inbound``, ``sr.events``, ``sr.dead``; every queue is a
quorum queue (replicated, durable) with

- ``x-delivery-limit`` = ``delivery_limit - 1``: RabbitMQ 3.10+ dead-letters a message when its
  delivery count *exceeds* the limit, i.e. after limit + 1 deliveries, and the contract promises
  dead-lettering after ``delivery_limit`` failed deliveries;
- ``x-dead-letter-exchange: sr.dead`` with ``x-dead-letter-strategy: at-least-once``: the
  default (at-most-once) strategy drops a dead-lettered message if the dead-letter queue cannot
  take it, and "nothing acknowledged is ever lost" rules that out. At-least-once requires
  ``x-overflow: reject-publish`` (no ``drop-head``), which is also what we want: a full queue
  refuses new messages with a publisher nack instead of silently dropping old ones.

Publishing pipelines confirms: a batch is written to the channel without waiting, and the
broker's ``basic.ack``/``basic.nack`` (possibly ``multiple``) and ``basic.return`` frames are
collected by callbacks on the channel implementation while we pump the connection. Waiting for
each message's confirm in turn is an order of magnitude slower: on the 2-core development
machine, 1 KiB persistent messages to a quorum queue went at about 400/s one confirm at a time
and 8,000-11,000/s pipelined in batches of 100-1,000 (tests/contract/test_broker_amqp.py
compares the two in one run). This reaches under pika's blocking wrapper
(``BlockingChannel._impl``, stable through pika 1.x); the contract suite fails loudly if a pika
upgrade changes it.

BlockingConnection answers heartbeats only while we are inside a pika call: a handler that
holds a delivery longer than the negotiated heartbeat (server default 60 s) loses the
connection, and the delivery goes back to the queue (at least once, never lost).

pika is not thread-safe: one ``AmqpBroker`` (one connection) per thread. A lost connection is
reported once as ``ConnectionClosed``; the next call reconnects with backoff and declares the
topology again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic

from .amqp_consumer import CONNECTION_ERRORS, AmqpConsumer
from .base import (
    EXCHANGE_DEAD,
    EXCHANGES,
    QUEUE_DEAD,
    Broker,
    BrokerStatus,
    Consumer,
    Message,
    QueueSpec,
)
from .connecting import ConnectionKeeper
from .errors import BrokerError, ConnectionClosed, PublishNotConfirmed, QueueNotFound, Unroutable
from .messages import (
    check_exchange,
    check_message,
)
from .topic import validate_pattern

log = logging.getLogger(__name__)

PERSISTENT = 2
PUBLISH_WINDOW = 1000  # messages written before the socket is pumped once


def _noop() -> None:
    return None


def _error_text(exc: BaseException) -> str:
    """pika wraps the socket error in its args and prints nothing by itself."""
    detail = str(exc) or "; ".join(repr(arg) for arg in exc.args)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def node_urls(url: str) -> list[str]:
    """The nodes of ``url``: one AMQP URL, or several separated by commas (the nodes of a
    RabbitMQ cluster, tried in turn when connecting, so losing one node loses no worker)."""
    return [part.strip() for part in url.split(",") if part.strip()]


def describe_url(url: str) -> str:
    """The URL (or URLs) without credentials, for logs and status."""
    described = []
    for node in node_urls(url):
        params = pika.URLParameters(node)
        vhost = quote(params.virtual_host, safe="")
        described.append(f"amqp://{params.host}:{params.port}/{vhost}")
    return ",".join(described)


def queue_arguments(spec: QueueSpec) -> dict[str, Any]:
    """The quorum-queue arguments that implement ``spec`` (see the module docstring)."""
    args: dict[str, Any] = {"x-queue-type": "quorum"}
    if spec.delivery_limit > 0:
        args["x-delivery-limit"] = spec.delivery_limit - 1
    if spec.dead_letter:
        args["x-dead-letter-exchange"] = EXCHANGE_DEAD
        args["x-dead-letter-strategy"] = "at-least-once"
        args["x-overflow"] = "reject-publish"
    return args


class _Confirms:
    """Book-keeping of one publish channel in confirm mode."""

    def __init__(self) -> None:
        self.next_tag = 0
        self.pending: OrderedDict[int, str] = OrderedDict()  # delivery tag -> message id
        self.nacked: list[str] = []
        self.returned: list[str] = []
        self.wake: Callable[[], None] = _noop

    def settle(self, tag: int, multiple: bool, ack: bool) -> None:
        if multiple:
            while self.pending:
                first = next(iter(self.pending))
                if first > tag:
                    break
                message_id = self.pending.pop(first)
                if not ack:
                    self.nacked.append(message_id)
        else:
            found = self.pending.pop(tag, None)
            if found is not None and not ack:
                self.nacked.append(found)
        if not self.pending:
            self.wake()


class AmqpBroker(Broker):
    """A connection to RabbitMQ implementing the broker contract."""

    def __init__(
        self,
        url: str,
        *,
        wait_for: float | None = None,
        confirm_timeout: float = 30.0,
        connection_name: str = "srhub",
        heartbeat: int | None = None,
        spread_nodes: bool = True,
    ) -> None:
        # A cluster's nodes, starting at a random one so the processes spread their
        # connections; pika tries the next node when one does not answer.
        self.nodes = [pika.URLParameters(node) for node in node_urls(url)]
        start = random.randrange(len(self.nodes)) if spread_nodes else 0
        self.nodes = self.nodes[start:] + self.nodes[:start]
        for params in self.nodes:
            params.client_properties = {"connection_name": connection_name}
            if heartbeat is not None:
                params.heartbeat = heartbeat
            if params.blocked_connection_timeout is None:
                # A broker under a memory or disk alarm blocks publishers; give up after a
                # while instead of hanging a relay for ever.
                params.blocked_connection_timeout = 120
        self.params = self.nodes[0]
        self.confirm_timeout = confirm_timeout
        self._keeper = ConnectionKeeper(describe_url(url), wait_for=wait_for)
        self._conn: BlockingConnection | None = None
        self._publish_channel: BlockingChannel | None = None
        self._confirms = _Confirms()
        self._admin_channel: BlockingChannel | None = None
        self._declared: dict[str, QueueSpec] = {}
        self._topology_declared = False
        self.generation = 0
        self._closed = False
        self._thread: int | None = None  # the thread that first used the broker owns it

    # -- connection ---------------------------------------------------------------------------

    def status(self) -> BrokerStatus:
        return self._keeper.status

    def _open(self) -> BlockingConnection:
        try:
            conn = BlockingConnection(self.nodes if len(self.nodes) > 1 else self.params)
        except (pe.ProbableAuthenticationError, pe.AuthenticationError) as exc:
            raise BrokerError(
                f"RabbitMQ at {self._keeper.describe} refused the credentials; check SRHUB_AMQP_URL"
            ) from exc
        except pe.ProbableAccessDeniedError as exc:
            raise BrokerError(
                f"RabbitMQ at {self._keeper.describe} denied access to the virtual host; "
                "check the vhost in SRHUB_AMQP_URL and the user's permissions"
            ) from exc
        except CONNECTION_ERRORS as exc:
            raise ConnectionClosed(f"cannot connect: {_error_text(exc)}") from exc
        try:
            if self._topology_declared:
                self._declare_on(conn, list(self._declared.values()))
        except CONNECTION_ERRORS as exc:
            raise ConnectionClosed(f"lost while declaring topology: {exc}") from exc
        return conn

    def connection(self) -> BlockingConnection:
        """The open connection, reconnecting (with backoff) if it was lost."""
        if self._closed:
            raise BrokerError("this broker has been closed")
        me = threading.get_ident()
        if self._thread is None:
            self._thread = me
        elif self._thread != me:
            # pika connections are not thread-safe; sharing one corrupts frames silently.
            raise BrokerError("an AmqpBroker was used from a second thread; open one per thread")
        if self._conn is not None and self._conn.is_open:
            return self._conn
        self._reset()
        self._conn = self._keeper.connect(self._open)
        self.generation += 1
        return self._conn

    def _reset(self) -> None:
        conn = self._conn
        self._conn = None
        self._publish_channel = None
        self._admin_channel = None
        self._confirms = _Confirms()
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception as exc:  # already broken: nothing more to release
                log.debug("closing a broken connection failed: %s", exc)

    def lost(self, exc: BaseException) -> ConnectionClosed:
        """Forget the connection after ``exc``; return the error to raise."""
        self._keeper.mark_lost(_error_text(exc))
        self._reset()
        return ConnectionClosed(f"connection to {self._keeper.describe} lost: {_error_text(exc)}")

    def pump(self, done: Callable[[], bool], timeout: float) -> bool:
        """Process I/O until ``done()`` or ``timeout`` seconds passed; return ``done()``."""
        conn = self.connection()
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            conn.process_data_events(time_limit=remaining)
        return True

    def wake(self) -> None:
        """Make the current ``process_data_events`` return: a zero-delay timer is a ready event
        for BlockingConnection, while callbacks on channel implementations are not."""
        if self._conn is not None and self._conn.is_open:
            self._conn.call_later(0, _noop)

    def _admin(self) -> BlockingChannel:
        conn = self.connection()
        if self._admin_channel is None or not self._admin_channel.is_open:
            self._admin_channel = conn.channel()
        return self._admin_channel

    # -- topology -----------------------------------------------------------------------------

    def _declare_on(self, conn: BlockingConnection, specs: list[QueueSpec]) -> None:
        channel = conn.channel()
        try:
            for exchange in EXCHANGES:
                channel.exchange_declare(exchange, "topic", durable=True)
            channel.queue_declare(QUEUE_DEAD, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_bind(QUEUE_DEAD, EXCHANGE_DEAD, "#")
            for spec in specs:
                channel.queue_declare(spec.name, durable=True, arguments=queue_arguments(spec))
                for exchange, pattern in spec.bindings:
                    channel.queue_bind(spec.name, exchange, pattern)
        except pe.ChannelClosedByBroker as exc:
            raise BrokerError(
                f"RabbitMQ refused the topology ({exc.reply_code} {exc.reply_text}); a queue "
                "that exists with other arguments must be drained and deleted to change them"
            ) from exc
        finally:
            if channel.is_open:
                channel.close()

    def declare_topology(self, queues: Sequence[QueueSpec] = ()) -> None:
        for spec in queues:
            if spec.delivery_limit < 0:
                raise BrokerError(f"queue {spec.name}: delivery_limit must be >= 0")
            for exchange, pattern in spec.bindings:
                check_exchange(exchange)
                validate_pattern(pattern)
        conn = self.connection()
        try:
            self._declare_on(conn, list(queues))
        except CONNECTION_ERRORS as exc:
            raise self.lost(exc) from exc
        for spec in queues:
            self._declared[spec.name] = spec
        self._topology_declared = True

    def delete_queue(self, queue: str) -> None:
        """Delete a queue and its messages (tests and operators)."""
        try:
            self._admin().queue_delete(queue)
        except CONNECTION_ERRORS as exc:
            raise self.lost(exc) from exc
        self._declared.pop(queue, None)

    # -- publishing ---------------------------------------------------------------------------

    def _publisher(self) -> tuple[BlockingChannel, _Confirms]:
        conn = self.connection()
        if self._publish_channel is not None and self._publish_channel.is_open:
            return self._publish_channel, self._confirms
        channel = conn.channel()
        confirms = _Confirms()
        confirms.wake = self.wake
        selected: list[bool] = []
        impl = channel._impl  # the pika.channel.Channel under the blocking wrapper

        def on_confirm(frame: Any) -> None:
            method = frame.method
            confirms.settle(
                method.delivery_tag, bool(method.multiple), isinstance(method, Basic.Ack)
            )

        def on_return(_ch: Any, _method: Any, properties: Any, _body: bytes) -> None:
            confirms.returned.append(properties.message_id or "")

        def on_select_ok(_frame: Any) -> None:
            selected.append(True)
            self.wake()

        impl.add_on_return_callback(on_return)
        impl.add_on_close_callback(lambda *_: self.wake())
        impl.confirm_delivery(ack_nack_callback=on_confirm, callback=on_select_ok)
        if not self.pump(lambda: bool(selected) or not channel.is_open, self.confirm_timeout):
            raise ConnectionClosed("RabbitMQ did not answer confirm.select in time")
        self._publish_channel, self._confirms = channel, confirms
        return channel, confirms

    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        check_exchange(exchange)
        for message in messages:
            check_message(message)
        if not messages:
            return
        try:
            channel, confirms = self._publisher()
            confirms.nacked.clear()
            confirms.returned.clear()
            impl = channel._impl
            conn = self.connection()
            for index, message in enumerate(messages, start=1):
                properties = pika.BasicProperties(
                    delivery_mode=PERSISTENT,
                    message_id=message.message_id,
                    content_type=message.content_type,
                    headers=dict(message.headers) if message.headers else None,
                )
                impl.basic_publish(
                    exchange, message.routing_key, bytes(message.body), properties, mandatory=True
                )
                confirms.next_tag += 1
                confirms.pending[confirms.next_tag] = message.message_id
                if index % PUBLISH_WINDOW == 0:
                    conn.process_data_events(time_limit=0)
            done = self.pump(
                lambda: not confirms.pending or not channel.is_open, self.confirm_timeout
            )
        except CONNECTION_ERRORS as exc:
            raise self.lost(exc) from exc
        except pe.ChannelWrongStateError as exc:
            self._publish_channel = None
            raise ConnectionClosed(f"publish channel closed: {exc}") from exc
        if not channel.is_open:
            self._publish_channel = None
            unconfirmed = list(confirms.pending.values())
            raise PublishNotConfirmed(
                "RabbitMQ closed the publish channel before confirming", unconfirmed
            )
        if not done:
            # Late confirms would refer to tags of this batch: start a fresh channel.
            self._drop_publish_channel()
            raise PublishNotConfirmed(
                f"{len(confirms.pending)} message(s) not confirmed within "
                f"{self.confirm_timeout:.0f}s",
                list(confirms.pending.values()),
            )
        if confirms.nacked:
            raise PublishNotConfirmed(
                f"RabbitMQ refused {len(confirms.nacked)} message(s) (nack)",
                list(confirms.nacked),
            )
        if confirms.returned:
            raise Unroutable(
                f"{len(confirms.returned)} message(s) to {exchange} matched no queue binding",
                list(confirms.returned),
            )

    def _drop_publish_channel(self) -> None:
        channel, self._publish_channel = self._publish_channel, None
        if channel is not None and channel.is_open:
            try:
                channel.close()
            except Exception as exc:  # nothing of value is left on it
                log.debug("closing the publish channel failed: %s", exc)

    # -- consuming, depth ---------------------------------------------------------------------

    def open_consumer(self, queue: str, prefetch: int = 10) -> Consumer:
        if prefetch < 1:
            raise BrokerError("prefetch must be at least 1")
        return AmqpConsumer(self, queue, prefetch)

    def queue_depth(self, queue: str) -> int:
        try:
            result = self._admin().queue_declare(queue, passive=True)
        except pe.ChannelClosedByBroker as exc:
            self._admin_channel = None
            if exc.reply_code == 404:
                raise QueueNotFound(f"queue {queue!r} has not been declared") from exc
            raise BrokerError(f"queue {queue!r}: {exc.reply_text}") from exc
        except CONNECTION_ERRORS as exc:
            raise self.lost(exc) from exc
        return int(result.method.message_count)

    def purge(self, queue: str) -> int:
        self.queue_depth(queue)  # QueueNotFound before purging: purge would also 404
        try:
            result = self._admin().queue_purge(queue)
        except CONNECTION_ERRORS as exc:
            raise self.lost(exc) from exc
        return int(result.method.message_count)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reset()
        self._keeper.mark_closed()


__all__ = ["AmqpBroker", "AmqpConsumer", "describe_url", "node_urls", "queue_arguments"]
