"""DCI envelopes: ``{"signature", "header", "message"}`` built and checked without any I/O.

The checks here are the ones a receiver can make from the envelope alone: shape, required
header fields, protocol version, action, and the message timestamp window. Each failure is an
``EnvelopeError`` carrying the spec's error code (``err.*``), the header reason code
(``rjct.*``) when the spec has one, and a message a person can act on. Signature checks and
replay protection need stored state, so the hub does them after these.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standards.dci import codes
from standards.timeutil import utcnow

MAX_ID_LENGTH = 99  # the spec's maxLength for transaction_id, correlation_id and codes
MAX_SENDER_LENGTH = 200


class EnvelopeError(ValueError):
    """The envelope cannot be accepted; render with ``code``/``reason_code``/``message``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        reason_code: str | None = None,
        http_status: int = 400,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason_code = reason_code
        self.http_status = http_status


@dataclass(frozen=True)
class ParsedEnvelope:
    signature: str | None
    header: dict[str, Any]
    message: dict[str, Any]

    @property
    def sender_id(self) -> str:
        return str(self.header["sender_id"])

    @property
    def message_id(self) -> str:
        return str(self.header["message_id"])


def new_id() -> str:
    return uuid.uuid4().hex


def timestamp(moment: datetime | None = None) -> str:
    """An ISO 8601 date-time with zone, as every DCI timestamp must be."""
    value = (moment or utcnow()).astimezone(UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: Any) -> datetime | None:
    """A timezone-aware datetime, or None when ``value`` is not an ISO date-time with zone."""
    if not isinstance(value, str) or not 10 < len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# --- building ---------------------------------------------------------------------------------


def request_header(
    action: str,
    *,
    sender_id: str,
    receiver_id: str | None = None,
    total_count: int = 1,
    sender_uri: str | None = None,
    message_id: str | None = None,
    message_ts: str | None = None,
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "version": codes.PROTOCOL_VERSION,
        "message_id": message_id or new_id(),
        "message_ts": message_ts or timestamp(),
        "action": action,
        "sender_id": sender_id,
        "total_count": total_count,
        "is_msg_encrypted": False,
    }
    if sender_uri:
        header["sender_uri"] = sender_uri
    if receiver_id:
        header["receiver_id"] = receiver_id
    return header


def callback_header(
    action: str,
    *,
    sender_id: str,
    receiver_id: str | None,
    status: str,
    total_count: int,
    completed_count: int,
    reason_code: str | None = None,
    reason_message: str | None = None,
) -> dict[str, Any]:
    """Header of an ``on-*`` callback, a sync answer or a notify (MsgCallbackHeader)."""
    header: dict[str, Any] = {
        "version": codes.PROTOCOL_VERSION,
        "message_id": new_id(),
        "message_ts": timestamp(),
        "action": action,
        "status": status,
        "total_count": total_count,
        "completed_count": completed_count,
        "sender_id": sender_id,
        "is_msg_encrypted": False,
    }
    if receiver_id:
        header["receiver_id"] = receiver_id
    if reason_code and reason_code in codes.HEADER_REASON_CODES:
        header["status_reason_code"] = reason_code
    if reason_message:
        header["status_reason_message"] = reason_message[:999]
    return header


