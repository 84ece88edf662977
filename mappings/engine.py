"""The mapping engine's public face: load a spec, check it, and apply it to partner records.

Why declarative: each partner's vocabulary lives in one data file a reviewer can read next to
the partner's documentation, and the same engine gives every partner the same error reporting.

A run collects *every* problem of a record (not just the first), each naming the source field
path (``$.entry[2].resource.birthDate``), the canonical target and the reason, so a dead-letter
entry tells an operator exactly what to fix at the partner. The output is then validated against
the spec's schema under ``standards/schemas``; a violation there is reported at the source field
the value came from. Values of identifiers never appear in messages.

The parts: ``mappings.loader`` (reading and checking spec files, built-in or a plugin
package's), ``mappings.spec`` (the checked spec), ``mappings.run`` (one run over one record).
"""

from __future__ import annotations

from typing import Any

from mappings.loader import (
    SPECS_PACKAGE,
    available_specs,
    build_spec,
    load_spec,
    load_spec_file,
)
from mappings.results import (
    IdentifierReview,
    MappingError,
    MappingResult,
    Note,
    Problem,
    SpecError,
    SpecNotFound,
)
from mappings.spec import Spec
from standards.identifiers import IdentifierProfile

__all__ = [
    "SPECS_PACKAGE",
    "IdentifierReview",
    "MappingError",
    "MappingResult",
    "Note",
    "Problem",
    "Spec",
    "SpecError",
    "SpecNotFound",
    "available_specs",
    "build_spec",
    "load_spec",
    "load_spec_file",
    "map_record",
]


def map_record(
    spec_name: str, record: Any, identifiers: IdentifierProfile | None = None
) -> dict[str, Any]:
    """Map ``record`` with the spec ``spec_name`` (built-in or ``"<package>:<path>.toml"``);
    ``MappingError`` if it cannot.

    ``identifiers``: the country profile the identifier transforms apply (default built-in).
    """
    return load_spec(spec_name).apply(record, identifiers)
