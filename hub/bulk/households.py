"""What a batch of household-export rows becomes: canonical households, loaded set-based.

Rows of one household are consecutive and share the partner's household reference (the raw
column ``group_column``, ``HOUSEHOLD_REF`` by default). Each row goes through the mapping spec
(the same engine and output schema as every partner record); a household any of whose rows is
refused is refused whole — loading it without a member would register a different household
than the partner's — and every one of its rows says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.bulk.reading import Row
from hub.bulk.rejects import Reject
from mappings.engine import MappingError, Spec
from registry_core.service import BulkHousehold, Registry, Source

DEFAULT_GROUP_COLUMN = "HOUSEHOLD_REF"


@dataclass
class BatchResult:
    counts: dict[str, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def _problems(exc: MappingError) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in p.as_dict().items() if k in ("source_path", "target", "rule", "message")}
        for p in exc.problems
    ]


@dataclass
class HouseholdRows:
    """Turns rows into ``BulkHousehold``s and their outcomes into counts and rejects."""

    spec: Spec
    source_system: str
    group_column: str = DEFAULT_GROUP_COLUMN

    def group_key(self, row: Row) -> str:
        return str(row.values.get(self.group_column, "")).strip() or f"line:{row.line}"

    def process(self, registry: Registry, rows: Sequence[Row]) -> BatchResult:
        result = BatchResult()
        groups: list[list[Row]] = []
        for row in rows:
            if groups and self.group_key(groups[-1][-1]) == self.group_key(row):
                groups[-1].append(row)
            else:
                groups.append([row])
        batch: list[BulkHousehold] = []
        lines: dict[str, list[int]] = {}
        for group in groups:
            household = self._household(registry, group, result)
            if household is not None:
                batch.append(household)
                lines[household.key] = [r.line for r in group]
        result.add("rows", len(rows))
        if not batch:
            return result
        outcomes = registry.load_households(batch, Source(self.source_system))
        for outcome in outcomes:
            group_lines = lines[outcome.key]
            if outcome.outcome == "created":
                result.add("households_created")
                result.add("persons_created", len(group_lines))
            elif outcome.outcome == "matched":
                result.add("persons_matched")
            elif outcome.member is not None:
                result.rejects.append(Reject(group_lines[outcome.member], outcome.reason))
            else:
                result.rejects.extend(Reject(line, outcome.reason) for line in group_lines)
        return result

    def _household(
        self, registry: Registry, group: list[Row], result: BatchResult
    ) -> BulkHousehold | None:
        mapped: list[dict[str, Any]] = []
        refused: list[Reject] = []
        for row in group:
            if row.problem:
                refused.append(Reject(row.line, row.problem))
                continue
            try:
                mapped.append(self.spec.apply(row.values, registry.identifier_profile))
            except MappingError as exc:
                refused.append(Reject(row.line, exc.error, _problems(exc)))
        if refused:
            first = refused[0].line
            bad = {r.line for r in refused}
            result.rejects.extend(refused)
            result.rejects.extend(
                Reject(row.line, f"another row of this household was refused (line {first})")
                for row in group
                if row.line not in bad
            )
            return None
        refs = {m["household_ref"] for m in mapped}
        if len(refs) != 1:
            result.rejects.extend(
                Reject(r.line, "rows of one household carry different references") for r in group
            )
            return None
        record: dict[str, Any] = dict(mapped[0]["household"])
        record["members"] = [m["person"] for m in mapped]
        return BulkHousehold(key=refs.pop(), record=record)
