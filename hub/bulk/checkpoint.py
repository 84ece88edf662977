"""Where an import stands: the last line committed, saved in the batch's own transaction.

A batch and its checkpoint commit together, so after a crash or Ctrl-C the rerun starts at the
first line not committed, and no household is created twice. The key is the file's content
(SHA-256) and the mapping: the same export under another name continues; a corrected export is
a new load. The row lives in ``connector_checkpoints`` (connector ``bulk-import``), the table
connectors keep their cursors in; it holds a line number and counts, no partner data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hub.checkpoints import ConnectorCheckpoint
from standards.timeutil import utcnow

CONNECTOR = "bulk-import"
BLOCK = 1 << 20


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Position:
    line: int  # last line committed (0: nothing yet)
    counts: dict[str, int]
    finished: bool = False


class ImportCheckpoint:
    """The checkpoint of one (file content, mapping) pair."""

    def __init__(self, digest: str, mapping: str) -> None:
        self.stream = f"{mapping[:35]}:{digest}"

    def load(self, session: Session) -> Position:
        row = session.get(ConnectorCheckpoint, (CONNECTOR, self.stream))
        if row is None:
            return Position(0, {})
        data: dict[str, Any] = json.loads(row.value_json)
        return Position(int(data["line"]), dict(data.get("counts", {})), bool(data.get("finished")))

    def save(self, session: Session, position: Position) -> None:
        value = json.dumps(
            {"line": position.line, "counts": position.counts, "finished": position.finished}
        )
        row = session.get(ConnectorCheckpoint, (CONNECTOR, self.stream))
        if row is None:
            session.add(
                ConnectorCheckpoint(connector=CONNECTOR, stream=self.stream, value_json=value)
            )
        else:
            row.value_json = value
            row.updated_at = utcnow()

    def forget(self, session: Session) -> None:
        row = session.get(ConnectorCheckpoint, (CONNECTOR, self.stream))
        if row is not None:
            session.delete(row)
