"""The rejects file: one JSON line per refused row, with its line and why.

The row itself is never copied (it holds names and identifiers): a reject names the line,
the column and the rule, with the mapping's message, which never quotes an identifier value
(the same message a dead-lettered record carries). The partner fixes the line named. Lines
are appended after their batch committed, so a rerun that continues from the checkpoint does
not list a row twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"line": self.line, "reason": self.reason}
        if self.problems:
            found["problems"] = self.problems
        return found


class RejectsFile:
    """Appends rejects to ``path`` (created on the first one)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0

    def write(self, rejects: list[Reject]) -> None:
        self.count += len(rejects)
        if not rejects or self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            for reject in sorted(rejects, key=lambda r: r.line):
                handle.write(json.dumps(reject.as_dict(), sort_keys=True) + "\n")
