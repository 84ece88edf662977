"""What a batch of tax-extract rows becomes: incomes on the right persons, set-based.

The rows are read by the tax connector's own parser (``connectors.tax.readers``) and checked
by its own row rules (``connectors.tax.validation.check_row``), then mapped by its spec
(``tax_income_row``): a large extract loaded with ``srhub import`` is judged exactly as one
dropped in the connector's folder. Taxpayers found by identifier are written in one go
(``Registry.record_facts_bulk``); the rest go through the ingest worker's own applier
(``apply_income``: the matcher, the review queue) one by one, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from connectors.tax.readers import iter_csv
from connectors.tax.validation import check_row
from hub.bulk.households import BatchResult, _problems
from hub.bulk.reading import Row
from hub.bulk.rejects import Reject
from hub.pipeline.apply.common import IngestContext
from hub.pipeline.apply.facts import apply_income
from mappings.engine import MappingError, Spec
from registry_core.service import BulkFacts, Registry, Source

TAX_DELIMITER = ";"


def iter_tax_rows(path: Path, delimiter: str = TAX_DELIMITER) -> Iterator[Row]:
    """The connector's CSV parser, its rows as ``Row``s (a read problem is the reason)."""
    for row in iter_csv(path, delimiter):
        problem = "; ".join(f"{p.column}: {p.reason}" for p in row.problems)
        yield Row(row.line or row.number, row.flat, problem)


def _asserted(on: Any) -> datetime | None:
    if isinstance(on, str) and on:
        try:
            day = date.fromisoformat(on[:10])
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return None


@dataclass
class IncomeRows:
    """Turns income rows into ``BulkFacts`` and outcomes into counts and rejects."""

    spec: Spec
    source_system: str
    run_id: str  # message ids of the per-record fallback: "<run id>:<line>"

    def group_key(self, row: Row) -> str:
        return f"line:{row.line}"

    def process(self, registry: Registry, rows: Sequence[Row]) -> BatchResult:
        result = BatchResult()
        result.add("rows", len(rows))
        profile = registry.identifier_profile
        facts: list[BulkFacts] = []
        records: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row.problem:
                result.rejects.append(Reject(row.line, row.problem))
                continue
            problems = check_row(row.values, None, profile)
            if problems:
                result.rejects.append(
                    Reject(
                        row.line,
                        "invalid_row",
                        [{"column": p.column, "message": p.reason} for p in problems],
                    )
                )
                continue
            try:
                record = self.spec.apply(row.values, profile)
            except MappingError as exc:
                result.rejects.append(Reject(row.line, exc.error, _problems(exc)))
                continue
            key = str(row.line)
            records[key] = record
            facts.append(
                BulkFacts(
                    key=key,
                    identifiers=record["taxpayer"].get("identifiers", []),
                    attributes=record["attributes"],
                    source=Source(
                        self.source_system,
                        str(record.get("record_no") or key)[:128],
                        _asserted(record.get("filed_on")),
                    ),
                )
            )
        outcomes = registry.record_facts_bulk(facts) if facts else {}
        for key, outcome in outcomes.items():
            if outcome == "unresolved":
                ctx = IngestContext(
                    message_id=f"{self.run_id}:{key}",
                    source_id=str(records[key].get("record_no") or key),
                    headers={},
                    source_system=self.source_system,
                )
                outcome = apply_income(registry, records[key], ctx)
            result.add(outcome)
        return result
