"""How a raw record travels on ``sr.inbound``: routing key, CloudEvents envelope, stable id.

The hub publishes; this module only builds, so the hub's publisher and any test fake put the
same bytes on the wire. The id is derived from the connector, record type, source id and the
payload's bytes: publishing the same record twice (a page re-polled after a crash, a webhook
re-delivered) gives the same id, and the ingest consumer's idempotency store turns at-least-once
publication into exactly-once effect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base.records import CONNECTOR_NAME_RE, RawRecord
from standards.cloudevents import CloudEvent, build_event

RAW_ID_NAMESPACE = uuid.UUID("6f1c2b9e-4d1a-5b7e-9c2d-0a1b2c3d4e5f")
SOURCE_PREFIX = "urn:srhub:connector:"


def routing_key(connector: str, record_type: str) -> str:
    """``<connector>.<record_type>``, the routing key on ``sr.inbound``."""
    if not CONNECTOR_NAME_RE.match(connector):
        raise ValueError(f"connector name {connector!r} must be lower-case snake_case")
    return f"{connector}.{record_type}"


def payload_bytes(payload: bytes | Mapping[str, Any]) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def raw_record_id(connector: str, record: RawRecord) -> str:
    """The stable message id of ``record`` (a UUIDv5 over what identifies it): the payload's
    bytes, or the record's ``content_key`` when the connector named what identifies it."""
    if record.content_key is not None:
        digest = "key:" + record.content_key
    else:
        digest = hashlib.sha256(payload_bytes(record.payload)).hexdigest()
    name = "\x1f".join((connector, record.record_type, record.source_id, digest))
    return str(uuid.uuid5(RAW_ID_NAMESPACE, name))


def raw_event(connector: str, record: RawRecord, *, time: datetime) -> CloudEvent:
    """The CloudEvents envelope of a raw record.

    ``data`` holds the payload unchanged: a JSON object as ``payload``; bytes as ``body`` text
    when they are UTF-8, otherwise base64 (``body_encoding``) so nothing is altered in transit.
    """
    data: dict[str, Any] = {
        "connector": connector,
        "record_type": record.record_type,
        "source_id": record.source_id,
        "headers": dict(record.headers),
    }
    if isinstance(record.payload, bytes):
        data["content_type"] = record.content_type or "application/octet-stream"
        try:
            data["body"] = record.payload.decode("utf-8")
            data["body_encoding"] = "utf-8"
        except UnicodeDecodeError:
            data["body"] = base64.b64encode(record.payload).decode("ascii")
            data["body_encoding"] = "base64"
    else:
        data["content_type"] = record.content_type or "application/json"
        data["payload"] = dict(record.payload)
    return build_event(
        type=routing_key(connector, record.record_type),
        source=SOURCE_PREFIX + connector,
        data=data,
        id=raw_record_id(connector, record),
        time=time,
    )


def payload_of(data: Mapping[str, Any]) -> bytes | dict[str, Any]:
    """The partner payload back from an envelope's ``data`` (for the ingest side and tests)."""
    if "payload" in data:
        return dict(data["payload"])
    body = data["body"]
    if data.get("body_encoding") == "base64":
        return base64.b64decode(body)
    return str(body).encode("utf-8")
