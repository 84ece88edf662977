"""Check DCI bodies against our own JSON Schemas (``standards/dci/schemas/*.json``).

This is the run-time gate: every request the hub receives is checked here before any of its
fields is used, and every answer, callback and notify it sends is checked here too (a failure
there is our bug, logged). The schemas are ours, written from the DCI field lists in
docs/standard-apis.md; the spec's own OpenAPI files are not shipped with the hub and are used
only by the conformance tests (``standards.dci.openapi``).

Endpoints are named by the spec's paths (``/registry/search``...), so callers need not know
how the envelope and the message schemas are put together. Messages are draft 2020-12; the
composed schema for an endpoint is built here, in code, from the envelope and message files.

Problems name the JSON path and the rule broken, never the value: values may be personal
identifiers and problems end up in answers and logs.

Every request and every answer of the server goes through here, so a valid body must cost
little: it is first checked by a validator compiled once to Python code (fastjsonschema, tens
of microseconds where jsonschema takes about half a millisecond). Only a body that fails it goes
through jsonschema, which is the authority: it decides and words the problems. The two agree
by construction where it matters: our schemas use no keyword whose meaning differs between
the drafts (no ``$ref`` with siblings; a test keeps it so), and ``date-time`` is checked by
the same function in both. A test runs both over valid and broken bodies.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - exercised only where the package is absent
        return None


# An optional accelerator; jsonschema alone gives the same verdicts.
fastjsonschema = _optional_module("fastjsonschema")

log = logging.getLogger(__name__)

BASE = "https://schemas.socialregistry.example/v1/dci/"

# spec path -> (header.action, message schema): requests we receive.
REQUESTS: dict[str, tuple[str, str]] = {
    "/registry/search": ("search", "search-request.json"),
    "/registry/sync/search": ("search", "search-request.json"),
    "/registry/subscribe": ("subscribe", "subscribe-request.json"),
    "/registry/unsubscribe": ("unsubscribe", "unsubscribe-request.json"),
    "/registry/txn/status": ("txn-status", "txn-status-request.json"),
    "/registry/sync/txn/status": ("txn-status", "txn-status-request.json"),
}
# spec path -> (header.action, message schema, full): bodies we send with a header. A sync
# answer or on-search/txn-on-status may be a refusal without a message; "full" answers must
# carry one, and on-subscribe/on-unsubscribe also name sender_id and total_count in the header
# (the spec gives those two callbacks the request header's required fields).
ANSWERS: dict[str, tuple[str, str, bool]] = {
    "/registry/sync/search": ("on-search", "search-response.json", False),
    "/registry/on-search": ("on-search", "search-response.json", False),
    "/registry/on-subscribe": ("on-subscribe", "subscribe-response.json", True),
    "/registry/on-unsubscribe": ("on-unsubscribe", "unsubscribe-response.json", True),
    "/registry/sync/txn/status": ("txn-on-status", "txn-status-response.json", False),
    "/registry/txn/on-status": ("txn-on-status", "txn-status-response.json", False),
    "/registry/notify": ("notify", "notify.json", True),
}
_FULL_HEADER = ("sender_id", "total_count")

FORMATS = FormatChecker(formats=())


def _date_time(value: object) -> bool:
    """RFC 3339 date-time with an offset: what DCI timestamps are, and what we compare."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None and "T" in value


# Registered by call, not as a decorator: jsonschema carries no type information for mypy.
FORMATS.checks("date-time", raises=ValueError)(_date_time)


def _is_date_time(value: object) -> bool:
    try:
        return _date_time(value)
    except ValueError:
        return False


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@cache
def schema(name: str) -> dict[str, Any]:
    """One of our schema files, parsed (e.g. ``schema("search-request.json")``)."""
    text = resources.files("standards.dci.schemas").joinpath(name).read_text("utf-8")
    loaded = json.loads(text)
    if not isinstance(loaded, dict) or loaded.get("$id") != BASE + name:
        raise ValueError(f"{name}: $id must be {BASE + name}")
    return loaded


def schema_names() -> list[str]:
    folder = resources.files("standards.dci.schemas")
    return sorted(item.name for item in folder.iterdir() if item.name.endswith(".json"))


@cache
def _registry() -> Registry:
    resources_ = [(BASE + name, Resource.from_contents(schema(name))) for name in schema_names()]
    return Registry().with_resources(resources_)


def _endpoint_schema(
    envelope: str, action: str, message: str, header_required: tuple[str, ...] = ()
) -> dict[str, Any]:
    header: dict[str, Any] = {"properties": {"action": {"const": action}}}
    if header_required:
        header["required"] = list(header_required)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [{"$ref": BASE + envelope}],
        "required": ["header", "message"],
        "properties": {"header": header, "message": {"$ref": BASE + message}},
    }


