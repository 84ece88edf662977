"""The broker contract: every method a backend must provide, with its promises.

Two backends implement it and pass one contract suite (tests/contract): ``amqp`` (RabbitMQ via
pika) and ``embedded`` (durable queue tables in the SQL database). Anything that works on one and
not the other is a bug in the backend, not in the caller.

Semantics both backends keep:
- Exchanges are topic exchanges: ``sr.inbound``, ``sr.events``, ``sr.dead``. Binding patterns use
  ``*`` (exactly one word) and ``#`` (zero or more words), words separated by ``.``.
- ``publish`` returns only when every message is durably stored (publisher confirms / committed
  transaction). A message that matches no queue raises ``Unroutable`` (``mandatory``).
- Delivery is at least once. A delivery that is neither acked nor rejected before the consumer
  goes away (crash, closed connection, visibility timeout on the embedded queue) is delivered
  again with ``redelivered=True`` and a higher ``attempts``.
- After ``QueueSpec.delivery_limit`` failed deliveries a message is moved to ``sr.dead`` (poison
  message protection) instead of being delivered again.
- ``dead_letter`` moves one delivery to ``sr.dead`` with headers that say why (see
  ``DeadLetterReason``) and removes it from its queue, atomically from the caller's view: the
  dead-lettered copy is confirmed before the original is acked.
- Ordering: messages of one queue are delivered in publish order to a single consumer with
  prefetch 1; with larger prefetch, order holds except for redeliveries.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EXCHANGE_INBOUND = "sr.inbound"
EXCHANGE_EVENTS = "sr.events"
EXCHANGE_DEAD = "sr.dead"
EXCHANGES = (EXCHANGE_INBOUND, EXCHANGE_EVENTS, EXCHANGE_DEAD)

QUEUE_INGEST = "sr.ingest"
QUEUE_DEAD = "sr.dead.letters"


def delivery_queue_name(subscription: str) -> str:
    """Name of the queue that feeds one subscription: ``sr.deliver.<subscription>``."""
    return f"sr.deliver.{subscription}"


# Header names written on dead-lettered messages (both backends use exactly these).
H_ERROR_CLASS = "x-sr-error-class"
H_REASON = "x-sr-reason"
H_ORIGINAL_EXCHANGE = "x-sr-original-exchange"
H_ORIGINAL_ROUTING_KEY = "x-sr-original-routing-key"
H_ORIGINAL_QUEUE = "x-sr-original-queue"
H_ATTEMPTS = "x-sr-attempts"
H_FIRST_FAILURE = "x-sr-first-failure"
H_LAST_FAILURE = "x-sr-last-failure"


@dataclass(frozen=True)
class Message:
    """What is published: an opaque body (a CloudEvents JSON document) plus routing metadata."""

    body: bytes
    routing_key: str
    message_id: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    content_type: str = "application/cloudevents+json"


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message from a queue to a consumer.

    ``tag`` is backend-specific and only meaningful to the consumer that received it.
    ``attempts`` counts deliveries of this message to any consumer, this one included (1 on the
    first delivery).
    """

    message: Message
    queue: str
    exchange: str
    tag: Any
    redelivered: bool
    attempts: int


@dataclass(frozen=True)
class QueueSpec:
    """A durable queue and the topic bindings that feed it."""

    name: str
    bindings: Sequence[tuple[str, str]]  # (exchange, binding pattern)
    delivery_limit: int = 5
    dead_letter: bool = True  # poison messages go to sr.dead rather than being dropped


@dataclass(frozen=True)
class DeadLetterReason:
    """Why a message was dead-lettered; becomes the ``x-sr-*`` headers of the dead copy."""

    error_class: str  # e.g. "SchemaViolation", "MappingError", "PartnerUnavailable"
    reason: str  # human-readable, actionable, free of personal identifiers
    attempts: int
    first_failure: datetime
    last_failure: datetime

    @classmethod
    def now(
        cls, error_class: str, reason: str, attempts: int, first_failure: datetime | None = None
    ) -> DeadLetterReason:
        """A reason whose last failure is now (and the first too, unless given)."""
        moment = datetime.now(UTC)
        return cls(error_class, reason, attempts, first_failure or moment, moment)


@dataclass(frozen=True)
class BrokerStatus:
    """Where a broker connection stands, for health checks and operators.

    ``state`` is ``connected``, ``waiting`` (the broker is unreachable; retrying with backoff
    since ``since``), ``failed`` (refused for a reason retrying cannot fix, e.g. credentials;
    ``last_error`` says which) or ``closed`` (not connected yet, or closed by us).
    ``last_error`` never contains credentials.
    """

    state: str
    since: datetime | None
    last_error: str = ""
    attempts: int = 0


class Consumer(abc.ABC):
    """A consumer on one queue, bound to the thread that opened it."""

    @abc.abstractmethod
    def receive(self, timeout: float) -> Delivery | None:
        """Wait up to ``timeout`` seconds for the next delivery; ``None`` if none came.

        Raises ``ConnectionClosed`` if the connection is lost; unacked deliveries then return
        to the queue.
        """

    @abc.abstractmethod
    def ack(self, delivery: Delivery) -> None:
        """Settle the delivery: the message is removed from the queue for good."""

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Settle several deliveries; backends override it to do so in one round trip."""
        for delivery in deliveries:
            self.ack(delivery)

    @abc.abstractmethod
    def requeue(self, delivery: Delivery) -> None:
        """Give the delivery back for another attempt (counts towards the delivery limit)."""

    @abc.abstractmethod
    def dead_letter(self, delivery: Delivery, reason: DeadLetterReason) -> None:
        """Move the delivery to ``sr.dead`` with the reason headers, then settle it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop consuming; unacked deliveries return to the queue."""


class Broker(abc.ABC):
    """A connection to one broker. Not thread-safe: one Broker per thread (pika's rule)."""

    @abc.abstractmethod
    def declare_topology(self, queues: Sequence[QueueSpec] = ()) -> None:
        """Declare the three exchanges, the dead-letter queue and ``queues`` with their
        bindings. Idempotent; called again after every reconnect."""

    @abc.abstractmethod
    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        """Publish a batch of persistent messages and wait until all are confirmed.

        Raises ``PublishNotConfirmed`` (some not stored), ``Unroutable`` (no queue matched),
        ``ConnectionClosed`` (connection lost: nothing is known about the unconfirmed ones).
        """

    @abc.abstractmethod
    def open_consumer(self, queue: str, prefetch: int = 10) -> Consumer:
        """Start consuming ``queue`` with at most ``prefetch`` unacked deliveries in flight."""

    @abc.abstractmethod
    def queue_depth(self, queue: str) -> int:
        """Messages ready for delivery in ``queue``. Raises ``QueueNotFound``.

        Deliveries in flight (received, not yet settled) are not counted: AMQP 0-9-1 reports
        only ready messages (``queue.declare-ok``), and both backends must agree. It is a
        snapshot: RabbitMQ applies acks and requeues asynchronously, so a settlement shows in
        the depth shortly after the call that made it, not necessarily at once.
        """

    @abc.abstractmethod
    def purge(self, queue: str) -> int:
        """Delete every ready message of ``queue``; return how many. For tests and operators."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; idempotent."""

    def status(self) -> BrokerStatus:
        """The connection state for health checks; safe to read from another thread."""
        return BrokerStatus(state="connected", since=None)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
