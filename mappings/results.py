"""What a mapping run gives back: the record with its notes, or why it cannot be used as is.

Three outcomes, because they need three different treatments downstream:

- ``MappingResult``: the canonical record, its provenance, and data-quality ``notes`` (a bad
  identifier of someone the record only mentions was dropped; the record is still good);
- ``IdentifierReview``: only the subject's identifier is bad (the deceased's national ID, the
  taxpayer's tax ID). The facts are sound but cannot be linked to a person with certainty: the
  ingest puts the record in front of a person (review queue), never in the dead letters;
- ``MappingError``: the record is broken (a required fact missing, a date that is no date);
  dead-lettered with every problem so the partner knows what to fix.

Messages never carry identifier values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class SpecError(ValueError):
    """A spec file is unusable; ``problems`` lists (JSON path in the spec, message)."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        listing = "; ".join(f"{path}: {message}" for path, message in problems)
        super().__init__(f"{file}: {listing}")
        self.file = file
        self.problems = problems


class SpecNotFound(KeyError):
    """No spec by that name (or no such package or file); the message says what is known."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else "no such mapping spec"


@dataclass(frozen=True)
class Problem:
    """One reason a record could not be mapped (or, as a note, a value that was dropped)."""

    source_path: str | None  # where in the partner record, e.g. "$.entry[2].resource.birthDate"
    target: str | None  # canonical field, e.g. "child.birth_date"
    rule: str  # "required", "transform:date", "schema:format", "identifier:check_digit", ...
    message: str

    def __str__(self) -> str:
        where = self.source_path or "(no source field)"
        into = f" [-> {self.target}]" if self.target else ""
        return f"{where}: {self.message}{into}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "source_path": self.source_path,
            "target": self.target,
            "rule": self.rule,
            "message": self.message,
        }


# A data-quality note has the same parts as a problem: where, into what, which rule, why.
Note = Problem


@dataclass(frozen=True)
class MappingResult:
    record: dict[str, Any]
    sources: dict[str, str]  # output JSON path -> source JSON path (provenance)
    notes: tuple[Note, ...] = field(default_factory=tuple)  # values dropped, and why


class MappingError(ValueError):
    """A record could not be mapped; ``problems`` lists every reason, with source paths."""

    error = "mapping_failed"

    def __init__(self, spec: str, version: int, problems: list[Problem]) -> None:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{spec} v{version}: {len(problems)} problem(s): {shown}{more}")
        self.spec = spec
        self.version = version
        self.problems = problems

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable reason a dead-letter entry (or a review) carries."""
        return {
            "error": self.error,
            "spec": self.spec,
            "spec_version": self.version,
            "problems": [p.as_dict() for p in self.problems],
        }


class IdentifierReview(MappingError):
    """The subject's identifier broke the country profile; everything else mapped.

    ``record`` is the canonical record without the refused values, ``notes`` the values dropped
    elsewhere; ``problems`` say which subject identifiers were refused and why. ``refused``
    holds the refused values as received (``target``, ``source_path``, ``value``) for a person
    to correct them: it is personal data, never part of the message or of ``as_dict``.
    """

    error = "identifier_review"

    def __init__(
        self,
        spec: str,
        version: int,
        problems: list[Problem],
        record: dict[str, Any],
        notes: tuple[Note, ...] = (),
        refused: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(spec, version, problems)
        self.record = record
        self.notes = notes
        self.refused = refused or []

    @property
    def reason(self) -> str:
        """One line for the review queue: which identifier, which rule (never the value)."""
        return "; ".join(f"{p.target}: {p.message}" for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        found = super().as_dict()
        found["notes"] = [n.as_dict() for n in self.notes]
        return found
