"""Checking a connector's settings against its own JSON Schema, listing every problem.

A ministry configuring a connector should learn everything that is wrong in one go, each
problem with where it is and what is expected. Messages never echo the value given: a settings
block holds passwords and keys.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from connectors.base.errors import SettingsError


def _describe(error: ValidationError) -> str:
    path = error.json_path
    keyword = str(error.validator)
    expected = error.validator_value
    if keyword == "required":
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else "?"
        return f"{path}.{missing}: is required"
    if keyword == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = (
            sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        )
        return f"{path}: unknown setting(s) {', '.join(extra)}; allowed: {', '.join(allowed)}"
    if keyword == "type":
        return f"{path}: must be of type {expected}"
    if keyword == "enum":
        return f"{path}: must be one of {', '.join(map(str, expected))}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{path}: violates {keyword} {expected}"
    if keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        return f"{path}: violates {keyword} {expected}"
    if keyword == "pattern":
        return f"{path}: does not have the expected form ({expected})"
    if keyword == "format":
        return f"{path}: must be a valid {expected}"
    return f"{path}: violates {keyword}"


def with_defaults(schema: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``settings`` with the schema's top-level and nested object defaults filled in."""
    result = copy.deepcopy(dict(settings))
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping):
            continue
        if key not in result and "default" in sub:
            result[key] = copy.deepcopy(sub["default"])
        if isinstance(result.get(key), Mapping) and sub.get("type") == "object":
            result[key] = with_defaults(sub, result[key])
    return result


def validate_settings(
    connector: str, schema: Mapping[str, Any], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """``settings`` with defaults applied, or ``SettingsError`` listing every violation."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise TypeError(
            f"connector {connector!r} declares an invalid settings schema: {exc.message}"
        ) from None
    if not isinstance(settings, Mapping):
        raise SettingsError(connector, ["$: settings must be an object"])
    filled = with_defaults(schema, settings)
    validator = Draft202012Validator(schema)
    problems = sorted(
        {_describe(e) for e in validator.iter_errors(filled)},
    )
    if problems:
        raise SettingsError(connector, problems)
    return filled
