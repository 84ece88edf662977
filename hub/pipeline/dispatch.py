"""The dispatch worker's handler: hand each registry event to the subscriptions it matches.

For every event from ``sr.dispatch`` the handler finds the active subscriptions whose event
types and filters match, builds each subscriber's own copy (consent applied, see
``hub.subscriptions.fanout``) and publishes it with routing key ``deliver.<code>`` on
``sr.events``, which only the subscription's queue ``sr.deliver.<code>`` is bound to. It never
calls a subscriber itself: AMQP subscribers consume that queue directly, webhook and DCI ones
are served by the delivery workers (``hub.subscriptions.delivery``), one consumer per
subscription, so a slow or dead endpoint holds up only its own queue.

``sr.dispatch`` is bound to ``#`` and so also receives those ``deliver.*`` copies; they are
acknowledged without effect.

``dispatch_handlers(runtime)`` builds the dispatch worker's handlers around one ``HubRuntime``
(settings, sessions, keys): nothing is registered on import and nothing is a module global.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import select

from hub.broker import connect
from hub.broker.base import EXCHANGE_EVENTS, Broker
from hub.broker.errors import BrokerError
from hub.runtime import HubRuntime
from hub.subscriptions import service
from hub.subscriptions.fanout import DELIVER_PREFIX, Fanout
from hub.subscriptions.tables import CHANNEL_AMQP, QUEUED, DeliveryAttempt
from hub.workers.errors import TransientError
from hub.workers.handlers import HandlerContext, HandlerRegistry, HandlerResult
from registry_core.models import OutboxEvent
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

NO_SUBSCRIBERS = HandlerResult("no_subscribers")
DELIVERY_COPY = HandlerResult("delivery_copy")


def dispatch_handlers(runtime: HubRuntime) -> HandlerRegistry:
    """The dispatch worker's handlers: every event is fanned out; our own ``deliver.*``
    copies, which ``sr.dispatch`` also receives, are acknowledged without effect."""
    handlers = HandlerRegistry("dispatch", Dispatcher(runtime))
    handlers.register(f"{DELIVER_PREFIX}.#", ignore_delivery_copy, transactional=False)
    handlers.register("#", handle, transactional=False)
    return handlers


class _Publisher:
    """This thread's broker connection, with the subscription queues it has declared."""

    def __init__(self, runtime: HubRuntime) -> None:
        self.runtime = runtime
        self.broker: Broker | None = None
        self.declared: set[str] = set()

    def publish(self, targets: set[tuple[str, str]], messages: list[Any]) -> None:
        """Publish ``messages`` after declaring the queues of ``targets`` (code, id) not yet
        declared on this connection. Keyed by id too: a subscription deleted and made again
        under the same code has had its queue deleted, and must get it back."""
        if self.broker is None:
            self.broker = connect(self.runtime.settings, wait_for=0)
            self.declared.clear()
        try:
            for code, ident in sorted(targets):
                if f"{code}:{ident}" not in self.declared:
                    service.declare_queue(self.broker, code)
                    self.declared.add(f"{code}:{ident}")
            self.broker.publish(EXCHANGE_EVENTS, messages)
        except BrokerError as exc:
            broker, self.broker = self.broker, None
            try:
                broker.close()
            except BrokerError:
                log.debug("closing a failed dispatch broker connection failed")
            raise TransientError(f"could not queue deliveries: {exc}") from exc


class Dispatcher:
    """What the dispatch handler needs: the runtime, the fan-out (keys) and one publishing
    connection per worker thread (pika's rule)."""

    def __init__(self, runtime: HubRuntime) -> None:
        self.runtime = runtime
        self.fanout = Fanout(runtime.cipher, runtime.keys.identifier_hmac_key)
        self._local = threading.local()

    def publisher(self) -> _Publisher:
        found: _Publisher | None = getattr(self._local, "publisher", None)
        if found is None:
            found = self._local.publisher = _Publisher(self.runtime)
        return found


def handle(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    """Fan one registry event out to the matching subscriptions' queues."""
    dispatcher: Dispatcher = ctx.services
    runtime = dispatcher.runtime
    routing_key = ctx.delivery.message.routing_key
    started = time.monotonic()
    with runtime.sessions() as session:
        # Paused subscriptions keep queueing; only their delivery stops (see delivery.py).
        subscriptions = service.list_for(session, None)
        if not subscriptions:
            return NO_SUBSCRIBERS
        sequence = session.scalar(
            select(OutboxEvent.sequence).where(OutboxEvent.event_id == str(event.get("id")))
        )
        planned = dispatcher.fanout.plan(session, subscriptions, routing_key, event, sequence)
    if not planned:
        return NO_SUBSCRIBERS
    dispatcher.publisher().publish(
        {(p.subscription.code, str(p.subscription.id)) for p in planned},
        [p.message for p in planned],
    )
    # On RabbitMQ the AMQP subscriber consumes the queue just published to: handed over. A hub
    # on the embedded queue forwards AMQP deliveries to SRHUB_DELIVERY_AMQP_URL, and the
    # forwarder logs ``queued`` once that broker has confirmed (hub/subscriptions/forwarding.py).
    amqp = [p for p in planned if p.subscription.channel == CHANNEL_AMQP]
    if amqp and not runtime.settings.forwards_amqp_deliveries:
        elapsed = int((time.monotonic() - started) * 1000)
        with runtime.sessions() as session, session.begin():
            for p in amqp:
                session.add(
                    DeliveryAttempt(
                        subscription_code=p.subscription.code,
                        event_id=str(event.get("id")),
                        sequence=sequence,
                        event_type=routing_key,
                        attempt=1,
                        status=QUEUED,
                        personal=p.personal,
                        started_at=utcnow(),
                        duration_ms=elapsed,
                    )
                )
    return HandlerResult("fanned_out", (f"{len(planned)} subscription(s)",))


def ignore_delivery_copy(event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
    """A ``deliver.*`` message (ours) seen on ``sr.dispatch``: nothing to do."""
    return DELIVERY_COPY
