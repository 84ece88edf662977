"""The registry's bulk loader as file connectors see it (``connectors.base.bulk``).

A connector hands over the good rows of a large file (read and checked by its own parser and
row rules); they go through ``run_import`` — the mapping spec, matching, provenance, set-based
batches, each committed with its checkpoint — exactly as ``srhub import`` loads a file. The
checkpoint is keyed by the file's content and the spec, so a file handled again after a crash
or a database outage continues after the last committed row, and one loaded already is not
loaded twice.

A database that cannot be reached becomes ``BulkLoadUnavailable``: the connector then leaves
the file in its drop folder (the runner retries it later) instead of refusing a good file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base.bulk import BulkLoadResult, BulkLoadUnavailable, BulkRefusal, BulkRow
from hub.bulk.checkpoint import file_digest
from hub.bulk.reading import Row
from hub.bulk.runner import DEFAULT_BATCH, ImportOptions, run_import
from registry_core.service import Registry

# Counts of the run that are not outcomes of rows.
_NOT_OUTCOMES = ("rows", "rejected")


def _rows(rows: Iterable[BulkRow]) -> Iterator[Row]:
    for row in rows:
        yield Row(row.number, dict(row.values), "")


def _replay(path: Path, on_refused: Callable[[BulkRefusal], None]) -> None:
    """Every refusal of the load, earlier attempts' included, from its rejects file; then
    the file goes (the connector's report now holds them)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for text in handle:
            entry = json.loads(text)
            on_refused(BulkRefusal(entry["line"], entry["reason"], entry.get("problems", [])))
    path.unlink()


@dataclass
class RegistryBulkLoader:
    """``BulkLoader`` over the registry of this process; ``registry`` is called on first use
    (the hub's runtime builds the registry, and reads the keys, only then). Refused rows are
    kept in ``rejects_dir`` (their line and why, never a value) until the load finishes, so
    a load continued after a crash still reports the rows its first attempt refused."""

    registry: Callable[[], tuple[Registry, sessionmaker[Session]]]
    rejects_dir: Path
    batch_size: int = DEFAULT_BATCH
    on_progress: Callable[[int], None] | None = None  # the last row number done, per batch

    def load(
        self,
        path: Path,
        spec: str,
        rows: Iterable[BulkRow],
        *,
        source_system: str,
        on_refused: Callable[[BulkRefusal], None],
    ) -> BulkLoadResult:
        self.rejects_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        rejects = self.rejects_dir / f"{file_digest(path)[:32]}-{spec}.rejects.jsonl"
        options = ImportOptions(
            path=path,
            fmt="csv",
            mapping=spec,
            batch_size=self.batch_size,
            rejects=rejects,
            source=source_system,
        )
        try:
            registry, sessions = self.registry()
            source = _rows(rows)
            summary = run_import(registry, sessions, options, self.on_progress, rows=source)
            if summary.already_done:  # read to the end all the same: the connector counts
                for _ in source:
                    pass
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise BulkLoadUnavailable(
                    f"the registry database could not be written ({type(exc.orig).__name__})"
                ) from exc
            raise
        _replay(rejects, on_refused)
        return BulkLoadResult(
            counts={k: v for k, v in summary.counts.items() if k not in _NOT_OUTCOMES},
            refused=summary.rejected,
            resumed_after=summary.resumed_from,
            already_loaded=summary.already_done,
        )
