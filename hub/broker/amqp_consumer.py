"""The RabbitMQ consumer: one channel of the broker's connection (same thread, as pika
requires), manual acks, and RabbitMQ's own dead-lettering (``x-death``) read as the contract's
``x-sr-*`` headers."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pika.exceptions as pe

from standards.timeutil import utcnow

from .base import EXCHANGE_DEAD, H_REASON, Consumer, DeadLetterReason, Delivery, Message
from .errors import BrokerError, ConnectionClosed, QueueNotFound
from .messages import DELIVERY_LIMIT_ERROR, dead_letter_headers, delivery_dead_letter_headers

if TYPE_CHECKING:
    from .amqp import AmqpBroker

log = logging.getLogger(__name__)

BROKER_HEADERS = (
    "x-delivery-count",
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)

# Connection-level failures: the connection is gone and must be rebuilt.
CONNECTION_ERRORS = (
    pe.AMQPConnectionError,
    pe.ConnectionWrongStateError,
    ConnectionError,
    OSError,
)


def _x_death_headers(headers: dict[str, Any], limits: dict[str, int]) -> dict[str, Any]:
    """Translate RabbitMQ's ``x-death`` record into the contract's ``x-sr-*`` headers, so a
    message dead-lettered by the queue itself (delivery limit) reads like one dead-lettered by
    a consumer on either backend."""
    deaths = headers.get("x-death")
    if not deaths or headers.get(H_REASON):
        return headers
    death = deaths[0]
    queue = str(death.get("queue", ""))
    reason = str(death.get("reason", ""))
    when = death.get("time")
    keys = death.get("routing-keys") or [""]
    limit = limits.get(queue)
    if reason == "delivery_limit":
        error_class = DELIVERY_LIMIT_ERROR
        text = (
            f"not acknowledged after {limit if limit else 'too many'} deliveries (queue "
            f"delivery limit {limit if limit else 'unknown'}); consumers kept failing or "
            "crashing on it"
        )
    else:
        error_class = f"Broker{reason.title().replace('_', '')}"
        text = f"RabbitMQ dead-lettered the message: {reason}"
    moment = when if isinstance(when, datetime) else utcnow()
    original = Message(b"", str(keys[0]), "x-death", headers)
    return dead_letter_headers(
        original,
        DeadLetterReason(error_class, text, limit or 0, moment, moment),
        exchange=str(death.get("exchange", "")),
        queue=queue,
    )


class AmqpConsumer(Consumer):
    """A consumer on its own channel of the broker's connection (same thread)."""

    def __init__(self, broker: AmqpBroker, queue: str, prefetch: int) -> None:
        self.broker = broker
        self.queue = queue
        self._buffer: deque[Delivery] = deque()
        self._held: set[int] = set()
        self._cancelled = False
        self._closed = False
        try:
            conn = broker.connection()
            self.generation = broker.generation
            self.channel = conn.channel()
            self.channel.basic_qos(prefetch_count=prefetch)
            self.channel.add_on_cancel_callback(self._on_cancel)
            self.tag = self.channel.basic_consume(queue, self._on_message, auto_ack=False)
        except pe.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                raise QueueNotFound(f"queue {queue!r} has not been declared") from exc
            raise BrokerError(f"cannot consume {queue!r}: {exc.reply_text}") from exc
        except CONNECTION_ERRORS as exc:
            raise broker.lost(exc) from exc

    def _on_cancel(self, _frame: Any) -> None:
        self._cancelled = True

    def _on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        headers = dict(properties.headers or {})
        count = headers.get("x-delivery-count", 0)
        attempts = (int(count) if isinstance(count, int) else 0) + 1
        limits = {name: spec.delivery_limit for name, spec in self.broker._declared.items()}
        headers = _x_death_headers(headers, limits)
        for name in BROKER_HEADERS:
            headers.pop(name, None)
        message = Message(
            body=bytes(body),
            routing_key=method.routing_key,
            message_id=properties.message_id or "",
            headers=headers,
            content_type=properties.content_type or "application/octet-stream",
        )
        self._buffer.append(
            Delivery(
                message=message,
                queue=self.queue,
                exchange=method.exchange,
                tag=method.delivery_tag,
                redelivered=bool(method.redelivered) or attempts > 1,
                attempts=attempts,
            )
        )

    def _usable(self) -> None:
        if self._closed:
            raise BrokerError("this consumer has been closed")
        if self.generation != self.broker.generation or not self.channel.is_open:
            raise ConnectionClosed(
                "the connection this consumer used was lost; its unacked deliveries went back "
                "to the queue. Open a new consumer."
            )
        if self._cancelled:
            raise QueueNotFound(f"RabbitMQ cancelled the consumer of {self.queue!r} (deleted?)")

    def receive(self, timeout: float) -> Delivery | None:
        self._usable()
        if not self._buffer:
            try:
                self.broker.pump(
                    lambda: bool(self._buffer) or self._cancelled or not self.channel.is_open,
                    timeout,
                )
            except CONNECTION_ERRORS as exc:
                raise self.broker.lost(exc) from exc
        if not self._buffer:
            self._usable()
            return None
        delivery = self._buffer.popleft()
        self._held.add(delivery.tag)
        return delivery

    def _settle(self, delivery: Delivery, action: Callable[[int], None]) -> None:
        self._usable()
        if delivery.tag not in self._held:
            raise BrokerError(
                f"delivery {delivery.tag!r} is not held by this consumer (already settled, "
                "or received by another consumer)"
            )
        try:
            action(delivery.tag)
        except (*CONNECTION_ERRORS, pe.ChannelWrongStateError) as exc:
            raise self.broker.lost(exc) from exc
        self._held.discard(delivery.tag)

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, lambda tag: self.channel.basic_ack(tag))

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Settle a batch in one ``basic.ack`` with ``multiple`` when the batch is exactly every
        held delivery up to its highest tag (the usual case for a committed batch); otherwise
        one ack each. Halves the consumer's cost per message."""
        self._usable()
        tags = {d.tag for d in deliveries}
        if not tags <= self._held:
            raise BrokerError("a delivery in the batch is not held by this consumer")
        highest = max(tags, default=None)
        if highest is None:
            return
        covered = {tag for tag in self._held if tag <= highest}
        if covered != tags:
            for delivery in deliveries:
                self.ack(delivery)
            return
        try:
            self.channel.basic_ack(highest, multiple=True)
        except (*CONNECTION_ERRORS, pe.ChannelWrongStateError) as exc:
            raise self.broker.lost(exc) from exc
        self._held -= tags

    def requeue(self, delivery: Delivery) -> None:
        # A quorum queue counts this return towards x-delivery-limit.
        self._settle(delivery, lambda tag: self.channel.basic_nack(tag, requeue=True))

    def dead_letter(self, delivery: Delivery, reason: DeadLetterReason) -> None:
        self._usable()
        if delivery.tag not in self._held:
            raise BrokerError(f"delivery {delivery.tag!r} is not held by this consumer")
        dead = Message(
            body=delivery.message.body,
            routing_key=delivery.message.routing_key,
            message_id=delivery.message.message_id,
            headers=delivery_dead_letter_headers(delivery, reason),
            content_type=delivery.message.content_type,
        )
        # The dead copy is confirmed before the original is acked: a crash in between leaves
        # a duplicate, never a loss.
        self.broker.publish(EXCHANGE_DEAD, [dead])
        self.ack(delivery)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._held.clear()
        if self.generation == self.broker.generation and self.channel.is_open:
            try:
                self.channel.close()  # unacked deliveries go back to the queue
            except Exception as exc:  # the connection is already gone: same outcome
                log.debug("closing consumer channel failed: %s", exc)
