"""HTTP Digest access authentication (RFC 7616) as the OpenRosa Authentication API restricts it.

The hub offers ``qop="auth"`` with MD5 (the only algorithm the OpenRosa "Restricted Digest"
lets a server name, and the one ODK Collect's okhttp-digest picks: it answers the *first*
Digest challenge it sees) and SHA-256 (RFC 7616's stronger choice, for clients that support
it). Both need a password-equivalent per user, ``HA1 = H(username:realm:password)``, which the
caller stores sealed (see ``hub.openrosa.credentials``).

Server nonces carry their own proof: ``base64url(time ‖ random ‖ HMAC(key, time ‖ random))``.
So the hub keeps no nonce table, any process holding the key can check any nonce, and an
expired one is recognised as ours and answered ``stale=true`` (the device retries with a fresh
nonce without asking the field worker again). What a signed nonce cannot prove by itself is
that a request was not replayed: ``NonceCounts`` remembers, per nonce, the nonce counts (``nc``)
already used, in memory and bounded, which stops replays within one process for the nonce's
lifetime — "within reason": several processes behind a load balancer each keep their own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Algorithm = Literal["MD5", "SHA-256"]
ALGORITHMS: tuple[Algorithm, ...] = ("MD5", "SHA-256")
NONCE_LABEL = b"srhub-openrosa-digest-nonce-v1"
_RANDOM_BYTES = 12
_MAC_BYTES = 16
# A nonce dated this far in the future (clock steps between processes) is still accepted.
_FUTURE_SKEW_SECONDS = 30


def _hash(algorithm: Algorithm, text: str) -> str:
    name = "md5" if algorithm == "MD5" else "sha256"
    return hashlib.new(name, text.encode("utf-8")).hexdigest()


def ha1(algorithm: Algorithm, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)``: what a user's Digest check needs instead of the
    password (RFC 7616 §3.4.2). It is a password-equivalent for this realm: keep it sealed."""
    return _hash(algorithm, f"{username}:{realm}:{password}")


