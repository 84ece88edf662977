"""Who a request counts against: the credential it carries, else its client address.

A credential is never stored or logged: its counter is keyed by a SHA-256 digest. Bearer
tokens and API keys are counted per value (a partner's key, a program's token); OpenRosa
Basic and Digest per user name, because every Digest header differs (fresh nonce and
cnonce) while the device's user stays the same; a dashboard session per session cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

SESSION_COOKIE = "srhub_ui"  # hub.ui.security's SESSION_COOKIE_NAME
_DIGEST_USER = re.compile(r'username\s*=\s*"((?:[^"\\]|\\.)*)"', re.IGNORECASE)


def digest(kind: str, value: str) -> str:
    """``kind:<32 hex>``: a counter key that identifies a credential without holding it."""
    return f"{kind}:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def credential_key(authorization: str, api_key: str, session: str) -> str | None:
    """The counter key of the credential a request carries (its ``Authorization`` and
    ``X-API-Key`` headers, its dashboard session cookie), None when it carries none."""
    authorization = authorization.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            try:
                user = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return digest("authorization", authorization)
            return digest("user", user)
        if scheme == "digest":
            found = _DIGEST_USER.search(value)
            return digest("user", found.group(1)) if found else digest("authorization", value)
        return digest("credential", value or authorization)
    api_key = api_key.strip()
    if api_key:
        return digest("credential", api_key)
    if session:
        return digest("session", session)
    return None


def address_key(remote_addr: str | None) -> str:
    """The counter key of a client address (as the trusted proxies report it)."""
    return f"address:{remote_addr or 'unknown'}"
