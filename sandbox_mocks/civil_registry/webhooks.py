"""WebSub-style webhooks, as OpenCRVS offers them to integrating systems.

Protocol (see STANDARDS.md):

1. ``POST /webhooks`` ``{"hub": {"callback", "mode": "subscribe", "topic", "secret"}}`` -> 202
   ``{"id", "status": "pending"}``.
2. The registry verifies: ``GET <callback>?mode=subscribe&challenge=<random>&topic=<topic>``;
   the subscriber must answer 2xx ``{"challenge": "<same>"}``. Then the subscription is
   ``active``; if verification fails (after the retry policy) it is ``failed``. As in WebSub,
   events registered before the subscription became active are not sent (use the feed).
3. Each registered event of the topic: ``POST <callback>`` with
   ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` and body
   ``{"payload": {"id", "timestamp", "event": {"hub": {"topic"}, "context": [Bundle]}}}``;
   retried with backoff when the subscriber does not answer 2xx.

``GET /webhooks`` lists subscriptions (never the secret); ``DELETE /webhooks/<id>`` removes one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox_mocks.civil_registry.delivery import Deliverer, Job
from sandbox_mocks.civil_registry.store import Released

TOPICS = (
    "BIRTH_REGISTERED",
    "DEATH_REGISTERED",
    "BIRTH_CERTIFIED",
    "DEATH_CERTIFIED",
    "BIRTH_CORRECTED",
    "DEATH_CORRECTED",
)
SIGNATURE_HEADER = "X-Hub-Signature"
MAX_SECRET_LENGTH = 512


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass
class Subscription:
    id: str
    callback: str
    topic: str
    secret: str
    status: str  # pending | active | failed
    created_at: str

    def public(self) -> dict[str, str]:
        return {
            "id": self.id,
            "callback": self.callback,
            "topic": self.topic,
            "status": self.status,
            "created_at": self.created_at,
        }


class WebhookHub:
    """Subscriptions and the deliveries made to them."""

    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer
        self._lock = threading.Lock()
        self._subs: dict[str, Subscription] = {}

    def subscribe(self, callback: str, topic: str, secret: str) -> Subscription:
        sub = Subscription(
            id=str(uuid.uuid4()),
            callback=callback,
            topic=topic,
            secret=secret,
            status="pending",
            created_at=datetime.now(UTC).isoformat(),
        )
        with self._lock:
            self._subs[sub.id] = sub
        challenge = secrets.token_urlsafe(24)

        def check(response: requests.Response) -> bool:
            if not 200 <= response.status_code < 300:
                return False
            try:
                answer = response.json()
            except ValueError:
                return False
            given = answer.get("challenge") if isinstance(answer, dict) else None
            return isinstance(given, str) and hmac.compare_digest(given, challenge)

        def done(ok: bool) -> None:
            with self._lock:
                sub.status = "active" if ok else "failed"

        self._deliverer.submit(
            Job(
                kind="verify",
                method="GET",
                url=callback,
                params={"mode": "subscribe", "challenge": challenge, "topic": topic},
                check=check,
                on_done=done,
                label={"subscription_id": sub.id, "topic": topic},
            )
        )
        return sub

    def remove(self, sub_id: str) -> bool:
        with self._lock:
            return self._subs.pop(sub_id, None) is not None

    def list(self) -> list[dict[str, str]]:
        with self._lock:
            return [sub.public() for sub in self._subs.values()]

    def publish(self, released: list[Released]) -> int:
        """Queue a signed delivery of each event to every active subscription of its topic."""
        with self._lock:
            active = [s for s in self._subs.values() if s.status == "active"]
        queued = 0
        for item in released:
            for sub in active:
                if sub.topic != item.topic:
                    continue
                body = json.dumps(
                    {
                        "payload": {
                            "id": item.event_id,
                            "timestamp": datetime.now(UTC).isoformat(),
                            "event": {"hub": {"topic": item.topic}, "context": [item.bundle]},
                        }
                    },
                    separators=(",", ":"),
                ).encode()
                self._deliverer.submit(
                    Job(
                        kind="webhook",
                        method="POST",
                        url=sub.callback,
                        body=body,
                        headers={
                            "Content-Type": "application/json",
                            SIGNATURE_HEADER: sign(sub.secret, body),
                        },
                        label={
                            "subscription_id": sub.id,
                            "topic": item.topic,
                            "event_id": item.event_id,
                        },
                    )
                )
                queued += 1
        return queued


def _bad(message: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": {"code": "bad_request", "message": message}}), status


def _valid_callback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def webhooks_blueprint(hub: WebhookHub) -> Blueprint:
    bp = Blueprint("crvs_webhooks", __name__)

    @bp.post("/webhooks")
    def subscribe() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("hub"), dict):
            return _bad('body must be {"hub": {"callback", "mode", "topic", "secret"}}')
        spec = body["hub"]
        callback, mode = spec.get("callback"), spec.get("mode")
        topic, secret = spec.get("topic"), spec.get("secret")
        if mode != "subscribe":
            return _bad('hub.mode must be "subscribe"')
        if not isinstance(callback, str) or not _valid_callback(callback):
            return _bad("hub.callback must be an absolute http(s) URL")
        if topic not in TOPICS:
            return _bad(f"hub.topic must be one of {list(TOPICS)}")
        if not isinstance(secret, str) or not 1 <= len(secret) <= MAX_SECRET_LENGTH:
            return _bad(f"hub.secret must be a string of 1..{MAX_SECRET_LENGTH} characters")
        sub = hub.subscribe(callback, topic, secret)
        return jsonify(sub.public()), 202

    @bp.get("/webhooks")
    def list_subscriptions() -> Response:
        return jsonify({"subscriptions": hub.list()})

    @bp.delete("/webhooks/<sub_id>")
    def unsubscribe(sub_id: str) -> tuple[Response, int]:
        if not hub.remove(sub_id):
            return _bad("no such subscription", 404)
        return jsonify({"id": sub_id, "status": "deleted"}), 200

    return bp