def expected_response(
    algorithm: Algorithm,
    ha1_hex: str,
    *,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str,
    method: str,
    uri: str,
) -> str:
    """The ``response`` a client with the right password sends (RFC 7616 §3.4.1, qop=auth)."""
    ha2 = _hash(algorithm, f"{method}:{uri}")
    return _hash(algorithm, f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --- nonces ------------------------------------------------------------------------------------


NonceState = Literal["fresh", "stale", "invalid"]


@dataclass(frozen=True)
class NonceSigner:
    """Issues and checks HMAC-signed, time-stamped server nonces."""

    key: bytes
    ttl_seconds: int

    @classmethod
    def from_secret(cls, secret: bytes, ttl_seconds: int) -> NonceSigner:
        """A signer keyed by HMAC(secret, label): never the raw secret, so a nonce MAC can
        never be replayed as a token or cookie signature."""
        return cls(hmac.new(secret, NONCE_LABEL, hashlib.sha256).digest(), ttl_seconds)

    def __repr__(self) -> str:  # never print the key
        return f"NonceSigner(ttl_seconds={self.ttl_seconds})"

    def issue(self, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        body = struct.pack(">Q", issued) + secrets.token_bytes(_RANDOM_BYTES)
        mac = hmac.new(self.key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(body + mac).decode("ascii").rstrip("=")

    def check(self, nonce: str, now: float | None = None) -> NonceState:
        """``fresh`` (ours, within its lifetime), ``stale`` (ours, expired) or ``invalid``."""
        if not nonce or len(nonce) > 64:
            return "invalid"
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return "invalid"
        if len(raw) != 8 + _RANDOM_BYTES + _MAC_BYTES:
            return "invalid"
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        wanted = hmac.new(self.key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, wanted):
            return "invalid"
        (issued,) = struct.unpack(">Q", body[:8])
        current = time.time() if now is None else now
        if issued > current + _FUTURE_SKEW_SECONDS:
            return "invalid"
        return "stale" if current - issued > self.ttl_seconds else "fresh"


class NonceCounts:
    """The nonce counts already used with each nonce (replay protection), bounded in memory.

    RFC 7616 §5.4 lets a server refuse a repeated ``nc``. Counts are kept as a set rather than
    a high-water mark because a device may send several requests on one nonce at once and they
    can arrive out of order. Nonces older than their lifetime are dropped (they are refused as
    stale anyway), and at most ``max_nonces`` nonces with ``max_counts`` counts each are kept.
    """

    def __init__(self, ttl_seconds: int, max_nonces: int = 50_000, max_counts: int = 10_000):
        self._ttl = ttl_seconds
        self._max_nonces = max_nonces
        self._max_counts = max_counts
        self._seen: OrderedDict[str, tuple[float, set[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, nonce: str, nc: int, now: float | None = None) -> bool:
        """Record ``nc`` for ``nonce``; False when it was used before (a replay) or when the
        nonce has been used more often than anyone honest would."""
        current = time.monotonic() if now is None else now
        with self._lock:
            self._expire(current)
            entry = self._seen.get(nonce)
            if entry is None:
                entry = (current, set())
                self._seen[nonce] = entry
                while len(self._seen) > self._max_nonces:
                    self._seen.popitem(last=False)
            counts = entry[1]
            if nc in counts or len(counts) >= self._max_counts:
                return False
            counts.add(nc)
            return True

    def _expire(self, now: float) -> None:
        while self._seen:
            first_seen, _ = next(iter(self._seen.values()))
            if now - first_seen <= self._ttl + _FUTURE_SKEW_SECONDS:
                break
            self._seen.popitem(last=False)


# --- the exchange ------------------------------------------------------------------------------


def challenge(realm: str, nonce: str, algorithm: Algorithm, domain: str, stale: bool) -> str:
    """One ``WWW-Authenticate: Digest`` challenge. ``domain`` is required by the OpenRosa
    Restricted Digest ("server MUST specify") so devices authenticate proactively there."""
    parts = [
        f'realm="{realm}"',
        'qop="auth"',
        f"algorithm={algorithm}",
        f'nonce="{nonce}"',
        f'domain="{domain}"',
        'charset="UTF-8"',
    ]
    if stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


@dataclass(frozen=True)
class DigestCredentials:
    """The parameters of one ``Authorization: Digest`` header, checked for shape."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm
    qop: str
    nc: str
    cnonce: str

    @property
    def nc_value(self) -> int:
        return int(self.nc, 16)


class MalformedDigest(ValueError):
    """An Authorization: Digest header that lacks a parameter or has one of the wrong form."""


def parse_credentials(params: Mapping[str, str | None]) -> DigestCredentials:
    """Check the parameters of a Digest header (as parsed by werkzeug) and return them.

    Only what the hub offers is accepted: qop=auth (so nc and cnonce are required), MD5 or
    SHA-256, no ``userhash`` and no ``-sess`` variants.
    """

    def need(name: str, limit: int = 512) -> str:
        value = params.get(name)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise MalformedDigest(f"parameter {name} is missing or too long")
        return value

    algorithm_text = (params.get("algorithm") or "MD5").upper()
    if algorithm_text not in ALGORITHMS:
        raise MalformedDigest("algorithm not offered")
    if (params.get("userhash") or "false").lower() != "false":
        raise MalformedDigest("userhash is not supported")
    qop = need("qop", 16)
    if qop != "auth":
        raise MalformedDigest("qop must be auth")
    nc = need("nc", 8)
    if len(nc) != 8 or any(c not in "0123456789abcdefABCDEF" for c in nc):
        raise MalformedDigest("nc must be 8 hex digits")
    algorithm: Algorithm = "MD5" if algorithm_text == "MD5" else "SHA-256"
    return DigestCredentials(
        username=need("username", 64),
        realm=need("realm", 128),
        nonce=need("nonce", 64),
        uri=need("uri", 4096),
        response=need("response", 128).lower(),
        algorithm=algorithm,
        qop=qop,
        nc=nc,
        cnonce=need("cnonce", 256),
    )
