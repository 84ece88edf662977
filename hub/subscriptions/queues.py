"""Upkeep of a subscription's delivery queue on the broker(s), best effort.

The dispatch worker declares ``sr.deliver.<code>`` itself before its first message, so a broker
that is down when a subscription is made or removed only delays when an AMQP subscriber can
start consuming; it never fails the request. An AMQP subscription of a hub on the embedded
queue also lives on the operator's RabbitMQ of subscribers (``SRHUB_DELIVERY_AMQP_URL``), where
the forwarder would declare it before its first message; declaring it there at once lets the
subscriber start consuming before the first event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hub.broker.base import Broker
from hub.settings import Settings
from hub.subscriptions import service
from hub.subscriptions.tables import CHANNEL_AMQP

log = logging.getLogger(__name__)


def _on_broker(settings: Settings, work: Callable[[Broker], None], *, delivery: bool) -> None:
    from hub.broker import connect
    from hub.broker.errors import BrokerError

    try:
        if delivery:
            target = connect(
                settings.delivery_amqp_url, wait_for=2, connection_name="srhub-queue-upkeep"
            )
        else:
            target = connect(settings, wait_for=2)
        with target as broker:
            work(broker)
    except (BrokerError, OSError) as exc:
        where = "delivery broker (SRHUB_DELIVERY_AMQP_URL)" if delivery else "broker"
        log.warning("subscriptions: %s not reachable for queue upkeep (%s)", where, exc)


def declare_queues(settings: Settings, code: str, channel: str) -> None:
    """Declare the subscription's queue wherever its messages will wait."""
    _on_broker(settings, lambda broker: service.declare_queue(broker, code), delivery=False)
    if channel == CHANNEL_AMQP and settings.forwards_amqp_deliveries:
        _on_broker(settings, lambda broker: service.declare_queue(broker, code), delivery=True)


def delete_queues(settings: Settings, code: str, channel: str) -> None:
    """Remove the subscription's queue from every broker that held it."""
    _on_broker(settings, lambda broker: service.delete_queue(broker, code), delivery=False)
    if channel == CHANNEL_AMQP and settings.forwards_amqp_deliveries:
        _on_broker(settings, lambda broker: service.delete_queue(broker, code), delivery=True)
