"""The import loop: stream, batch, process, commit with the checkpoint, report.

Each batch is one transaction: the registry's rows and the checkpoint commit together (or,
with ``dry_run``, roll back together: everything is checked and matched, nothing is kept).
A batch ends at a household boundary, never inside one. Rejects are written after their batch
committed. ``on_progress`` is called with the last line done after each batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from hub.bulk.checkpoint import ImportCheckpoint, Position, file_digest
from hub.bulk.households import BatchResult, HouseholdRows
from hub.bulk.income import IncomeRows, iter_tax_rows
from hub.bulk.reading import Row, iter_rows
from hub.bulk.rejects import Reject, RejectsFile
from mappings.engine import Spec, load_spec
from registry_core.service import Registry

DEFAULT_BATCH = 5000
# Record types of the specs a bulk load knows, and how their rows are read and applied.
HOUSEHOLD_TYPES = ("household_row",)
INCOME_TYPES = ("income",)


class Processor(Protocol):
    def group_key(self, row: Row) -> str: ...

    def process(self, registry: Registry, rows: list[Row]) -> BatchResult: ...


@dataclass(frozen=True)
class ImportOptions:
    path: Path
    fmt: str  # csv | jsonl
    mapping: str
    batch_size: int = DEFAULT_BATCH
    dry_run: bool = False
    rejects: Path | None = None
    source: str | None = None  # provenance source system (default: the spec's source)
    delimiter: str | None = None  # CSV (default "," ; ";" for the tax extract)


@dataclass
class ImportSummary:
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    resumed_from: int = 0
    already_done: bool = False
    seconds: float = 0.0

    def line(self) -> str:
        counts = " ".join(
            f"{k}={v}" for k, v in sorted(self.counts.items()) if k not in ("rows", "rejected")
        )
        return (
            f"rows={self.rows} rejected={self.rejected} {counts} resumed_from_line="
            f"{self.resumed_from} seconds={self.seconds:.1f}"
        ).replace("  ", " ")


def processor_for(spec: Spec, options: ImportOptions, digest: str) -> Processor:
    source = options.source or spec.source or spec.name
    if spec.record_type in HOUSEHOLD_TYPES:
        return HouseholdRows(spec, source)
    if spec.record_type in INCOME_TYPES:
        return IncomeRows(spec, source, f"import-{digest[:16]}")
    raise ValueError(
        f"mapping {spec.name} gives {spec.record_type} records; a bulk import loads "
        f"{', '.join(HOUSEHOLD_TYPES + INCOME_TYPES)}"
    )


def read_rows(spec: Spec, options: ImportOptions) -> Iterator[Row]:
    if spec.record_type in INCOME_TYPES and options.fmt == "csv":
        return iter_tax_rows(options.path, options.delimiter or ";")
    return iter_rows(options.path, options.fmt, options.delimiter or ",")


def batches(
    rows: Iterator[Row], processor: Processor, size: int, after: int
) -> Iterator[list[Row]]:
    """Rows after line ``after`` in batches of about ``size``, cut between groups."""
    batch: list[Row] = []
    for row in rows:
        if row.line <= after:
            continue
        if len(batch) >= size and processor.group_key(batch[-1]) != processor.group_key(row):
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


def run_import(
    registry: Registry,
    sessions: sessionmaker[Session],
    options: ImportOptions,
    on_progress: Callable[[int], None] | None = None,
    *,
    rows: Iterable[Row] | None = None,
    on_rejects: Callable[[list[Reject]], None] | None = None,
) -> ImportSummary:
    """Load ``options.path``; returns the summary (counts of this run and earlier ones).

    ``rows``: the file's rows as a connector read them (its own parser; ``Row.line`` is
    then the record's number), instead of reading ``options.path`` here; the path still
    names the checkpoint. ``on_rejects``: told each batch's refused rows once it committed,
    beside the rejects file."""
    started = time.perf_counter()
    spec = load_spec(options.mapping)
    digest = file_digest(options.path)
    processor = processor_for(spec, options, digest)
    checkpoint = ImportCheckpoint(digest, spec.name)
    with sessions() as session:
        position = checkpoint.load(session)
    summary = ImportSummary(resumed_from=position.line, counts=dict(position.counts))
    summary.rows = summary.counts.get("rows", 0)
    summary.rejected = summary.counts.get("rejected", 0)
    if position.finished and not options.dry_run:
        summary.already_done = True
        return summary
    rejects = RejectsFile(options.rejects)
    last = position.line
    source = iter(rows) if rows is not None else read_rows(spec, options)
    for batch in batches(source, processor, options.batch_size, position.line):
        session = sessions()
        transaction = session.begin()
        try:
            result = processor.process(registry.within(session), batch)
            for name, n in result.counts.items():
                summary.counts[name] = summary.counts.get(name, 0) + n
            summary.counts["rejected"] = summary.counts.get("rejected", 0) + len(result.rejects)
            last = batch[-1].line
            if options.dry_run:
                transaction.rollback()
            else:
                checkpoint.save(session, Position(last, summary.counts))
                transaction.commit()
        except BaseException:
            transaction.rollback()
            raise
        finally:
            session.close()
        rejects.write(result.rejects)
        if on_rejects is not None and result.rejects:
            on_rejects(result.rejects)
        if on_progress is not None:
            on_progress(last)
    if not options.dry_run:
        with sessions() as session, session.begin():
            checkpoint.save(session, Position(last, summary.counts, finished=True))
    summary.rows = summary.counts.get("rows", 0)
    summary.rejected = summary.counts.get("rejected", 0)
    summary.seconds = time.perf_counter() - started
    return summary
