"""Validating records against the project's JSON Schemas, with violations a person can act on.

Each violation names the JSON path of the offending value (``$.members[0].birth_date``), the
rule it broke and a message. Messages never echo the offending value, so an identifier typed
into the wrong field does not end up in logs or error responses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from standards.hygiene import hygiene_problems

SCHEMA_BASE = "https://schemas.socialregistry.example/v1/"
SCHEMA_PACKAGE = "standards.schemas"


@dataclass(frozen=True)
class Violation:
    path: str  # JSON path, e.g. "$.members[0].birth_date"
    rule: str  # the JSON Schema keyword that failed, or "readOnly"
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule, "message": self.message}


class SchemaViolation(ValueError):
    """A record broke its schema; ``violations`` lists every problem, not just the first."""

    def __init__(self, schema: str, violations: list[Violation]) -> None:
        first = violations[0] if violations else None
        summary = f"{first.path}: {first.message}" if first else "invalid"
        super().__init__(f"{schema}: {len(violations)} violation(s); first {summary}")
        self.schema = schema
        self.violations = violations


_format_checker = FormatChecker(formats=())


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    date.fromisoformat(value)
    return len(value) == 10


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a time zone offset is required")
    return True


# Registered by call rather than as decorators: jsonschema has no type information, and a
# decorator mypy cannot see through would make the checks untyped.
_format_checker.checks("date", raises=ValueError)(_is_date)
_format_checker.checks("date-time", raises=ValueError)(_is_date_time)


def _schema_files() -> dict[str, Any]:
    found: dict[str, Any] = {}
    root = resources.files(SCHEMA_PACKAGE)

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".json"):
                found[f"{prefix}{child.name}"] = json.loads(child.read_text(encoding="utf-8"))

    walk(root, "")
    return found


@cache
def _registry() -> Registry:
    registry: Registry = Registry()
    for relative, schema in _schema_files().items():
        uri = schema.get("$id", SCHEMA_BASE + relative)
        registry = registry.with_resource(uri, Resource.from_contents(schema))
    return registry


@cache
def validator_for(name: str) -> Draft202012Validator:
    """Compiled validator for schema file ``name``, e.g. "events/person.died.json"."""
    schema = _schema_files().get(name)
    if schema is None:
        raise KeyError(f"no schema named {name!r} under standards/schemas")
    return Draft202012Validator(schema, registry=_registry(), format_checker=_format_checker)


def _message(error: ValidationError) -> str:
    keyword = str(error.validator)
    schema_value = error.validator_value
    if keyword == "required":
        return "is required"
    if keyword == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = (
            sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        )
        return f"unknown field(s) {', '.join(extra)}; allowed: {', '.join(allowed)}"
    if keyword == "enum":
        return f"must be one of: {', '.join(map(str, schema_value))}"
    if keyword == "type":
        return f"must be of type {schema_value}"
    if keyword == "format":
        return f"must be a valid {schema_value}"
    if keyword == "pattern":
        return f"does not have the expected form ({schema_value})"
    if keyword in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"):
        return f"violates {keyword} {schema_value}"
    if keyword in ("anyOf", "oneOf"):
        # Alternatives that only require fields say which: "needs registration_number or
        # tracking_id or draft_id" is something a partner can act on.
        if isinstance(schema_value, list) and all(
            isinstance(b, dict) and set(b) == {"required"} for b in schema_value
        ):
            return "needs " + " or ".join(" and ".join(b["required"]) for b in schema_value)
        return "does not match any allowed form"
    return f"violates {keyword}"


_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property$")


def _path(error: ValidationError) -> str:
    # jsonschema reports a missing field at its parent; point at the field itself.
    if error.validator == "required":
        match = _REQUIRED.match(error.message)
        if match:
            return f"{error.json_path}.{match['name']}"
    return str(error.json_path)


def violation_of(error: ValidationError) -> Violation:
    """One jsonschema error as a Violation (path, keyword, a message that never echoes the
    value), for callers that check against a schema of their own."""
    return Violation(_path(error), str(error.validator), _message(error))


def violations(name: str, instance: Any, *, writing: bool = False) -> list[Violation]:
    """Every violation of schema ``name`` by ``instance``, sorted by path.

    With ``writing=True``, fields marked ``readOnly`` in the schema are violations too: they are
    assigned by the registry and a client must not set them. Values no record may hold (NaN,
    Infinity, lone surrogates, control and bidirectional characters, blank names:
    ``standards.hygiene``) are violations whatever the schema admits.
    """
    validator = validator_for(name)
    found: list[Violation] = [
        Violation(path, rule, reason) for path, rule, reason in hygiene_problems(instance)
    ]
    for error in validator.iter_errors(instance):
        found.append(Violation(_path(error), str(error.validator), _message(error)))
    if writing:
        found.extend(_read_only_violations(validator.schema, instance, "$"))
    return sorted(found, key=lambda v: (v.path, v.rule))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        target: dict[str, Any] = validator_for(ref).schema
        return target
    return schema


def _read_only_violations(schema: dict[str, Any], instance: Any, path: str) -> list[Violation]:
    schema = _resolve(schema)
    found: list[Violation] = []
    if isinstance(instance, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in instance:
                continue
            if sub.get("readOnly"):
                found.append(Violation(f"{path}.{key}", "readOnly", "is assigned by the registry"))
            else:
                found.extend(_read_only_violations(sub, instance[key], f"{path}.{key}"))
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            found.extend(_read_only_violations(schema["items"], item, f"{path}[{index}]"))
    return found


def validate(name: str, instance: Any, *, writing: bool = False) -> None:
    """Raise ``SchemaViolation`` listing every problem if ``instance`` breaks schema ``name``."""
    problems = violations(name, instance, writing=writing)
    if problems:
        raise SchemaViolation(name, problems)
