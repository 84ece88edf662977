"""DCI (SPDCI) envelopes: validate what arrives, build what goes out. No I/O, no Flask.

Why: every DCI call shares one envelope ``{signature, header, message}``, and every way a
partner can get it wrong has a code in the spec. Validation happens here, at the edge, with
jsonschema, and each failure becomes an ``EnvelopeError`` carrying the ``err.*`` code, the
``rjct.*`` reason code when one fits, an HTTP status and a reason a person can act on.

The message checks follow the CRVS API file (``crvs_api_v1.0.0.yaml``) where clients most
often part from it: ``signature`` is a string (``MsgSignature``), never null; ``locale`` is
ISO 639-3 (``^[a-z]{3}$``); a subscribe names ``reg_event_type``, ``filter`` and
``notify_record_type``. Callbacks go to ``sender_uri`` exactly as the client gave it.
"""

from __future__ import annotations

import uuid
from collections import deque
from datetime import UTC, datetime
from threading import Lock
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

SUPPORTED_VERSIONS = ("1.0.0", "1.0")
REG_TYPE = "ns:org:RegistryType:Civil"  # the CRVS API's example reg_type
REG_RECORD_TYPE = "spdci-extensions-dci:Person"  # its example reg_record_type
LOCALE = "eng"

_HEADER = {
    "type": "object",
    "required": ["message_id", "message_ts", "action", "sender_id", "total_count"],
    "properties": {
        "version": {"type": "string"},
        "message_id": {"type": "string", "minLength": 1, "maxLength": 256},
        "message_ts": {"type": "string", "minLength": 1, "maxLength": 64},
        "action": {"type": "string"},
        "sender_id": {"type": "string", "minLength": 1, "maxLength": 256},
        "sender_uri": {"type": "string", "maxLength": 2048},
        "receiver_id": {"type": "string", "maxLength": 256},
        "total_count": {"type": "integer", "minimum": 0},
        "is_msg_encrypted": {"type": "boolean"},
        "meta": {},
    },
}
_ENVELOPE = {
    "type": "object",
    "required": ["header", "message"],
    "properties": {
        "signature": {"type": "string", "maxLength": 4096},
        "header": _HEADER,
        "message": {"type": "object"},
    },
}
_TXN = {"type": ["string", "integer"], "minLength": 1, "maxLength": 256}
_ITEM_BASE = {
    "reference_id": {"type": ["string", "integer"], "minLength": 1, "maxLength": 256},
    "timestamp": {"type": "string"},
    "locale": {"type": "string", "pattern": "^[a-z]{3}$"},
}
MESSAGE_SCHEMAS: dict[str, dict[str, Any]] = {
    "search": {
        "type": "object",
        "required": ["transaction_id", "search_request"],
        "properties": {
            "transaction_id": _TXN,
            "search_request": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["reference_id", "search_criteria"],
                    "properties": {**_ITEM_BASE, "search_criteria": {"type": "object"}},
                },
            },
        },
    },
    "subscribe": {
        "type": "object",
        "required": ["transaction_id", "subscribe_request"],
        "properties": {
            "transaction_id": _TXN,
            "subscribe_request": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["reference_id", "subscribe_criteria"],
                    "properties": {
                        **_ITEM_BASE,
                        "subscribe_criteria": {
                            "type": "object",
                            "required": ["reg_event_type", "filter", "notify_record_type"],
                            "properties": {
                                "reg_event_type": {"type": "string"},
                                "filter": {"type": ["object", "array"]},
                                "notify_record_type": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
    "unsubscribe": {
        "type": "object",
        "required": ["transaction_id", "subscription_codes"],
        "properties": {
            "transaction_id": _TXN,
            "timestamp": {"type": "string"},
            "subscription_codes": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {"type": "string", "minLength": 1, "maxLength": 256},
            },
        },
    },
}
_ENVELOPE_VALIDATOR = Draft202012Validator(_ENVELOPE)
_MESSAGE_VALIDATORS = {k: Draft202012Validator(v) for k, v in MESSAGE_SCHEMAS.items()}
_REASON_BY_FIELD = {
    "version": "rjct.version.invalid",
    "message_ts": "rjct.message_ts.invalid",
    "action": "rjct.action.invalid",
    "total_count": "rjct.total_count.invalid",
}


class EnvelopeError(Exception):
    """A request refused as a whole: renders as an ``ack_status: ERR`` answer."""

    def __init__(
        self,
        code: str,
        message: str,
        reason_code: str | None = None,
        http_status: int = 400,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason_code = reason_code
        self.http_status = http_status


def now_ts() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _path(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(body)"


def validate_envelope(body: Any, action: str) -> dict[str, Any]:
    """Check the envelope and the header; return the header. Raises ``EnvelopeError``."""
    error = best_match(_ENVELOPE_VALIDATOR.iter_errors(body))
    if error is not None:
        path = list(error.absolute_path)
        field = str(path[1]) if len(path) >= 2 and path[0] == "header" else None
        if error.validator == "required" and path == ["header"]:
            missing = [f for f in _HEADER["required"] if f not in body["header"]]
            field = missing[0] if missing else None
        if path[:1] == ["signature"]:
            raise EnvelopeError(
                "err.signature.invalid",
                "signature must be a string (MsgSignature); leave it out when not signing",
            )
        raise EnvelopeError(
            "err.request.bad",
            f"invalid envelope at {_path(error)}: {error.message}",
            _REASON_BY_FIELD.get(field or ""),
        )
    header: dict[str, Any] = body["header"]
    version = header.get("version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise EnvelopeError(
            "err.version.not_supported",
            f"version {version!r} is not supported; use 1.0.0",
            "rjct.version.invalid",
        )
    if header["action"] != action:
        raise EnvelopeError(
            "err.request.bad",
            f"header.action is {header['action']!r} but this endpoint takes {action!r}",
            "rjct.action.invalid",
        )
    try:
        datetime.fromisoformat(header["message_ts"].replace("Z", "+00:00"))
    except ValueError:
        raise EnvelopeError(
            "err.request.bad",
            "header.message_ts must be an ISO 8601 date-time",
            "rjct.message_ts.invalid",
        ) from None
    if header.get("is_msg_encrypted"):
        raise EnvelopeError(
            "err.encryption.invalid", "this registry does not accept encrypted messages"
        )
    return header


def validate_message(body: dict[str, Any], action: str) -> dict[str, Any]:
    message: dict[str, Any] = body["message"]
    error = best_match(_MESSAGE_VALIDATORS[action].iter_errors(message))
    if error is not None:
        reason = "rjct.total_count.limit_exceeded" if error.validator == "maxItems" else None
        raise EnvelopeError(
            "err.request.bad", f"invalid message at {_path(error)}: {error.message}", reason
        )
    return message


def require_sender_uri(header: dict[str, Any]) -> str:
    uri = header.get("sender_uri")
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnvelopeError(
            "err.sender_uri.invalid",
            "header.sender_uri must be an absolute http(s) URL for asynchronous calls",
        )
    return str(uri)


class SeenMessages:
    """Recently seen ``(sender_id, message_id)`` pairs, to refuse replays."""

    def __init__(self, size: int = 10_000) -> None:
        self._order: deque[tuple[str, str]] = deque()
        self._seen: set[tuple[str, str]] = set()
        self._size = size
        self._lock = Lock()

    def check_and_add(self, sender_id: str, message_id: str) -> None:
        key = (sender_id, message_id)
        with self._lock:
            if key in self._seen:
                raise EnvelopeError(
                    "err.request.bad",
                    f"message_id {message_id!r} was already received from this sender",
                    "rjct.message_id.duplicate",
                )
            self._seen.add(key)
            self._order.append(key)
            if len(self._order) > self._size:
                self._seen.discard(self._order.popleft())


def response_header(
    action: str,
    sender_id: str,
    receiver_id: str | None,
    status: str,
    total: int,
    completed: int,
    reason_code: str | None = None,
    reason_message: str | None = None,
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "version": "1.0.0",
        "message_id": str(uuid.uuid4()),
        "message_ts": now_ts(),
        "action": action,
        "status": status,
        "total_count": total,
        "completed_count": completed,
        "sender_id": sender_id,
        "is_msg_encrypted": False,
    }
    if receiver_id:
        header["receiver_id"] = receiver_id
    if reason_code:
        header["status_reason_code"] = reason_code
    if reason_message:
        header["status_reason_message"] = reason_message
    return header


def ack(correlation_id: str) -> dict[str, Any]:
    return {
        "message": {"ack_status": "ACK", "timestamp": now_ts(), "correlation_id": correlation_id}
    }


def error_body(
    error: EnvelopeError, registry_id: str, action: str, receiver_id: str | None = None
) -> dict[str, Any]:
    """Both views of a refusal: an ERR acknowledgement and a ``rjct`` callback header."""
    return {
        "header": response_header(
            f"on-{action}" if not action.startswith("on-") else action,
            registry_id,
            receiver_id,
            "rjct",
            0,
            0,
            error.reason_code or error.code,
            error.message,
        ),
        "message": {
            "ack_status": "ERR",
            "timestamp": now_ts(),
            "error": {"code": error.code, "message": error.message},
            "correlation_id": str(uuid.uuid4()),
        },
    }
