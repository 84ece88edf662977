"""CloudEvents 1.0 envelopes in structured JSON mode: the one wire format on the hub's broker.

Every message the hub publishes (raw partner data on ``sr.inbound``, registry change events on
``sr.events``) is a CloudEvent, so a consumer can check any message the same way before it
touches its payload: ``parse_envelope`` turns bytes into a dict or raises ``EnvelopeError``
naming the JSON path of the first problem. Consumers dead-letter such messages with that reason
instead of crashing or retrying them forever.

The schema is ``standards/schemas/cloudevent.json``. Envelopes are checked on every delivery of
every message, so the check must be cheap: a valid envelope is accepted by a validator compiled
once to Python code (fastjsonschema, about 10 us); only an envelope that fails it goes through
the project's jsonschema validator (about 100 us), which is the authority and words the error.
Without fastjsonschema installed everything goes through jsonschema: same verdicts, slower.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from standards.validation import validator_for, violations

try:  # optional accelerator; jsonschema alone gives the same verdicts
    import fastjsonschema
except ImportError:  # pragma: no cover - exercised only where the package is absent
    fastjsonschema = None  # type: ignore[assignment]

SPEC_VERSION = "1.0"
TYPE_PREFIX = "org.socialregistry."
DATA_CONTENT_TYPE = "application/json"
CONTENT_TYPE = "application/cloudevents+json"  # the message's content type in structured mode
SCHEMA_NAME = "cloudevent.json"
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024  # larger bodies are refused before JSON parsing

CloudEvent = dict[str, Any]

_CONSTANTS = {"$.specversion": SPEC_VERSION, "$.datacontenttype": DATA_CONTENT_TYPE}


class EnvelopeError(ValueError):
    """A message is not a valid CloudEvents envelope.

    ``path`` is the JSON path of the problem (``$`` for the document itself, ``$.time`` for one
    attribute) and ``reason`` says what is wrong there. Neither echoes the offending value, so
    personal data never leaks into logs or dead-letter headers.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid CloudEvents envelope at {path}: {reason}")
        self.path = path
        self.reason = reason


def event_type(routing_key: str) -> str:
    """The CloudEvents ``type`` of a routing key: ``person.died`` gives
    ``org.socialregistry.person.died``."""
    return TYPE_PREFIX + routing_key


def routing_key_of(type_: str) -> str:
    """The routing key for a CloudEvents ``type``; the inverse of ``event_type``."""
    if not type_.startswith(TYPE_PREFIX):
        raise EnvelopeError("$.type", f"must start with {TYPE_PREFIX!r}")
    return type_[len(TYPE_PREFIX) :]


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix; naive times are refused (they would be ambiguous)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; event times must be timezone-aware")
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def build_event(
    *,
    type: str,
    source: str,
    data: Mapping[str, Any],
    subject: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
    add_prefix: bool = True,
) -> CloudEvent:
    """Build an envelope; ``id`` defaults to a new uuid4 and ``time`` to now.

    The one builder of the project's CloudEvents: raw partner records (``connectors.base``),
    registry change events from outbox rows (``registry_core.outbox.to_cloudevent``, which the
    relay, the events API and re-drives use) all come from here, so every ``time`` has the one
    format of ``format_time``. ``type`` may be the full type or a bare routing key
    (``person.died``): the prefix is added, unless ``add_prefix`` is False (a stored event is
    rebuilt as it was stored, so a malformed one stays visibly malformed). The result is not
    validated here; consumers check what they receive, and ``validate_event`` is there where a
    producer wants to fail early.
    """
    full_type = type if not add_prefix or type.startswith(TYPE_PREFIX) else event_type(type)
    event: CloudEvent = {
        "specversion": SPEC_VERSION,
        "id": id or str(uuid.uuid4()),
        "source": source,
        "type": full_type,
        "time": format_time(time or datetime.now(UTC)),
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if subject is not None:
        event["subject"] = subject
    if extensions:
        event.update(extensions)
    event["data"] = dict(data)
    return event


COPIED_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "datacontenttype")


def copy_event(
    event: Mapping[str, Any],
    *,
    subject: str | None,
    data: Mapping[str, Any],
    extensions: Mapping[str, str | int | bool] | None = None,
) -> CloudEvent:
    """Another view of an existing event: same id, source, type and time (as built, so in the
    one format), a new ``subject`` and ``data`` and extension attributes added. The
    subscriptions' fan-out gives each subscriber its own copy this way."""
    copy: CloudEvent = {key: event[key] for key in COPIED_ATTRIBUTES if key in event}
    if extensions:
        copy.update(extensions)
    copy["subject"] = subject
    copy["data"] = dict(data)
    return copy


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_bytes(event: Mapping[str, Any]) -> bytes:
    """Serialise an envelope compactly as UTF-8 JSON (datetimes and UUIDs become strings)."""
    return json.dumps(
        event, separators=(",", ":"), ensure_ascii=False, default=_json_default
    ).encode("utf-8")


@cache
def _fast_check() -> Callable[[Any], Any] | None:
    if fastjsonschema is None:
        return None
    checker: Callable[[Any], Any] = fastjsonschema.compile(validator_for(SCHEMA_NAME).schema)
    return checker


def validate_event(event: Any) -> CloudEvent:
    """Check a decoded envelope against the schema; return it or raise ``EnvelopeError``."""
    if not isinstance(event, dict):
        raise EnvelopeError("$", "must be a JSON object")
    fast = _fast_check()
    if fast is not None:
        try:
            fast(event)
        except fastjsonschema.JsonSchemaException:
            pass  # let jsonschema, the authority, find and word the problem
        else:
            return event
    problems = violations(SCHEMA_NAME, event)
    if problems:
        first = problems[0]
        message = first.message
        if first.rule == "const" and first.path in _CONSTANTS:
            message = f"must be {_CONSTANTS[first.path]!r}"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise EnvelopeError(first.path, message + more)
    return event


def parse_envelope(body: bytes) -> CloudEvent:
    """Decode and validate one message body; raise ``EnvelopeError`` saying where it is wrong."""
    if len(body) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError("$", f"message is larger than {MAX_ENVELOPE_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvelopeError("$", f"not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise EnvelopeError("$", f"not JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise EnvelopeError("$", "JSON nested too deeply") from None
    return validate_event(decoded)
