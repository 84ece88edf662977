"""What a policymaker asks: a scenario, checked at the edge.

A scenario names changes against current policy, never a whole policy:

- ``models``: per model code, a stored version (``{"version": 3}``, e.g. a draft), a whole
  definition (``{"definition": {...}}``), or new ``weights`` / ``intercept`` over the active
  version's variables (the fast case: scores come from the stored inputs);
- ``rules``: per program, a stored version, a whole ``definition``, or changes to the active
  rule: ``threshold``, ``condition`` (replaces it), ``quota`` (``null`` removes it) and
  ``extend_to``: a CEL condition naming a subgroup that qualifies whatever its score and the
  rule's condition (still scorable, still within the quota);
- ``benefits``: per program, the benefit schedule to budget the simulated side with (else the
  program's current schedule, ``benefit_schedules``);
- ``area_level`` (how many parts of the area code, ``R01-D02`` has two) and ``segment``
  (household size bands by default, or bands of a model variable).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from jsonschema import Draft202012Validator

from registry_core.errors import InvalidRecord
from registry_core.scoring.definitions import CODE, MODEL_SCHEMA, NAME, RULE_SCHEMA
from standards.validation import Violation, violation_of

BENEFIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["amount", "per", "periods"],
    "properties": {
        "description": {"type": "string", "maxLength": 500},
        "amount": {"type": "number", "minimum": 0},
        "per": {"enum": ["household", "person"]},
        "period": {"enum": ["month", "quarter", "year", "once"]},
        "periods": {"type": "integer", "minimum": 1, "maximum": 120},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "max_persons": {"type": "integer", "minimum": 1, "maximum": 50},
    },
}
_MODEL_CHANGE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "definition": MODEL_SCHEMA,
        "weights": {
            "type": "object",
            "maxProperties": 40,
            "additionalProperties": {"type": "number"},
        },
        "intercept": {"type": "number"},
    },
}
_RULE_CHANGE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "definition": RULE_SCHEMA,
        "threshold": RULE_SCHEMA["properties"]["threshold"],
        "condition": {"type": ["string", "null"], "minLength": 1, "maxLength": 2000},
        "quota": {"oneOf": [RULE_SCHEMA["properties"]["quota"], {"type": "null"}]},
        "extend_to": {"type": "string", "minLength": 1, "maxLength": 2000},
    },
}
SCENARIO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 120},
        "description": {"type": "string", "maxLength": 2000},
        "as_of": {"type": "string", "format": "date"},
        "models": {
            "type": "object",
            "maxProperties": 10,
            "propertyNames": {"pattern": CODE},
            "additionalProperties": _MODEL_CHANGE,
        },
        "rules": {
            "type": "object",
            "maxProperties": 20,
            "propertyNames": {"pattern": CODE},
            "additionalProperties": _RULE_CHANGE,
        },
        "benefits": {
            "type": "object",
            "maxProperties": 20,
            "propertyNames": {"pattern": CODE},
            "additionalProperties": BENEFIT_SCHEMA,
        },
        "area_level": {"type": "integer", "minimum": 1, "maximum": 6},
        "segment": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "variable": {"type": "string", "pattern": NAME},
                "bands": {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": 1,
                    "maxItems": 12,
                },
            },
        },
    },
}
_VALIDATOR = Draft202012Validator(SCENARIO_SCHEMA)
_BENEFIT_VALIDATOR = Draft202012Validator(BENEFIT_SCHEMA)
DEFAULT_BANDS = (1.0, 2.0, 4.0, 6.0)  # household size: 1, 2-3, 4-5, 6+


def check_scenario(document: Any) -> dict[str, Any]:
    """The scenario if its shape is right; else ``InvalidRecord`` with every violation."""
    errors = sorted(_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidRecord([violation_of(e) for e in errors])
    if "as_of" in document:
        try:
            date.fromisoformat(document["as_of"])
        except ValueError:
            raise InvalidRecord(
                [Violation("$.as_of", "format", "as_of must be a date, YYYY-MM-DD")]
            ) from None
    bands = (document.get("segment") or {}).get("bands")
    if bands is not None and list(bands) != sorted(set(bands)):
        raise InvalidRecord(
            [Violation("$.segment.bands", "ascending", "bands must be ascending and distinct")]
        )
    return dict(document)


def check_benefit(document: Any) -> dict[str, Any]:
    """A benefit schedule if its shape is right; else ``InvalidRecord``."""
    errors = sorted(_BENEFIT_VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidRecord([violation_of(e) for e in errors])
    return dict(document)
