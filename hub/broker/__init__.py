"""The hub's message broker: one contract (``base``), two backends, chosen by configuration.

``SRHUB_AMQP_URL`` set: RabbitMQ (``amqp``). Unset: durable queue tables in the hub's database
(``embedded``). A backend module is imported only when it is used, so the embedded setup never
loads pika and the AMQP one never needs the queue tables.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import (
    EXCHANGE_DEAD,
    EXCHANGE_EVENTS,
    EXCHANGE_INBOUND,
    EXCHANGES,
    QUEUE_DEAD,
    QUEUE_INGEST,
    Broker,
    BrokerStatus,
    Consumer,
    DeadLetterReason,
    Delivery,
    Message,
    QueueSpec,
    delivery_queue_name,
)
from .errors import (
    BrokerError,
    ConnectionClosed,
    PublishNotConfirmed,
    QueueNotFound,
    Unroutable,
)

if TYPE_CHECKING:
    from hub.broker.embedded import SealedBodies
    from hub.settings import Settings

__all__ = [
    "EXCHANGES",
    "EXCHANGE_DEAD",
    "EXCHANGE_EVENTS",
    "EXCHANGE_INBOUND",
    "QUEUE_DEAD",
    "QUEUE_INGEST",
    "Broker",
    "BrokerError",
    "BrokerStatus",
    "ConnectionClosed",
    "Consumer",
    "DeadLetterReason",
    "Delivery",
    "Message",
    "PublishNotConfirmed",
    "QueueNotFound",
    "QueueSpec",
    "Unroutable",
    "backend_for",
    "connect",
    "delivery_queue_name",
]

# URL scheme -> "module:class"; kombu's idea of a table that imports a backend only when used.
BACKENDS: dict[str, str] = {
    "amqp": "hub.broker.amqp:AmqpBroker",
    "amqps": "hub.broker.amqp:AmqpBroker",
    "embedded": "hub.broker.embedded:EmbeddedBroker",
}


def backend_for(url: str) -> str:
    """``amqp`` for an amqp(s):// URL; ``embedded`` for anything else (a database URL)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme if scheme in ("amqp", "amqps") else "embedded"


def _load(name: str) -> Callable[..., Broker]:
    """The backend class of ``name`` (each takes the URL and its own keyword options)."""
    module_name, _, attr = BACKENDS[name].partition(":")
    cls: Callable[..., Broker] = getattr(importlib.import_module(module_name), attr)
    return cls


def connect(target: Settings | str, **options: Any) -> Broker:
    """Open a broker for ``target``: a ``Settings`` (RabbitMQ when ``amqp_url`` is set, else
    the embedded queue in ``effective_database_url``) or a URL (amqp:// or a database URL).

    ``options`` go to the backend: ``wait_for`` (seconds to keep retrying an unreachable
    broker; ``None`` waits for ever), and per backend ``confirm_timeout`` (amqp) or
    ``visibility_timeout`` (embedded). The connection itself is made on first use.
    """
    url = target if isinstance(target, str) else target.amqp_url or target.effective_database_url
    if not url:
        raise BrokerError("no broker configured: give an amqp:// URL or a database URL")
    name = backend_for(url)
    cls = _load(name)
    if name == "embedded" and not isinstance(target, str) and "body_codec" not in options:
        options["body_codec"] = _sealed_bodies(target)
    return cls(url, **options)


def _sealed_bodies(settings: Settings) -> SealedBodies:
    """The embedded queue lives in the registry's database: seal its message bodies with the
    hub's identifier key so partner records are never stored in clear there."""
    from hub.broker.embedded import SealedBodies
    from hub.settings import identifier_cipher, load_keys

    cipher = identifier_cipher(settings, load_keys(settings))
    return SealedBodies(
        lambda body: cipher.seal("broker", body), lambda blob: cipher.unseal("broker", blob)
    )
