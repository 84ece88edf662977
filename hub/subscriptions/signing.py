"""Webhook signatures: what the hub sends and how a receiver checks it.

The main signature, ``X-SR-Signature: sha256=<hex>``, is HMAC-SHA256 with the subscription's
secret over ``<timestamp>.<body>`` where ``<timestamp>`` is the ``X-SR-Timestamp`` header (Unix
seconds). Binding the time into the MAC is what lets a receiver refuse replays: a captured
request re-sent later fails the freshness window even though its signature is genuine.

For receivers built for GitHub-style webhooks (the sandbox's program MIS among them) the hub
also sends ``X-Hub-Signature-256: sha256=<hex>`` over the body alone. It proves origin and
integrity but not freshness; receivers should prefer the first one (documented in
docs/notifications.md).

While a subscription's secret rotates (``hub.subscriptions.secret_rotation``) each header
carries two signatures separated by a space, one per secret (``sha256=<new> sha256=<old>``,
as Standard Webhooks does with ``v1,<sig> v1,<sig>``); a receiver accepts the request when
any of them matches its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

SIGNATURE_HEADER = "X-SR-Signature"
TIMESTAMP_HEADER = "X-SR-Timestamp"
BODY_SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A webhook request that must not be trusted; the text says why."""


def _mac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _secrets(secret: bytes | Sequence[bytes]) -> list[bytes]:
    return [secret] if isinstance(secret, bytes) else list(secret)


def signature_headers(
    secret: bytes | Sequence[bytes], body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The headers that sign ``body`` for one delivery attempt, with one signature per
    secret given (several during a secret rotation's overlap)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    keys = _secrets(secret)
    stamped = f"{stamp}.".encode("ascii") + body
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: " ".join("sha256=" + _mac(k, stamped) for k in keys),
        BODY_SIGNATURE_HEADER: " ".join("sha256=" + _mac(k, body) for k in keys),
    }


def verify(
    secret: bytes | Sequence[bytes],
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a received webhook; return its timestamp or raise ``SignatureError``.

    Constant-time comparison; the timestamp must be within ``tolerance_s`` of ``now``. The
    header may carry several signatures (a sender rotating its secret), and ``secret`` may be
    several (a receiver rotating its own: the previous secret during its overlap window); one
    match is enough.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp_text = lowered.get(TIMESTAMP_HEADER.lower(), "").strip()
    signature = lowered.get(SIGNATURE_HEADER.lower(), "").strip()
    if not stamp_text or not signature:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not stamp_text.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds")
    stamp = int(stamp_text)
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {int(current - stamp)}s away from now (allowed "
            f"{tolerance_s}s): a replay or a badly set clock"
        )
    digests: list[bytes] = []
    for token in signature.split()[:8]:
        algorithm, _, text = token.partition("=")
        if algorithm.lower() != "sha256" or not text:
            raise SignatureError(f"{SIGNATURE_HEADER} must look like sha256=<hex>")
        digests.append(text.lower().encode("ascii", "replace"))
    stamped = f"{stamp}.".encode("ascii") + body
    matched = False
    for key in _secrets(secret):
        expected = _mac(key, stamped).encode("ascii")
        for found in digests:  # every comparison runs: no early exit on a match
            matched |= hmac.compare_digest(expected, found)
    if not matched:
        raise SignatureError("signature does not match the body and timestamp")
    return stamp
