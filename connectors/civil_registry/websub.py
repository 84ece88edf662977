"""WebSub (OpenCRVS webhooks) on the subscriber's side: which challenges to answer, and what a
verified delivery holds. No I/O.

Answering every challenge would let anyone who can reach the callback subscribe us to topics
we never asked for (and learn the callback works). So a challenge is answered only for a topic
we have a *pending* subscription to: ``mark_pending`` is called *before* the subscription
request is sent, because the registry may verify before its 202 reaches us; the pending mark
expires after a while.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from connectors.base import Clock
from connectors.civil_registry.settings import RECORD_TYPE_BY_TOPIC

MAX_CHALLENGE_LENGTH = 1024
DELIVERY_BUNDLE_PATH = "payload.event.context[0]"


class DeliveryError(ValueError):
    """A signed delivery we cannot route; ``str(error)`` is the reason given to the sender."""


@dataclass(frozen=True)
class Delivery:
    """What routing a verified delivery needs; the body itself is published unchanged."""

    body: dict[str, Any]
    event_id: str
    topic: str
    record_type: str


def parse_delivery(raw: bytes, topics: frozenset[str]) -> Delivery:
    """Decode a delivery whose signature was already verified."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DeliveryError("the body is not JSON") from None
    payload = body.get("payload") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        raise DeliveryError('the body is not {"payload": {...}}')
    event = payload.get("event")
    hub = event.get("hub") if isinstance(event, dict) else None
    topic = hub.get("topic") if isinstance(hub, dict) else None
    if not isinstance(topic, str) or not topic:
        raise DeliveryError("payload.event.hub.topic is missing")
    if topic not in topics:
        raise DeliveryError(f"topic {topic[:40]!r} is not one this connector subscribes to")
    event_id = payload.get("id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or not str(event_id):
        raise DeliveryError("payload.id is missing")
    return Delivery(body, str(event_id)[:256], topic, RECORD_TYPE_BY_TOPIC[topic])


class SubscriptionBook:
    """Topics we asked the registry for: pending until verified, then active."""

    def __init__(self, clock: Clock, ttl_seconds: float) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}  # topic -> monotonic expiry
        self._active: dict[str, str] = {}  # topic -> verified at (ISO)
        self._ids: dict[str, str] = {}  # topic -> the registry's subscription id

    def mark_pending(self, topic: str) -> None:
        with self._lock:
            self._pending[topic] = self._clock.monotonic() + self._ttl

    def forget_pending(self, topic: str) -> None:
        with self._lock:
            self._pending.pop(topic, None)

    def remember_id(self, topic: str, subscription_id: str) -> None:
        with self._lock:
            self._ids[topic] = subscription_id[:200]

    def confirm(self, topic: str) -> bool:
        """True (and the topic becomes active) if a subscription to ``topic`` is pending.

        The mark stays until it expires: a registry that did not get our first answer (lost,
        timed out) verifies again, and must get the same yes."""
        with self._lock:
            expiry = self._pending.get(topic)
            if expiry is None:
                return False
            if self._clock.monotonic() > expiry:
                del self._pending[topic]
                return False
            self._active.setdefault(topic, self._clock.now().isoformat())
            return True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock.monotonic()
            return {
                "pending": sorted(t for t, expiry in self._pending.items() if expiry >= now),
                "active": dict(self._active),
                "subscription_ids": dict(self._ids),
            }
