"""A system client's bearer token from OpenCRVS's auth service (client credentials).

OpenCRVS (``packages/auth``, ``oauthToken``) issues tokens to registered system clients at
``POST <auth>/token?grant_type=client_credentials&client_id=…&client_secret=…``: the three
values travel as *query parameters*, not a form body. It answers 200
``{"access_token", "token_type": "Bearer"}`` with no ``expires_in``; a system token lives 10
minutes by default (``CONFIG_SYSTEM_TOKEN_EXPIRY_SECONDS``). Refusals are OAuth-shaped:
400 ``invalid_request`` / ``unsupported_grant_type``, 401 ``invalid_client`` ("Invalid client
id or secret").

So the expiry is read from the token's own ``exp`` claim (decoded, not verified: the token is
the auth service's business, we only need to know when to fetch a new one) and the token is
renewed a minute early; a caller told 401 by OpenCRVS calls ``invalidate`` and asks again.
The secret and the token are never logged; errors name the reason OpenCRVS gave.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Clock, PartnerHttpClient
from connectors.base.errors import PartnerProtocolError, PermanentPartnerError

DEFAULT_LIFETIME = timedelta(minutes=10)  # OpenCRVS's default for system tokens
RENEW_BEFORE = timedelta(seconds=60)
REFUSALS = frozenset({400, 401, 403})


class TokenRefused(PermanentPartnerError):
    """The auth service refused the client credentials; ``detail`` carries its reason."""


def token_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, without verifying it; None when it cannot be read."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        try:
            return datetime.fromtimestamp(float(exp), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _refusal_reason(body: bytes) -> str:
    try:
        answer: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "no reason given"
    if isinstance(answer, dict):
        code = answer.get("error")
        text = answer.get("error_description") or answer.get("message")
        found = ": ".join(str(x)[:200] for x in (code, text) if isinstance(x, str) and x)
        if found:
            return found
    return "no reason given"


class SystemToken:
    """Fetches, caches and renews one system client's bearer token; thread-safe."""

    def __init__(
        self,
        http: PartnerHttpClient,
        path: str,
        client_id: str,
        client_secret: str,
        clock: Clock,
    ) -> None:
        self._http = http
        self._path = path
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at: datetime | None = None
        self.fetched = 0  # how many tokens were asked for (tests, the operator's view)

    def bearer(self) -> str:
        """A token valid for at least another minute (fetched when needed)."""
        with self._lock:
            if self._token and self._renew_at and self._clock.now() < self._renew_at:
                return self._token
            token, expires = self._fetch()
            self._token = token
            self._renew_at = expires - RENEW_BEFORE
            return token

    def invalidate(self) -> None:
        """Forget the token (OpenCRVS refused it: expired or revoked)."""
        with self._lock:
            self._token = None
            self._renew_at = None

    def _fetch(self) -> tuple[str, datetime]:
        operation = "POST token"
        response = self._http.post(
            self._path,
            params={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            operation=operation,
            accept=REFUSALS,
        )
        self.fetched += 1
        if response.status_code in REFUSALS:
            raise TokenRefused(
                self._http.partner,
                operation,
                f"http_{response.status_code}",
                "OpenCRVS's auth service refused the system client "
                f"({_refusal_reason(response.content)}); check client_id and client_secret",
            )
        answer = self._http.json_of(response, operation)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise PartnerProtocolError(
                self._http.partner, operation, "no_token", "the answer has no access_token"
            )
        now = self._clock.now()
        expires = token_expiry(token) or now + DEFAULT_LIFETIME
        if expires - RENEW_BEFORE <= now:  # a very short-lived token: use it once
            expires = now + RENEW_BEFORE
        return token, expires