def _root(kind: str, key: str) -> dict[str, Any]:
    if kind == "request":
        action, message = REQUESTS[key]
        root = _endpoint_schema("envelope.json", action, message)
    elif kind == "answer":
        action, message, full = ANSWERS[key]
        header_required = _FULL_HEADER if full and action != "notify" else ()
        root = _endpoint_schema("envelope.json#/$defs/answer", action, message, header_required)
        if not full:
            root["required"] = ["header"]
    else:  # a whole file, or a pointer inside one
        root = {"$ref": BASE + key}
    return root


@cache
def _validator(kind: str, key: str) -> Draft202012Validator:
    return Draft202012Validator(_root(kind, key), registry=_registry(), format_checker=FORMATS)


def _load_remote(uri: str) -> dict[str, Any]:
    if not uri.startswith(BASE):
        raise ValueError(f"{uri} is not one of our DCI schemas")
    return schema(uri[len(BASE) :].split("#", 1)[0])


@cache
def _fast_check(kind: str, key: str) -> Callable[[Any], bool] | None:
    """Whether a body passes the compiled validator of a schema; None without fastjsonschema
    (or when it cannot compile the schema: then jsonschema alone checks, slower but the same
    verdicts)."""
    fast = fastjsonschema
    if fast is None:
        return None
    root = {k: v for k, v in _root(kind, key).items() if k != "$schema"}
    try:
        compiled: Callable[[Any], Any] = fast.compile(
            root,
            handlers={"https": _load_remote},
            formats={"date-time": _is_date_time},
            use_default=False,  # never fill in defaults: a check must not change the body
        )
    except fast.JsonSchemaDefinitionException:
        log.warning("DCI schema %s %s: no compiled check, jsonschema only", kind, key)
        return None
    refused: type[Exception] = fast.JsonSchemaException

    def passes(body: Any) -> bool:
        try:
            compiled(body)
        except refused:
            return False
        return True

    return passes


def _passes_fast(kind: str, key: str, body: Any) -> bool:
    check = _fast_check(kind, key)
    return check is not None and check(body)


def _checked(kind: str, key: str, body: Any) -> list[Problem]:
    if _passes_fast(kind, key, body):
        return []
    return _problems(_validator(kind, key), body)


def _problems(validator: Draft202012Validator, body: Any) -> list[Problem]:
    found = []
    for error in validator.iter_errors(body):
        while error.validator in ("oneOf", "anyOf") and error.context:
            error = closest_branch(error.context)
        found.append(Problem(json_path(error), describe(error)))
    return found


def json_path(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def closest_branch(context: list[ValidationError]) -> ValidationError:
    """The deepest error of the alternative that got furthest: the one the sender meant."""
    branches: dict[Any, list[ValidationError]] = {}
    for item in context:
        branches.setdefault(item.relative_schema_path[0], []).append(item)
    chosen = max(
        branches.values(),
        key=lambda errors: (max(len(e.absolute_path) for e in errors), -len(errors)),
    )
    return max(chosen, key=lambda e: len(e.absolute_path))


def describe(error: ValidationError) -> str:
    """What rule broke, without echoing the value (it may be a personal identifier)."""
    rule, expected = error.validator, error.validator_value
    if rule == "required":
        return str(error.message)[:200]
    if rule == "type":
        return f"must be of type {expected}"
    if rule == "enum":
        return "must be one of " + ", ".join(str(v) for v in expected)[:200]
    if rule == "const":
        return f"must be {expected!s:.100}"
    if rule == "format":
        return f"must be a valid {expected}"
    if rule in ("maxLength", "minLength", "pattern", "maximum", "minimum", "minItems"):
        return f"breaks {rule} {expected}"[:200]
    if rule in ("oneOf", "anyOf"):
        return "matches none of the allowed shapes"
    return f"breaks the '{rule}' rule"


def request_problems(path: str, body: Any) -> list[Problem]:
    """A request received at the spec path ``path`` (``/registry/search``...)."""
    return _checked("request", path, body)


def answer_problems(path: str, body: Any) -> list[Problem]:
    """A body we send with a header: a sync answer (by the request's path) or a callback or
    notify (by the path we POST it to, ``/registry/on-search``, ``/registry/notify``...)."""
    return _checked("answer", path, body)


def ack_problems(body: Any) -> list[Problem]:
    """The immediate ``{"message": {ack_status...}}`` answer of an async endpoint."""
    return _checked("file", "ack.json", body)


def http_error_problems(body: Any) -> list[Problem]:
    """An ``{"errors": [{code, message}]}`` refusal (401, 403, 404...)."""
    return _checked("file", "error.json", body)


def message_problems(name: str, message: Any) -> list[Problem]:
    """A bare message (no envelope) against one message schema, e.g. ``search-response.json``."""
    return _checked("file", name, message)
