"""OpenCRVS's webhooks service, as its code behaves (opencrvs-core ``packages/webhooks``).

Subscribing, ``POST /webhooks`` with ``Authorization: Bearer <system token>`` (from
``/auth/token``, see ``systems``) and ``{"hub": {"callback", "mode", "topic", "secret"}}``:

1. no or a bad token -> 401 ``{"statusCode": 401, "error": "Unauthorized", "message"}``;
   a body that is not ``{"hub": {...}}`` with string values only -> 400 "Invalid request
   payload input"; a body without ``hub`` -> 500 (OpenCRVS's handler fails on it);
2. checks, in OpenCRVS's order, each refusal a 400 ``{"hub": {"mode": "denied", "topic",
   "reason"}}``: the topic (``Unsupported topic: X``), the system being active, ``hub.secret``
   equal to the signing secret issued to the client (``hub.secret is incorrect``), the mode;
3. the challenge, *before answering*: ``GET <callback>?mode=subscribe&challenge=<urlencoded
   base64>&topic=<topic>`` (the callback's own query replaced, as ``url.resolve`` does); the
   answer's JSON ``challenge`` must be the same, whatever its HTTP status. Otherwise 400 with
   the text "Subscription callback check failed";
4. 202 with an empty body. Every call adds a subscription (``webhookId``, a UUID), even for a
   callback and topic already subscribed.

``GET /webhooks`` lists the calling client's subscriptions (``{"entries": [{"id",
"callback", "createdAt", "createdBy", "topic"}]}``); ``DELETE /webhooks/<id>`` removes one
(204). Delivering each registered event of a topic to every subscription of it:
``POST <callback>``, ``Content-Type: application/json``, body
``JSON.stringify({"timestamp", "id": <webhookId>, "event": {"hub": {"topic"}, "context":
[Bundle]}})`` and ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, "sha256:" +
encodeURIComponent(body))>``. A ``webhook``-type client gets the Bundle cut to the sections
its permissions name, plus the Task (OpenCRVS's ``getPermissionsBundle``); other clients the
whole Bundle. Retries as OpenCRVS's queue does: 3 attempts, only while the subscriber cannot
be reached (see ``delivery``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox_mocks.civil_registry.delivery import Deliverer, Job, RetryPolicy
from sandbox_mocks.civil_registry.store import Released
from sandbox_mocks.civil_registry.systems import SystemClient, SystemClients

TOPICS = (
    "BIRTH_REGISTERED",
    "DEATH_REGISTERED",
    "BIRTH_CERTIFIED",
    "DEATH_CERTIFIED",
    "BIRTH_CORRECTED",
    "DEATH_CORRECTED",
)
SIGNATURE_HEADER = "X-Hub-Signature"
HUB_KEYS = ("callback", "mode", "topic", "secret")
CALLBACK_CHECK_FAILED = "Subscription callback check failed"
NOT_AUTHORIZED = "Active system details cannot be found.  This system is no longer authorized"
# OpenCRVS's queue: attempts 3, no backoff; only an unreachable subscriber is retried.
OPENCRVS_DELIVERY = RetryPolicy(max_attempts=3, base_delay_s=0.0, factor=1.0, timeout_s=10.0)
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()")


def encode_uri_component(text: str) -> str:
    """JavaScript's ``encodeURIComponent``: each UTF-8 byte outside the unreserved set as
    ``%XX`` (upper-case hex)."""
    return "".join(
        chr(byte) if chr(byte) in _UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


def sign(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    """OpenCRVS's ``createRequestSignature`` over the JSON text it posts."""
    message = f"{algorithm}:{encode_uri_component(body.decode('utf-8'))}".encode()
    digest = hmac.new(secret.encode("utf-8"), message, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


def js_iso(moment: datetime) -> str:
    """``Date.prototype.toISOString``: milliseconds and ``Z``."""
    stamp = moment.astimezone(UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def js_json(value: Any) -> bytes:
    """``JSON.stringify`` of plain data: compact, non-ASCII kept, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _resource_uuid(reference: str) -> str:
    """OpenCRVS's ``resourceIdentifierToUUID``: the id part of a reference."""
    text = reference.removeprefix("urn:uuid:")
    parts = [p for p in text.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if parts else text


def permitted_bundle(bundle: dict[str, Any], permissions: list[str]) -> dict[str, Any]:
    """OpenCRVS's ``getPermissionsBundle``: the resources of the sections whose code is in
    ``permissions``, and the Task; everything else (the Composition too) left out."""
    composition: dict[str, Any] = next(
        (
            e["resource"]
            for e in bundle.get("entry", [])
            if e.get("resource", {}).get("resourceType") == "Composition"
        ),
        {"section": []},
    )
    allowed = [
        section
        for section in composition.get("section", [])
        if any(c.get("code") in permissions for c in section.get("code", {}).get("coding", []))
    ]
    references = {
        _resource_uuid(entry.get("reference", ""))
        for section in allowed
        for entry in section.get("entry", [])
    }
    return {
        **bundle,
        "entry": [
            e
            for e in bundle.get("entry", [])
            if e.get("resource", {}).get("id") in references
            or e.get("resource", {}).get("resourceType") == "Task"
        ],
    }


@dataclass
class Webhook:
    """One subscription, as OpenCRVS stores it."""

    webhook_id: str
    address: str
    client: SystemClient
    sha_secret: str
    trigger: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.webhook_id,
            "callback": self.address,
            "createdAt": js_iso(self.created_at),
            "createdBy": {
                "client_id": self.client.client_id,
                "name": self.client.name,
                "type": self.client.created_by_type,
                "username": "sandbox.sysadmin",
            },
            "topic": self.trigger,
        }


class WebhookHub:
    """Subscriptions and the deliveries made to them."""

    def __init__(
        self,
        deliverer: Deliverer,
        clients: SystemClients,
        *,
        challenge_timeout_s: float = 10.0,
        delivery_policy: RetryPolicy = OPENCRVS_DELIVERY,
    ) -> None:
        self._deliverer = deliverer
        self.clients = clients
        self._challenge_timeout = challenge_timeout_s
        self._policy = delivery_policy
        self._lock = threading.Lock()
        self._hooks: dict[str, Webhook] = {}
        self.challenges_sent = 0

    # --- subscribing ---------------------------------------------------------------------------

    def _challenge(self, callback: str, topic: str) -> bool:
        challenge = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        url = urljoin(
            callback, f"?mode=subscribe&challenge={encode_uri_component(challenge)}&topic={topic}"
        )
        with self._lock:
            self.challenges_sent += 1
        try:
            answer = requests.get(
                url,
                headers={"Content-Type": "application/json"},
                timeout=self._challenge_timeout,
                allow_redirects=True,
            ).json()
        except (requests.RequestException, ValueError):
            return False
        given = answer.get("challenge") if isinstance(answer, dict) else None
        return isinstance(given, str) and hmac.compare_digest(given, challenge)

    def subscribe(self, client: SystemClient | None, hub: dict[str, str]) -> tuple[Any, int]:
        """OpenCRVS's checks in its order; (JSON body or text or None, status)."""
        topic = hub.get("topic")

        def denied(reason: str) -> tuple[dict[str, Any], int]:
            return {"hub": {"mode": "denied", "topic": topic, "reason": reason}}, 400

        if topic not in TOPICS:
            return denied(f"Unsupported topic: {topic if topic is not None else 'undefined'}")
        if client is None or client.status != "active":
            return denied(NOT_AUTHORIZED)
        if hub.get("secret") != client.sha_secret:
            return denied("hub.secret is incorrect")
        if hub.get("mode") != "subscribe":
            return denied("hub.mode must be set to subscribe")
        callback = hub.get("callback") or ""
        if not self._challenge(callback, topic):
            return CALLBACK_CHECK_FAILED, 400
        hook = Webhook(
            str(uuid.uuid4()), callback, client, str(hub["secret"]), topic, datetime.now(UTC)
        )
        with self._lock:
            self._hooks[hook.webhook_id] = hook
        return None, 202

    def remove(self, webhook_id: str) -> None:
        with self._lock:
            self._hooks.pop(webhook_id, None)

    def entries_of(self, client: SystemClient) -> list[dict[str, Any]]:
        with self._lock:
            hooks = sorted(self._hooks.values(), key=lambda h: h.created_at)
        return [h.public() for h in hooks if h.client.client_id == client.client_id]

    def snapshot(self) -> list[dict[str, Any]]:
        """Every subscription, for the admin status (never a secret)."""
        with self._lock:
            return [h.public() for h in self._hooks.values()]

    # --- delivering ----------------------------------------------------------------------------

    def publish(self, released: list[Released]) -> int:
        """Queue a signed delivery of each event to every subscription of its topic."""
        with self._lock:
            hooks = list(self._hooks.values())
        queued = 0
        for item in released:
            for hook in hooks:
                if hook.trigger != item.topic:
                    continue
                bundle = item.bundle
                if hook.client.created_by_type == "webhook":
                    permissions = hook.client.webhook_permissions.get(item.event.kind, [])
                    bundle = permitted_bundle(bundle, permissions)
                payload = {
                    "timestamp": js_iso(datetime.now(UTC)),
                    "id": hook.webhook_id,
                    "event": {"hub": {"topic": item.topic}, "context": [bundle]},
                }
                body = js_json(payload)
                self._deliverer.submit(
                    Job(
                        kind="webhook",
                        method="POST",
                        url=hook.address,
                        body=body,
                        headers={
                            "Content-Type": "application/json",
                            SIGNATURE_HEADER: sign(hook.sha_secret, body),
                        },
                        label={
                            "webhook_id": hook.webhook_id,
                            "topic": item.topic,
                            "event_id": item.event_id,
                        },
                        policy=self._policy,
                        retry_on_answer=False,
                    )
                )
                queued += 1
        return queued


# --- the HTTP face ----------------------------------------------------------------------------


def _boom(status: int, error: str, message: str, **extra: Any) -> tuple[Response, int]:
    """A hapi/Boom error body, as OpenCRVS's services answer."""
    return jsonify({"statusCode": status, "error": error, "message": message, **extra}), status


def _invalid_hub(body: Any) -> bool:
    """Joi: ``{hub?: {callback?, mode?, topic?, secret?: non-empty strings}}``, nothing else."""
    if not isinstance(body, dict) or set(body) - {"hub"}:
        return True
    hub = body.get("hub")
    if hub is None:
        return "hub" in body
    if not isinstance(hub, dict) or set(hub) - set(HUB_KEYS):
        return True
    return any(not isinstance(v, str) or not v for v in hub.values())


def webhooks_blueprint(hub: WebhookHub) -> Blueprint:
    bp = Blueprint("crvs_webhooks", __name__)

    def caller() -> tuple[SystemClient | None, tuple[Response, int] | None]:
        """The system client behind the bearer token, or hapi-auth-jwt2's 401."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not token or scheme.lower() != "bearer":
            return None, _boom(401, "Unauthorized", "Missing authentication")
        claims = hub.clients.verify(token.strip())
        if claims is None:
            return None, _boom(
                401, "Unauthorized", "Invalid token", attributes={"error": "Invalid token"}
            )
        return hub.clients.by_system_id(str(claims.get("sub"))), None

    def authorized(view: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            client, refusal = caller()
            if refusal is not None:
                return refusal
            return view(client, *args, **kwargs)

        wrapped.__name__ = view.__name__
        return wrapped

    @bp.post("/webhooks")
    @authorized
    def subscribe(client: SystemClient | None) -> Any:
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            return _boom(400, "Bad Request", "Invalid request payload JSON format")
        if _invalid_hub(body):
            return _boom(400, "Bad Request", "Invalid request payload input")
        if "hub" not in body:  # OpenCRVS's handler reads hub.topic of undefined
            return _boom(500, "Internal Server Error", "An internal server error occurred")
        answer, status = hub.subscribe(client, body["hub"])
        if answer is None:
            response = Response(status=status)
            del response.headers["Content-Type"]
            return response
        if isinstance(answer, str):
            return Response(answer, status=status, mimetype="text/html")
        return jsonify(answer), status

    @bp.get("/webhooks")
    @authorized
    def list_subscriptions(client: SystemClient | None) -> Any:
        if client is None or client.status != "active":
            return Response(NOT_AUTHORIZED, status=400, mimetype="text/html")
        return jsonify({"entries": hub.entries_of(client)})

    @bp.delete("/webhooks/<webhook_id>")
    @authorized
    def unsubscribe(_client: SystemClient | None, webhook_id: str) -> Response:
        hub.remove(webhook_id)  # OpenCRVS checks no ownership here either
        response = Response(status=204)
        del response.headers["Content-Type"]
        return response

    return bp
