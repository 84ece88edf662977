"""WebSub (OpenCRVS webhooks) on the subscriber's side: which challenges to answer, and what a
verified delivery holds. No I/O.

A delivery is what OpenCRVS's webhooks service posts (``packages/webhooks``, event handlers):
``{"timestamp", "id", "event": {"hub": {"topic"}, "context": [Bundle]}}`` with no wrapper.
``id`` is the *subscription's* webhook id, the same for every event it delivers, and
``timestamp`` is the moment of sending; neither says which event this is. So the event is
named from the Bundle itself (``event_key``): its Composition (the record's id in OpenCRVS),
else the tracking id, else the Task, else a digest of the Bundle. That key is the raw record's
source id; a digest of the Bundle is its content key, so every copy of one event (a resend,
or the same event through two subscriptions of ours) has one message id and is applied once.

Answering every challenge would let anyone who can reach the callback subscribe us to topics
we never asked for (and learn the callback works). So a challenge is answered only for a topic
we have a *pending* subscription to: ``mark_pending`` is called *before* the subscription
request is sent, because OpenCRVS verifies before its 202 reaches us; the mark expires.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base import Clock
from connectors.civil_registry.settings import RECORD_TYPE_BY_TOPIC

MAX_CHALLENGE_LENGTH = 1024
MAX_SOURCE_ID = 256
CONTEXT_PATH = "event.context[{index}]"
_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_TRACKING_ID = re.compile(r"/(birth|death|marriage)-tracking-id$")


class DeliveryError(ValueError):
    """A signed delivery we cannot route; ``str(error)`` is the reason given to the sender."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class DeliveredEvent:
    """One Bundle of a delivery's ``event.context``."""

    bundle_path: str  # where it sits in the published body
    source_id: str  # the event, named from the Bundle
    content_key: str  # digest of the Bundle: copies of one event share the message id
    key_kind: str  # composition | tracking_id | task | bundle_digest


@dataclass(frozen=True)
class Delivery:
    """What routing a verified delivery needs; the body itself is published unchanged."""

    body: dict[str, Any]
    topic: str
    record_type: str
    webhook_id: str | None
    events: list[DeliveredEvent] = field(default_factory=list)
    refused_items: int = 0  # context items that are not Bundles


