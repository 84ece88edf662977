"""DCI message signatures: the ``signature`` field of an envelope, signed with ed25519.

The spec gives the field's shape (``MsgSignature``)::

    Signature: namespace="spdci", kidId="{sender_id}|{key_id}|{algorithm}", algorithm="ed25519",
    created="<unix>", expires="<unix>", headers="(created) (expires) digest",
    signature="<Base64 of the ed25519 signature of the signing string>"

and says it covers ``{header}+{message}``. It names no canonical form for the JSON, so we fix
one and document it (docs/standard-apis.md), following the Beckn-style scheme the field comes
from:

- ``digest`` = ``BLAKE-512=`` + Base64(BLAKE2b-512(canonical JSON of
  ``{"header": header, "message": message}``)); canonical JSON means keys sorted, no spaces,
  UTF-8 (``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``);
- the signing string is the three lines ``(created): <created>``, ``(expires): <expires>``,
  ``digest: <digest>`` joined by ``\\n``.

Signing over the parsed JSON (not the raw bytes) lets the envelope pass through proxies that
re-serialise it. Verification checks the time window too, so a captured envelope stops being
accepted once it expires. Everything here is pure: keys come in as ``cryptography`` objects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from standards.dci import codes

NAMESPACE = "spdci"
ALGORITHM = "ed25519"
SIGNED_HEADERS = "(created) (expires) digest"
DEFAULT_TTL_SECONDS = 300
# Longest signature lifetime (expires - created) a verifier accepts unless told otherwise.
DEFAULT_MAX_LIFETIME_SECONDS = 3600
MAX_SIGNATURE_LENGTH = 2048
_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')
_REQUIRED = ("kidId", "algorithm", "created", "expires", "headers", "signature")


class SignatureError(ValueError):
    """A signature is missing or does not verify; ``code`` is the DCI error code to answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignatureParams:
    sender_id: str
    key_id: str
    algorithm: str
    created: int
    expires: int
    headers: str
    signature: bytes


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def body_digest(header: Any, message: Any) -> str:
    digest = hashlib.blake2b(canonical_json({"header": header, "message": message}), digest_size=64)
    return "BLAKE-512=" + base64.b64encode(digest.digest()).decode("ascii")


def signing_string(created: int, expires: int, digest: str) -> bytes:
    return f"(created): {created}\n(expires): {expires}\ndigest: {digest}".encode()


def sign_envelope(
    header: Any,
    message: Any,
    private_key: Ed25519PrivateKey,
    *,
    sender_id: str,
    key_id: str,
    now: float | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
) -> str:
    """The ``signature`` field value for an envelope with ``header`` and ``message``."""
    created = int(now if now is not None else time.time())
    expires = created + ttl_seconds
    raw = private_key.sign(signing_string(created, expires, body_digest(header, message)))
    return (
        f'Signature: namespace="{NAMESPACE}", kidId="{sender_id}|{key_id}|{ALGORITHM}", '
        f'algorithm="{ALGORITHM}", created="{created}", expires="{expires}", '
        f'headers="{SIGNED_HEADERS}", signature="{base64.b64encode(raw).decode("ascii")}"'
    )


def parse_signature(text: Any) -> SignatureParams:
    """Parse the field; raise SignatureError(err.signature.invalid) saying what is wrong."""
    invalid = codes.ERR_SIGNATURE_INVALID
    if not isinstance(text, str) or not text.strip():
        raise SignatureError(codes.ERR_SIGNATURE_MISSING, "the envelope carries no signature")
    if len(text) > MAX_SIGNATURE_LENGTH:
        raise SignatureError(invalid, f"the signature is longer than {MAX_SIGNATURE_LENGTH}")
    params = dict(_PARAM.findall(text))
    missing = [name for name in _REQUIRED if name not in params]
    if missing:
        raise SignatureError(invalid, "the signature lacks " + ", ".join(missing))
    parts = params["kidId"].split("|")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise SignatureError(invalid, 'kidId must be "{sender_id}|{key_id}|{algorithm}"')
    if params["algorithm"] != ALGORITHM or parts[2] != ALGORITHM:
        raise SignatureError(invalid, f"only the {ALGORITHM} algorithm is accepted")
    if params["headers"].split() != SIGNED_HEADERS.split():
        raise SignatureError(invalid, f'headers must be "{SIGNED_HEADERS}"')
    try:
        created, expires = int(params["created"]), int(params["expires"])
        raw = base64.b64decode(params["signature"], validate=True)
    except (ValueError, binascii.Error):
        raise SignatureError(
            invalid, "created/expires must be integers, signature Base64"
        ) from None
    return SignatureParams(parts[0], parts[1], ALGORITHM, created, expires, params["headers"], raw)


def verify_envelope(
    text: Any,
    header: Any,
    message: Any,
    public_key: Ed25519PublicKey,
    *,
    now: float | None = None,
    clock_skew_seconds: int = 60,
    max_lifetime_seconds: int | None = None,
) -> SignatureParams:
    """Check the signature of an envelope against the sender's public key and the clock.

    ``max_lifetime_seconds`` caps ``expires - created``: a signature valid for years is a
    replayable credential, whatever the message says (None: no cap)."""
    params = parse_signature(text)
    current = now if now is not None else time.time()
    invalid = codes.ERR_SIGNATURE_INVALID
    if params.created > current + clock_skew_seconds:
        raise SignatureError(invalid, "the signature was created in the future")
    if params.expires < current - clock_skew_seconds or params.expires < params.created:
        raise SignatureError(invalid, "the signature has expired")
    if max_lifetime_seconds is not None and params.expires - params.created > max_lifetime_seconds:
        raise SignatureError(
            invalid,
            f"the signature is valid for {params.expires - params.created}s; at most "
            f"{max_lifetime_seconds}s is accepted (expires - created)",
        )
    payload = signing_string(params.created, params.expires, body_digest(header, message))
    try:
        public_key.verify(params.signature, payload)
    except InvalidSignature:
        raise SignatureError(invalid, "the signature does not match the message") from None
    return params


def load_public_key(text: str) -> Ed25519PublicKey:
    """An ed25519 public key from PEM or from Base64 of the 32 raw bytes."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(stripped.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an ed25519 public key")
        return key
    try:
        raw = base64.b64decode(stripped, validate=True)
    except binascii.Error:
        raise ValueError("the key is neither PEM nor Base64") from None
    if len(raw) != 32:
        raise ValueError("a raw ed25519 public key has 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_base64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")