def ack(
    ack_status: str, correlation_id: str, error: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The immediate answer of an async endpoint (the spec's ``Response``)."""
    message: dict[str, Any] = {
        "ack_status": ack_status,
        "timestamp": timestamp(),
        "correlation_id": correlation_id,
    }
    if error is not None:
        message["error"] = {"code": error[0], "message": error[1][:999]}
    return {"message": message}


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem_fields(code: str, message: str, status: int) -> dict[str, Any]:
    """What every refusal carries besides its DCI body: the spec's ``HttpErrorResponse``
    (``errors``) and RFC 9457 problem members (``type``, ``title``, ``status``, ``detail``) with
    the DCI ``code``, so DCI clients and generic HTTP clients both find the reason."""
    text = message[:999]
    return {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": text,
        "code": code,
        "errors": [{"code": code, "message": text}],
    }


def http_errors(code: str, message: str, status: int = 400) -> dict[str, Any]:
    """A refusal with no DCI body of its own (401/403, transport-level errors): the problem
    fields plus a top-level ``message`` text, which simple HTTP clients read. Never use it where
    ``message`` is a DCI message object (an ack, a callback body)."""
    return {**problem_fields(code, message, status), "message": message[:999]}


# --- checking ---------------------------------------------------------------------------------


def _require_text(header: dict[str, Any], name: str, limit: int = MAX_ID_LENGTH) -> None:
    value = header.get(name)
    if not isinstance(value, str) or not value.strip():
        raise EnvelopeError(codes.ERR_REQUEST_BAD, f"header.{name} must be a non-empty string")
    if len(value) > limit:
        raise EnvelopeError(codes.ERR_REQUEST_BAD, f"header.{name} is longer than {limit}")


def check_sender_uri(value: Any) -> str:
    """An absolute http(s) URL, or EnvelopeError(err.sender_uri.invalid)."""
    if not isinstance(value, str) or len(value) > 2000:
        raise EnvelopeError(codes.ERR_SENDER_URI, "header.sender_uri must be an http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnvelopeError(codes.ERR_SENDER_URI, "header.sender_uri must be an http(s) URL")
    return value


MAX_DEPTH = 32


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


def parse_envelope(
    body: Any,
    expected_action: str,
    *,
    now: datetime | None = None,
    max_age: timedelta = timedelta(minutes=10),
    max_future: timedelta = timedelta(minutes=1),
    receiver_id: str | None = None,
) -> ParsedEnvelope:
    """Check the envelope of a request sent to the endpoint for ``expected_action``."""
    bad = codes.ERR_REQUEST_BAD
    if not isinstance(body, dict):
        raise EnvelopeError(bad, "the body must be a JSON object with header and message")
    header, message = body.get("header"), body.get("message")
    if not isinstance(header, dict):
        raise EnvelopeError(bad, "the envelope has no header object")
    if not isinstance(message, dict):
        raise EnvelopeError(bad, "the envelope has no message object")
    if too_deep(body):
        raise EnvelopeError(bad, f"the envelope nests deeper than {MAX_DEPTH} levels")
    signature = body.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise EnvelopeError(codes.ERR_SIGNATURE_INVALID, "signature must be a string")
    version = header.get("version", codes.PROTOCOL_VERSION)
    if not isinstance(version, str) or version not in codes.SUPPORTED_VERSIONS:
        raise EnvelopeError(
            codes.ERR_VERSION,
            f"protocol version {str(version)[:20]!r} is not supported; use "
            + ", ".join(sorted(codes.SUPPORTED_VERSIONS)),
            reason_code=codes.RJCT_VERSION,
        )
    _require_text(header, "message_id")
    _require_text(header, "sender_id", MAX_SENDER_LENGTH)
    action = header.get("action")
    if not isinstance(action, str) or action not in codes.ALL_ACTIONS:
        raise EnvelopeError(
            bad,
            "header.action is not a DCI action",
            reason_code=codes.RJCT_ACTION_INVALID,
        )
    if action != expected_action:
        raise EnvelopeError(
            bad,
            f"this endpoint takes action {expected_action!r}, not {action!r}",
            reason_code=codes.RJCT_ACTION_NOT_SUPPORTED,
        )
    sent = parse_timestamp(header.get("message_ts"))
    if sent is None:
        raise EnvelopeError(
            bad,
            "header.message_ts must be an ISO 8601 date-time with a time zone",
            reason_code=codes.RJCT_MESSAGE_TS,
        )
    current = now or utcnow()
    if sent < current - max_age:
        raise EnvelopeError(
            bad,
            f"header.message_ts is older than {int(max_age.total_seconds())} s; "
            "send a fresh message",
            reason_code=codes.RJCT_MESSAGE_TS,
        )
    if sent > current + max_future:
        raise EnvelopeError(
            bad,
            "header.message_ts is in the future; check the sender's clock",
            reason_code=codes.RJCT_MESSAGE_TS,
        )
    total = header.get("total_count")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise EnvelopeError(
            bad,
            "header.total_count must be a non-negative integer",
            reason_code=codes.RJCT_TOTAL_COUNT_INVALID,
        )
    if header.get("is_msg_encrypted") is True:
        raise EnvelopeError(
            codes.ERR_ENCRYPTION, "encrypted messages are not supported by this registry"
        )
    if receiver_id and header.get("receiver_id") not in (None, receiver_id):
        raise EnvelopeError(
            codes.ERR_RECEIVER_ID, f"header.receiver_id must be {receiver_id!r} (or absent)"
        )
    if "sender_uri" in header:
        check_sender_uri(header["sender_uri"])
    return ParsedEnvelope(signature, header, message)


def check_batch_size(count: int, header: dict[str, Any], limit: int) -> None:
    """The number of requests in the message must match total_count and stay under ``limit``."""
    if count == 0:
        raise EnvelopeError(codes.ERR_REQUEST_BAD, "the message holds no request")
    if count > limit:
        raise EnvelopeError(
            codes.ERR_REQUEST_BAD,
            f"at most {limit} requests per message",
            reason_code=codes.RJCT_TOTAL_COUNT_LIMIT,
        )
    if header.get("total_count") != count:
        raise EnvelopeError(
            codes.ERR_REQUEST_BAD,
            f"header.total_count is {header.get('total_count')} but the message holds {count}",
            reason_code=codes.RJCT_TOTAL_COUNT_INVALID,
        )
