"""Everything the hub sent the program MIS, kept so end-to-end tests can read it back.

One log for every channel (``webhook``, ``dci``, ``amqp``), numbered in arrival order, so a test
can ask "what arrived since number N" without racing the clock. Kept in memory with a cap: the
sandbox is for tests and demos, not an archive.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers

CHANNELS = ("webhook", "dci", "amqp")
DEFAULT_SIGNATURE_HEADERS = ("X-Hub-Signature-256", "X-Hub-Signature", "X-Signature")


class NotificationLog:
    def __init__(self, limit: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._items: deque[dict[str, Any]] = deque(maxlen=limit)
        self._numbers = itertools.count(1)

    def record(self, channel: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            entry = {
                "seq": next(self._numbers),
                "channel": channel,
                "received_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                **fields,
            }
            self._items.append(entry)
            return entry

    def query(
        self, channel: str | None = None, since: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Entries of ``channel`` after ``since`` (a ``seq`` number or an ISO date-time)."""
        after_seq, after_time = _parse_since(since)
        with self._lock:
            items = [
                dict(entry)
                for entry in self._items
                if (channel is None or entry["channel"] == channel)
                and (after_seq is None or entry["seq"] > after_seq)
                and (
                    after_time is None or datetime.fromisoformat(entry["received_at"]) > after_time
                )
            ]
        return items[:limit] if limit else items

    def clear(self, channel: str | None = None) -> int:
        with self._lock:
            before = len(self._items)
            kept = [e for e in self._items if channel is not None and e["channel"] != channel]
            self._items.clear()
            self._items.extend(kept)
            return before - len(kept)

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = dict.fromkeys(CHANNELS, 0)
            for entry in self._items:
                counts[entry["channel"]] = counts.get(entry["channel"], 0) + 1
            return counts


def _parse_since(since: str | None) -> tuple[int | None, datetime | None]:
    if since is None or since == "":
        return None, None
    if since.isdigit():
        return int(since), None
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since: {since!r} is neither a sequence number nor an ISO 8601 date-time"
        ) from None
    return None, moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SignatureCheck:
    """How a webhook's HMAC signature fared. ``verified`` is None when nothing could be checked."""

    header: str | None
    verified: bool | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"header": self.header, "verified": self.verified, "reason": self.reason}


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, body)>``, the value a sender puts in the header."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_signature(
    secret: str | None,
    body: bytes,
    headers: Mapping[str, str] | Headers,
    header_names: tuple[str, ...] = DEFAULT_SIGNATURE_HEADERS,
) -> SignatureCheck:
    """Verify ``sha256=<hex>`` (or bare hex) over the raw body, in constant time. A header
    may carry several signatures separated by spaces (a sender rotating its secret signs
    with both during the overlap): one that matches is enough."""
    header = next((name for name in header_names if headers.get(name)), None)
    if header is None:
        return SignatureCheck(None, None if secret is None else False, "no signature header")
    if secret is None:
        return SignatureCheck(header, None, "no secret configured; signature not checked")
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    matched = False
    for value in headers[header].split()[:8]:
        algorithm, _, digest = value.partition("=") if "=" in value else ("sha256", "", value)
        if algorithm.lower() != "sha256":
            return SignatureCheck(header, False, f"unsupported algorithm {algorithm!r}")
        matched |= hmac.compare_digest(
            expected.encode("ascii"), digest.strip().lower().encode("ascii", "replace")
        )
    if matched:
        return SignatureCheck(header, True, "signature matches")
    return SignatureCheck(header, False, "signature does not match the body")
