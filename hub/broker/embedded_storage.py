"""How the embedded broker keeps messages in its queue tables: the table handles, the body
codecs and the row of one message. Shared by the broker (publishing, dead-lettering) and its
consumers (claiming, settling)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table

from .base import Message
from .embedded_tables import BrokerBinding, BrokerMessage, BrokerQueue

MESSAGES = cast(Table, BrokerMessage.__table__)
QUEUES = cast(Table, BrokerQueue.__table__)
BINDINGS = cast(Table, BrokerBinding.__table__)


class BodyCodec:
    """How message bodies are kept in the queue table. The base class keeps them as they are;
    ``SealedBodies`` encrypts them, so partner records (which carry personal identifiers) are
    never in clear in the database that also holds the registry."""

    def seal(self, body: bytes) -> bytes:
        return body

    def unseal(self, stored: bytes) -> bytes:
        return stored


PLAIN = BodyCodec()
SEALED_MARK = b"\x00srseal1"


class SealedBodies(BodyCodec):
    """AES-GCM sealing with the hub's identifier key (``seal``/``unseal`` callables given).

    Stored bodies carry a marker, so a queue written before sealing was switched on (or by a
    codec-less test client) is still read correctly.
    """

    def __init__(self, seal: Callable[[bytes], bytes], unseal: Callable[[bytes], bytes]) -> None:
        self._seal, self._unseal = seal, unseal

    def seal(self, body: bytes) -> bytes:
        return SEALED_MARK + self._seal(body)

    def unseal(self, stored: bytes) -> bytes:
        if stored.startswith(SEALED_MARK):
            return self._unseal(stored[len(SEALED_MARK) :])
        return stored


def message_row(
    queue: str, exchange: str, message: Message, headers: str, now: datetime, codec: BodyCodec
) -> dict[str, Any]:
    return {
        "queue": queue,
        "message_id": message.message_id,
        "exchange": exchange,
        "routing_key": message.routing_key,
        "content_type": message.content_type,
        "headers": headers,
        "body": codec.seal(bytes(message.body)),
        "enqueued_at": now,
        "visible_at": now,
        "attempts": 0,
        "locked_by": None,
        "first_delivered_at": None,
    }
