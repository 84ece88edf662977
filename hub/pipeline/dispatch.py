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
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
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
from hub.workers.handlers import DISPATCH_HANDLERS, HandlerContext
from registry_core.db import utcnow
from registry_core.models import OutboxEvent

log = logging.getLogger(__name__)

DELIVERIES: Counter[str] = Counter()
_LOCK = threading.Lock()
_runtime_factory: Callable[[], HubRuntime] | None = None
_runtime: HubRuntime | None = None
_local = threading.local()


def configure(factory: Callable[[], HubRuntime]) -> None:
    """Use ``factory``'s runtime (``srhub run`` and tests share theirs)."""
    global _runtime_factory, _runtime
    with _LOCK:
        _runtime_factory, _runtime = factory, None
    _local.__dict__.clear()


def _the_runtime() -> HubRuntime:
    global _runtime
    with _LOCK:
        if _runtime is None:
            if _runtime_factory is not None:
                _runtime = _runtime_factory()
            else:  # a separate ``srhub worker dispatch`` process
                from hub.settings import load_settings

                _runtime = HubRuntime(load_settings())
        return _runtime


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


def _publisher(runtime: HubRuntime) -> _Publisher:
    found = getattr(_local, "publisher", None)
    if found is None or found.runtime is not runtime:
        found = _local.publisher = _Publisher(runtime)
    return found


def _fanout(runtime: HubRuntime) -> Fanout:
    return Fanout(runtime.cipher, runtime.keys.identifier_hmac_key)


def handle(event: dict[str, Any], ctx: HandlerContext) -> None:
    """Fan one registry event out to the matching subscriptions' queues."""
    runtime = _the_runtime()
    routing_key = ctx.delivery.message.routing_key
    started = time.monotonic()
    with runtime.sessions() as session:
        # Paused subscriptions keep queueing; only their delivery stops (see delivery.py).
        subscriptions = service.list_for(session, None)
        if not subscriptions:
            _count("no_subscribers")
            return
        sequence = session.scalar(
            select(OutboxEvent.sequence).where(OutboxEvent.event_id == str(event.get("id")))
        )
        planned = _fanout(runtime).plan(session, subscriptions, routing_key, event, sequence)
    if not planned:
        _count("no_subscribers")
        return
    _publisher(runtime).publish(
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
    _count("fanned_out", len(planned))


def ignore_delivery_copy(event: dict[str, Any], ctx: HandlerContext) -> None:
    """A ``deliver.*`` message (ours) seen on ``sr.dispatch``: nothing to do."""


def _count(what: str, n: int = 1) -> None:
    with _LOCK:
        DELIVERIES[what] += n


DISPATCH_HANDLERS.register(f"{DELIVER_PREFIX}.#", ignore_delivery_copy, transactional=False)
DISPATCH_HANDLERS.register("#", handle, transactional=False)
