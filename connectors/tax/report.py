"""The per-file report the tax authority gets back: what was taken, what was refused, and why.

It extends the contract's ``FileReport`` (the drop-folder runner writes ``as_dict()`` to
``processed/<file>.report.json``) with the column of each problem and the file's facts, and
bounds its own size: a file of a million bad rows must not make a million-entry report in
memory, so past ``max_listed`` problems only the counts per column grow.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.base import FileReport
from connectors.tax.validation import Problem

DEFAULT_MAX_LISTED = 10_000


@dataclass
class TaxFileReport(FileReport):
    file_name: str = ""
    file_format: str = ""
    period: str | None = None
    manifest_row_count: int = 0
    rows_read: int = 0
    rows_rejected: int = 0
    routing_key: str = ""
    max_listed: int = DEFAULT_MAX_LISTED
    problems: list[dict[str, Any]] = field(default_factory=list)
    problems_not_listed: int = 0
    by_column: Counter[str] = field(default_factory=Counter)
    # A file given to the registry's bulk loader: its outcomes (None: rows were published).
    bulk: dict[str, Any] | None = None

    def reject(self, row: int, line: int | None, problems: list[Problem]) -> None:
        """Record one refused row and every problem it has (column + reason, no values)."""
        self.reject_row(row, "; ".join(f"{p.column}: {p.reason}" for p in problems))
        if len(self.rejected) > self.max_listed:
            self.rejected.pop()  # the row still counts through ``rows_rejected``
        self.rows_rejected += 1
        for problem in problems:
            self.by_column[problem.column] += 1
            if len(self.problems) >= self.max_listed:
                self.problems_not_listed += 1
                continue
            entry: dict[str, Any] = {"row": row, "column": problem.column, "reason": problem.reason}
            if line is not None:
                entry["line"] = line
            self.problems.append(entry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "format": self.file_format,
            "period": self.period,
            "routing_key": self.routing_key,
            "manifest_row_count": self.manifest_row_count,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected_count": self.rows_rejected,
            "rejected": self.problems,
            "rejected_not_listed": self.problems_not_listed,
            "rejected_by_column": dict(sorted(self.by_column.items())),
            **({"bulk": self.bulk} if self.bulk is not None else {}),
        }