def _resource_id(reference: Any) -> str | None:
    """``Composition/<id>``, ``urn:uuid:<id>``, ``/fhir/Composition/<id>/_history/<v>`` ->
    ``<id>``."""
    if not isinstance(reference, str) or not reference.strip():
        return None
    text = reference.strip()
    if text.startswith("urn:uuid:"):
        return text[len("urn:uuid:") :] or None
    parts = [p for p in text.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if parts else None


def _resources(bundle: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    entries = bundle.get("entry")
    found: list[Mapping[str, Any]] = []
    if isinstance(entries, list):
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(resource, Mapping) and resource.get("resourceType") == kind:
                found.append(resource)
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _usable_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""


def bundle_digest(bundle: Any) -> str:
    """SHA-256 of the Bundle's canonical JSON (keys sorted): equal for equal content."""
    canonical = json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def event_key(bundle: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, value) naming the event a Bundle reports, from the most to the least stable.

    A Bundle scoped to a client's permissions may lack the Composition (OpenCRVS keeps only
    the permitted sections' resources and the Task), hence the Task's ``focus`` and ids."""
    for composition in _resources(bundle, "Composition"):
        found = _text(composition.get("id"))
        if found:
            return "composition", found
    tasks = _resources(bundle, "Task")
    for task in tasks:
        focus = task.get("focus")
        found = _resource_id(focus.get("reference")) if isinstance(focus, Mapping) else None
        if found:
            return "composition", found
    for task in tasks:
        identifiers = task.get("identifier")
        for identifier in identifiers if isinstance(identifiers, list) else []:
            if not isinstance(identifier, Mapping):
                continue
            system = identifier.get("system")
            value = _text(identifier.get("value"))
            if value and isinstance(system, str) and _TRACKING_ID.search(system):
                return "tracking_id", value
    for task in tasks:
        found = _text(task.get("id"))
        if found:
            return "task", found
    return "bundle_digest", bundle_digest(bundle)


def check_fresh(body: dict[str, Any], max_age_seconds: int, now: datetime | None = None) -> None:
    """Refuse a delivery whose ``timestamp`` (inside the signed body) is further than
    ``max_age_seconds`` from ``now``: a captured delivery replayed later. OpenCRVS retries at
    once, so a genuine delivery is seconds old; 0 turns the check off."""
    if max_age_seconds <= 0:
        return
    stamp = body.get("timestamp")
    try:
        sent = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise DeliveryError("timestamp is missing or not an ISO 8601 time", status=403) from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    age = ((now or datetime.now(UTC)) - sent).total_seconds()
    if abs(age) > max_age_seconds:
        raise DeliveryError(
            f"timestamp is {int(age)}s away from our clock (allowed {max_age_seconds}s): "
            "a replayed delivery, or a badly set clock",
            status=403,
        )


def parse_delivery(
    raw: bytes,
    topics: frozenset[str],
    *,
    max_age_seconds: int = 0,
    now: datetime | None = None,
) -> Delivery:
    """Decode a delivery whose signature was already verified; with ``max_age_seconds``,
    refuse one whose signed ``timestamp`` is stale (``check_fresh``)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise DeliveryError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise DeliveryError("the body is not a JSON object")
    event = body.get("event")
    if not isinstance(event, dict):
        if isinstance(body.get("payload"), dict):
            raise DeliveryError(
                'the body is wrapped in {"payload": ...}; OpenCRVS sends '
                '{"timestamp", "id", "event": {"hub": {"topic"}, "context": [Bundle]}}'
            )
        raise DeliveryError("event is missing or not an object")
    hub = event.get("hub")
    topic = hub.get("topic") if isinstance(hub, dict) else None
    if not isinstance(topic, str) or not topic:
        raise DeliveryError("event.hub.topic is missing")
    if topic not in topics:
        raise DeliveryError(
            f"topic {topic[:40]!r} is not one this connector subscribes to", status=422
        )
    context = event.get("context")
    if not isinstance(context, list) or not context:
        raise DeliveryError("event.context is missing or empty (it carries the FHIR Bundle)")
    events: list[DeliveredEvent] = []
    for index, bundle in enumerate(context):
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            continue
        kind, value = event_key(bundle)
        events.append(
            DeliveredEvent(
                bundle_path=CONTEXT_PATH.format(index=index),
                source_id=f"{topic}:{kind}:{value}"[:MAX_SOURCE_ID],
                content_key="bundle-sha256:" + bundle_digest(bundle),
                key_kind=kind,
            )
        )
    if not events:
        raise DeliveryError("event.context holds no FHIR Bundle")
    check_fresh(body, max_age_seconds, now)  # a well-formed delivery: is it a replay?
    webhook_id = body.get("id")
    return Delivery(
        body,
        topic,
        RECORD_TYPE_BY_TOPIC[topic],
        str(webhook_id)[:200] if _usable_id(webhook_id) else None,
        events,
        refused_items=len(context) - len(events),
    )


def value_at(document: Any, path: str) -> Any:
    """The value at a dotted path with list indexes (``event.context[0]``); None if absent."""
    node = document
    for key, index in _PATH_STEP.findall(path):
        if key:
            node = node.get(key) if isinstance(node, Mapping) else None
        else:
            position = int(index)
            node = node[position] if isinstance(node, list) and position < len(node) else None
        if node is None:
            return None
    return node


class SubscriptionBook:
    """Topics we asked the registry for: pending until verified, then active."""

    def __init__(self, clock: Clock, ttl_seconds: float) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}  # topic -> monotonic expiry
        self._active: dict[str, str] = {}  # topic -> verified at (ISO)
        self._ids: dict[str, str] = {}  # topic -> the registry's subscription id
        self._challenges: dict[str, int] = {}  # topic -> challenges answered

    def mark_pending(self, topic: str) -> None:
        with self._lock:
            self._pending[topic] = self._clock.monotonic() + self._ttl

    def forget_pending(self, topic: str) -> None:
        with self._lock:
            self._pending.pop(topic, None)

    def remember_id(self, topic: str, subscription_id: str) -> None:
        with self._lock:
            self._ids[topic] = subscription_id[:200]

    def challenges_answered(self, topic: str) -> int:
        with self._lock:
            return self._challenges.get(topic, 0)

    def activate(self, topic: str) -> None:
        """The registry accepted the subscription (OpenCRVS's 202 comes after its check)."""
        with self._lock:
            self._active.setdefault(topic, self._clock.now().isoformat())

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
            self._challenges[topic] = self._challenges.get(topic, 0) + 1
            return True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock.monotonic()
            return {
                "pending": sorted(t for t, expiry in self._pending.items() if expiry >= now),
                "active": dict(self._active),
                "subscription_ids": dict(self._ids),
            }
