"""Fast validity check of mapped records against the canonical schemas.

Why: resolving ``$ref`` through the schema registry costs more than the whole mapping (about
3 ms of a 3.6 ms tax row, measured). The inbound schemas are not recursive, so each is inlined
once into a schema without references; a record that passes it is valid. Only a record that
fails goes through ``standards.validation.violations`` for its detailed, value-free messages,
so the messages stay the project's one wording while valid records (nearly all) stay cheap.

The reference-free schema is also compiled to Python code (fastjsonschema, a dependency of
the hub; optional here), about ten times quicker again: a bulk import maps millions of rows.
Compiled only when the schema holds no keyword of draft 2020-12 that fastjsonschema's draft 7
reads otherwise; the same ``date`` / ``date-time`` checks as the registry's; defaults never
written into the record. A record it refuses still goes to jsonschema, the authority.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from standards.validation import Violation, validator_for, violations

try:  # pragma: no cover - the hub installs it; the mapping layer works without it
    import fastjsonschema
except ImportError:  # pragma: no cover
    fastjsonschema = None  # type: ignore[assignment]

_MAX_DEPTH = 32
# Keywords draft 7 (what fastjsonschema implements) does not read as draft 2020-12 does.
_DRAFT_2020_ONLY = frozenset(
    {
        "prefixItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependentRequired",
        "dependentSchemas",
        "$dynamicRef",
        "$dynamicAnchor",
        "minContains",
        "maxContains",
        "$recursiveRef",
    }
)


def _pointer(document: Any, fragment: str) -> Any:
    node = document
    for part in [p for p in fragment.lstrip("/").split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _inline(node: Any, name: str, depth: int = 0) -> Any:
    """``node`` (part of schema file ``name``) with every ``$ref`` replaced by its target."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{name}: references nest deeper than {_MAX_DEPTH}; recursive schema?")
    if isinstance(node, list):
        return [_inline(item, name, depth) for item in node]
    if not isinstance(node, dict):
        return node
    result = {
        k: _inline(v, name, depth) for k, v in node.items() if k not in ("$ref", "$id", "$schema")
    }
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return result
    file, _, fragment = ref.partition("#")
    target_name = name
    if file:
        target_name = posixpath.normpath(posixpath.join(posixpath.dirname(name), file))
    document = validator_for(target_name).schema
    target = _inline(copy.deepcopy(_pointer(document, fragment)), target_name, depth + 1)
    if not result:
        return target
    return {"allOf": [target, result]}


@cache
def fast_validator(name: str) -> Draft202012Validator:
    """A reference-free validator equivalent to ``standards.validation.validator_for(name)``."""
    full = validator_for(name)
    return Draft202012Validator(_inline(full.schema, name), format_checker=full.format_checker)


def _is_date(value: Any) -> bool:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return len(value) == 10


def _is_date_time(value: Any) -> bool:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        return False
    return parsed.tzinfo is not None


def _keywords(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_keywords(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for value in node.values():
        found |= _keywords(value)
    return found


@cache
def compiled_check(name: str) -> Callable[[Any], bool] | None:
    """``record -> valid?`` compiled to code, or None (not installed, or 2020-12 keywords)."""
    if fastjsonschema is None:
        return None
    schema = _inline(validator_for(name).schema, name)
    if _keywords(schema) & _DRAFT_2020_ONLY:
        return None
    compiled = fastjsonschema.compile(
        {**schema, "$schema": "http://json-schema.org/draft-07/schema#"},
        formats={"date": _is_date, "date-time": _is_date_time},
        use_default=False,
    )
    error = fastjsonschema.JsonSchemaException

    def valid(record: Any) -> bool:
        try:
            compiled(record)
        except error:
            return False
        return True

    return valid


def check(name: str, record: Any) -> list[Violation]:
    """Every violation of schema ``name`` by ``record``; empty (and quick) when it is valid."""
    quick = compiled_check(name)
    if quick is not None and quick(record):
        return []
    if fast_validator(name).is_valid(record):
        return []
    return violations(name, record)
