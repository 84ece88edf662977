"""System clients and their tokens, as OpenCRVS's user-mgnt and auth services keep them.

What is imitated (opencrvs-core ``packages/user-mgnt`` ``features/system`` and
``packages/auth`` ``features/oauthToken``):

- registering a system (``registerSystem``) creates a ``client_id``, a client secret (shown
  once) and a **signing secret** ``sha_secret`` (all UUIDs), and answers 201
  ``{"clientSecret", "system": {"_id", "name", "status", "type", "clientId", "shaSecret",
  "settings": {"webhook", "dailyQuota"}}}``. The system's type sets its scopes: ``WEBHOOK``
  -> ``webhook``, ``NATIONAL_ID`` -> ``nationalId``, ``HEALTH`` -> ``notification-api``, ...;
- ``POST /auth/token?grant_type=client_credentials&client_id=…&client_secret=…`` (the values
  are *query* parameters) answers 200 ``{"access_token", "token_type": "Bearer"}``, or
  400 ``invalid_request`` / ``unsupported_grant_type``, 401 ``invalid_client`` (unknown client,
  wrong secret, inactive system); every answer carries ``Cache-Control: no-store``;
- the token is a JWT: ``sub`` the system's id, ``scope``, ``userType: system``, issuer
  ``opencrvs:auth-service``, the services' audiences (``opencrvs:webhooks-user`` among them),
  10 minutes of life. OpenCRVS signs RS256 with its private key; the mock signs HS256 with a key
  made at start (no client verifies it; the webhooks endpoint does, as OpenCRVS's does).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from flask import Blueprint, Response, jsonify, request

ISSUER = "opencrvs:auth-service"
WEBHOOKS_AUDIENCE = "opencrvs:webhooks-user"
AUDIENCES = [
    "opencrvs:auth-user",
    "opencrvs:user-mgnt-user",
    "opencrvs:hearth-user",
    "opencrvs:gateway-user",
    "opencrvs:notification-user",
    "opencrvs:workflow-user",
    "opencrvs:search-user",
    "opencrvs:metrics-user",
    "opencrvs:countryconfig-user",
    WEBHOOKS_AUDIENCE,
    "opencrvs:config-user",
    "opencrvs:documents-user",
]
SCOPES_BY_TYPE = {
    "HEALTH": ["notification-api"],
    "NATIONAL_ID": ["nationalId"],
    "RECORD_SEARCH": ["recordsearch"],
    "WEBHOOK": ["webhook"],
    "IMPORT_EXPORT": ["record.import", "record.export", "recordsearch"],
}
DOCS = (
    "Refer to https://documentation.opencrvs.org/technology/interoperability/authenticate-a-client"
)
DEFAULT_TOKEN_SECONDS = 600  # CONFIG_SYSTEM_TOKEN_EXPIRY_SECONDS


@dataclass
class SystemClient:
    """One registered system; ``webhook_permissions``: event -> section codes it may see."""

    system_id: str
    client_id: str
    client_secret: str
    sha_secret: str
    name: str
    type: str
    status: str = "active"
    webhook_permissions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def scope(self) -> list[str]:
        return list(SCOPES_BY_TYPE[self.type])

    @property
    def created_by_type(self) -> str:
        """What OpenCRVS's webhooks service files the client under: ``webhook`` clients get
        Bundles cut to their permissions, every other type the whole record."""
        return "webhook" if "webhook" in self.scope else "health"

    def public(self) -> dict[str, Any]:
        """OpenCRVS's ``pickSystem``: what the registration answer shows (with shaSecret)."""
        return {
            "name": self.name,
            "status": self.status,
            "type": self.type,
            "_id": self.system_id,
            "shaSecret": self.sha_secret,
            "clientId": self.client_id,
            "settings": {
                "webhook": [
                    {"event": event, "permissions": list(permissions)}
                    for event, permissions in self.webhook_permissions.items()
                ],
                "dailyQuota": 0,
            },
        }


class SystemClients:
    """Registered systems and the tokens issued to them; thread-safe."""

    def __init__(self, token_seconds: int = DEFAULT_TOKEN_SECONDS) -> None:
        self._lock = threading.Lock()
        self._by_client: dict[str, SystemClient] = {}
        self._key = secrets.token_bytes(32)
        self.token_seconds = token_seconds
        self.tokens_issued = 0

    def register(
        self,
        name: str,
        type_: str = "HEALTH",
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        sha_secret: str | None = None,
        webhook_permissions: dict[str, list[str]] | None = None,
    ) -> SystemClient:
        if type_ not in SCOPES_BY_TYPE:
            raise ValueError(f"type must be one of {sorted(SCOPES_BY_TYPE)}")
        client = SystemClient(
            system_id=uuid.uuid4().hex[:24],  # a Mongo ObjectId's length
            client_id=client_id or str(uuid.uuid4()),
            client_secret=client_secret or str(uuid.uuid4()),
            sha_secret=sha_secret or str(uuid.uuid4()),
            name=name,
            type=type_,
            webhook_permissions=dict(webhook_permissions or {}),
        )
        with self._lock:
            self._by_client[client.client_id] = client
        return client

    def set_status(self, client_id: str, status: str) -> SystemClient | None:
        with self._lock:
            client = self._by_client.get(client_id)
            if client is not None:
                client.status = status
            return client

    def by_system_id(self, system_id: str) -> SystemClient | None:
        with self._lock:
            return next((c for c in self._by_client.values() if c.system_id == system_id), None)

    def authenticate(self, client_id: str, client_secret: str) -> SystemClient | None:
        with self._lock:
            client = self._by_client.get(client_id)
        if client is None:
            return None
        if not hmac.compare_digest(client.client_secret.encode(), client_secret.encode()):
            return None
        return client

    def issue(self, client: SystemClient) -> str:
        now = int(time.time())
        claims = {
            "scope": client.scope,
            "userType": "system",
            "sub": client.system_id,
            "iat": now,
            "exp": now + self.token_seconds,
            "aud": AUDIENCES,
            "iss": ISSUER,
        }
        with self._lock:
            self.tokens_issued += 1
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str, audience: str = WEBHOOKS_AUDIENCE) -> dict[str, Any] | None:
        """The token's claims if it is ours, unexpired and meant for ``audience``."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=["HS256"], audience=audience, issuer=ISSUER
            )
        except jwt.PyJWTError:
            return None
        return claims


def _oauth_error(status: int, code: str, description: str) -> tuple[Response, int]:
    response = jsonify({"error": code, "error_description": description, "error_uri": DOCS})
    response.headers["Cache-Control"] = "no-store"
    return response, status


def auth_blueprint(clients: SystemClients) -> Blueprint:
    """OpenCRVS's auth service token endpoint, under ``/auth``."""
    bp = Blueprint("crvs_auth", __name__)

    @bp.post("/auth/token")
    def token() -> tuple[Response, int]:
        grant = request.args.get("grant_type")
        if grant != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type",
                'Invalid or undefined grant type. Only "client_credentials" or '
                '"urn:opencrvs:oauth:grant-type:token-exchange" are supported.',
            )
        client_id = request.args.get("client_id")
        client_secret = request.args.get("client_secret")
        if not client_id or not client_secret:
            return _oauth_error(
                400,
                "invalid_request",
                "Invalid request. Check that all required parameters have been provided.",
            )
        client = clients.authenticate(client_id, client_secret)
        if client is None or client.status != "active":
            return _oauth_error(401, "invalid_client", "Invalid client id or secret")
        response = jsonify({"access_token": clients.issue(client), "token_type": "Bearer"})
        response.headers["Cache-Control"] = "no-store"
        return response, 200

    return bp
