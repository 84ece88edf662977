"""AMQP-channel deliveries of a hub on the embedded queue: forwarded to the operator's RabbitMQ.

A hub on RabbitMQ (``SRHUB_AMQP_URL``) needs none of this: an AMQP subscriber consumes its
``sr.deliver.<code>`` queue on the hub's own broker. The embedded queue lives in the hub's
database and has no endpoint for outsiders, so there the operator names a RabbitMQ where AMQP
subscribers consume (``SRHUB_DELIVERY_AMQP_URL``) and one ``AmqpForwarder`` per active AMQP
subscription moves its deliveries across:

- the dispatch worker publishes to the embedded ``sr.deliver.<code>`` exactly as for any other
  subscription (consent and filters already applied there);
- the forwarder consumes that queue with prefetch 1 (order kept) and publishes each message,
  unchanged (body, headers, ``message_id``, content type), persistent, to the delivery broker's
  ``sr.events`` with routing key ``deliver.<code>``, which feeds only the durable quorum queue
  ``sr.deliver.<code>`` there: the same topology, queue arguments and message a subscriber gets
  from a hub on RabbitMQ, declared by the project's own RabbitMQ backend (``hub.broker.amqp``);
- only after RabbitMQ confirmed the message is it logged as ``queued`` and then acked on the
  embedded queue. Logged before the ack: a crash between the two leaves a redelivery that the
  log recognises (``duplicate``, not sent again), so each event is handed over once; an event
  already ``queued`` or ``delivered`` for the subscription is skipped unless re-driven;
- while the delivery broker is down (or refuses, or does not confirm) each attempt is logged as
  ``failed`` and retried with exponential backoff (tenacity, ``extra.notifications`` policy,
  as webhooks, through the same ``OutboundSender.send`` retry loop); when the attempts are used
  up the message goes to the embedded ``sr.dead`` with
  ``x-sr-error-class: DeliveryFailed`` and the reason (``srhub dead-letters replay`` sends it
  again). Nothing is dropped, and each subscription has its own thread and connections, so an
  outage holds up only the AMQP subscriptions, each its own queue.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from hub.broker import connect
from hub.broker.base import EXCHANGE_EVENTS, Broker, Consumer, Delivery, Message
from hub.broker.errors import BrokerError
from hub.runtime import HubRuntime
from hub.settings import Settings
from hub.subscriptions import service
from hub.subscriptions.delivery import DeliveryPolicy, SubscriptionSender
from hub.subscriptions.fanout import deliver_key
from hub.subscriptions.tables import DELIVERED, QUEUED
from hub.workers.outbound import Attempt, OutboundSender

log = logging.getLogger(__name__)


class AmqpForwarder(SubscriptionSender):
    """Consumes the embedded ``sr.deliver.<code>`` and republishes each message, confirmed,
    to ``sr.deliver.<code>`` on the delivery RabbitMQ (``settings.delivery_amqp_url``)."""

    kind: ClassVar[str] = "forward"
    done_statuses: ClassVar[tuple[str, ...]] = (QUEUED, DELIVERED)

    def __init__(
        self,
        code: str,
        settings: Settings,
        runtime: HubRuntime,
        policy: DeliveryPolicy,
        outbound: OutboundSender | None = None,
    ) -> None:
        super().__init__(code, settings, runtime, policy, outbound)
        self._target: Broker | None = None

    def finish(self) -> None:
        self._drop_target()
        super().finish()

    # -- the delivery broker -------------------------------------------------------------------

    def _target_broker(self) -> Broker:
        """The connection to the delivery RabbitMQ, opened in this sender's thread (pika's
        rule), with the subscription's queue declared (again after every reconnect)."""
        if self._target is None:
            broker = connect(
                self.settings.delivery_amqp_url,
                wait_for=0,  # the retry policy does the waiting, and can be stopped
                connection_name=f"srhub-forward-{self.code}",
                confirm_timeout=max(self.policy.timeout, 5.0),
            )
            try:
                service.declare_queue(broker, self.code)
            except BaseException:
                broker.close()
                raise
            self._target = broker
        return self._target

    def _drop_target(self) -> None:
        broker, self._target = self._target, None
        if broker is not None:
            try:
                broker.close()
            except (BrokerError, OSError):
                log.debug("forward %s: closing the delivery broker failed", self.code)

    # -- one message ---------------------------------------------------------------------------

    def handle(self, consumer: Consumer, delivery: Delivery) -> None:
        if self._active_subscription(consumer, delivery) is None:
            return
        info = self._info(delivery, self._event(delivery))
        if self._is_duplicate(consumer, delivery, info):
            return
        message = forwarded_message(self.code, delivery.message)
        self._with_retries(
            consumer, delivery, info, lambda number: self._forward(message, info, number)
        )

    def _forward(self, message: Message, info: dict[str, Any], number: int) -> Attempt:
        started_at = datetime.now(UTC)
        clock = time.monotonic()
        try:
            self._target_broker().publish(EXCHANGE_EVENTS, [message])
        except BrokerError as exc:  # unreachable, refused, not confirmed, unroutable, ...
            self._drop_target()  # start afresh: reconnect and declare the queue again
            error: str | None = f"{type(exc).__name__}: {exc}"[:300]
        else:
            error = None
        attempt = Attempt(
            error is None,
            error is not None,
            error=error,
            started_at=started_at,
            duration_ms=int((time.monotonic() - clock) * 1000),
        )
        self._log_attempt(info, number, attempt, QUEUED)
        if error is not None:
            log.warning(
                "forward %s to the delivery broker, attempt %d failed: %s",
                self.code,
                number,
                error,
            )
        return attempt


def forwarded_message(code: str, message: Message) -> Message:
    """The message as a subscriber of a hub on RabbitMQ gets it: the dispatch worker's body,
    headers, ``message_id`` and content type, routed to ``sr.deliver.<code>`` only."""
    return Message(
        body=bytes(message.body),
        routing_key=deliver_key(code),
        message_id=message.message_id,
        headers=dict(message.headers),
        content_type=message.content_type,
    )
