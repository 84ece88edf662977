"""Source precedence: which source's value of a field becomes the current value.

Every assertion is kept (see ``FieldAssertion``); the current value is the one from the source
ranked highest for that field, and among assertions of equal rank the latest one. Sources not
listed for a field rank below all listed ones, so a new partner never silently overrides the
civil registry. The table is data: deployments replace it with a TOML or JSON file.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# Field names are "<entity>.<field>"; "<entity>.*" is the fallback for the entity's other fields.
# ``correction`` is a registry officer's correction backed by evidence, approved by a second
# person (or a small correction applied directly, with evidence; docs/corrections.md). It
# outranks what a household declared, a form or survey captured, and an unreviewed staff edit;
# for who a person is (names, birth date, sex) it stays below the civil registry and national
# ID, which are corrected at their source. Death dates are left to those registries alone.
DEFAULT_PRECEDENCE: dict[str, list[str]] = {
    "person.birth_date": [
        "civil_registry",
        "national_id",
        "correction",
        "registry_staff",
        "intake",
        "field_survey",
        "self_declared",
    ],
    "person.death_date": ["civil_registry", "national_id", "registry_staff"],
    "person.sex": [
        "civil_registry",
        "national_id",
        "correction",
        "registry_staff",
        "intake",
        "field_survey",
        "self_declared",
    ],
    "person.given_name": [
        "national_id",
        "civil_registry",
        "correction",
        "registry_staff",
        "intake",
        "field_survey",
        "self_declared",
    ],
    "person.family_name": [
        "national_id",
        "civil_registry",
        "correction",
        "registry_staff",
        "intake",
        "field_survey",
        "self_declared",
    ],
    "person.other_names": [
        "national_id",
        "civil_registry",
        "correction",
        "registry_staff",
        "intake",
        "field_survey",
        "self_declared",
    ],
    "household.location": [
        "correction",
        "gis",
        "intake",
        "field_survey",
        "registry_staff",
        "self_declared",
    ],
    "household.admin_area_code": [
        "correction",
        "gis",
        "registry_staff",
        "intake",
        "field_survey",
        "self_declared",
    ],
    # The civil registry knows a mother's or a deceased's address as declared: it fills a
    # household with none, and never outranks what staff, surveys or the household said.
    "household.address": [
        "correction",
        "registry_staff",
        "intake",
        "field_survey",
        "self_declared",
        "gis",
        "civil_registry",
    ],
    "person.*": [
        "civil_registry",
        "national_id",
        "correction",
        "registry_staff",
        "intake",
        "field_survey",
    ],
    # Also the ranking of household facts (``attributes.<domain>.<name>``) when a correction
    # has to say which of the sources' values it corrected (hub.corrections).
    "household.*": ["correction", "registry_staff", "intake", "field_survey", "self_declared"],
}


@dataclass(frozen=True)
class Candidate:
    value: Any
    source_system: str
    asserted_at: datetime
    sequence: int = 0  # tie-breaker: the later recorded assertion wins


class SourcePrecedence:
    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        for key, sources in table.items():
            if "." not in key or not all(isinstance(s, str) for s in sources):
                raise ValueError(f"precedence entry {key!r} must be '<entity>.<field>': [sources]")
        self._table = {key: list(sources) for key, sources in table.items()}

    @classmethod
    def default(cls) -> SourcePrecedence:
        return cls(DEFAULT_PRECEDENCE)

    @classmethod
    def from_file(cls, path: Path) -> SourcePrecedence:
        """Load ``{"person.birth_date": ["civil_registry", ...]}`` from TOML or JSON; entries
        not in the file keep their defaults."""
        text = path.read_text(encoding="utf-8")
        loaded = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        section = loaded.get("precedence", loaded)
        merged = dict(DEFAULT_PRECEDENCE)
        merged.update(section)
        return cls(merged)

    def ranking(self, entity: str, field: str) -> list[str]:
        return self._table.get(f"{entity}.{field}") or self._table.get(f"{entity}.*", [])

    def rank(self, entity: str, field: str, source_system: str) -> int:
        ranking = self.ranking(entity, field)
        return ranking.index(source_system) if source_system in ranking else len(ranking)

    def choose(self, entity: str, field: str, candidates: Iterable[Candidate]) -> Candidate | None:
        """The winning assertion: best rank first, then latest asserted, then latest recorded."""
        best: Candidate | None = None
        best_key: tuple[int, float, int] | None = None
        for candidate in candidates:
            key = (
                -self.rank(entity, field, candidate.source_system),
                candidate.asserted_at.timestamp(),
                candidate.sequence,
            )
            if best_key is None or key > best_key:
                best, best_key = candidate, key
        return best
