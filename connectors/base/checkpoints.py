"""Where pull connectors remember how far they got, so a restart resumes instead of restarting.

A checkpoint is any JSON value the connector chooses (a ``since`` timestamp, a page token, a
sequence number). The pull runner saves it only after every record up to it was published, so
after a crash the worst case is publishing a page again (at least once), never skipping one.

Connectors see only the protocols below and get a store through their context
(``ConnectorContext.checkpoints`` / ``.seen_files``): no SQL here, so a connector never needs
the database. The hub passes stores backed by its database (``hub.checkpoints``);
``InMemoryCheckpointStore`` and ``InMemorySeenFileStore`` serve tests and one-off runs. Both
kinds behave alike, which ``tests/integration/test_connector_base.py`` checks.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

DEFAULT_STREAM = "default"


class CheckpointStore(Protocol):
    def load(self, connector: str, stream: str = DEFAULT_STREAM) -> Any | None:
        """The last saved checkpoint, or None when the connector never saved one."""
        ...

    def save(self, connector: str, value: Any, stream: str = DEFAULT_STREAM) -> None:
        """Replace the checkpoint; ``value`` must be JSON-serialisable."""
        ...


def encode_checkpoint(value: Any) -> str:
    """The stored text of a checkpoint; ``TypeError`` for a value JSON cannot hold, so every
    store refuses the same values at ``save`` (not at the next start)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a checkpoint must be JSON-serialisable: {exc}") from None


def decode_checkpoint(raw: str | None) -> Any | None:
    return None if raw is None else json.loads(raw)


class InMemoryCheckpointStore:
    """Checkpoints in a dict: for tests and runs that need not survive a restart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], str] = {}

    def load(self, connector: str, stream: str = DEFAULT_STREAM) -> Any | None:
        with self._lock:
            raw = self._values.get((connector, stream))
        return decode_checkpoint(raw)

    def save(self, connector: str, value: Any, stream: str = DEFAULT_STREAM) -> None:
        encoded = encode_checkpoint(value)  # same check as the hub's SQL store
        with self._lock:
            self._values[(connector, stream)] = encoded


# --- seen files (used by the drop-folder watcher) --------------------------------------------


class SeenFileStore(Protocol):
    def seen(self, connector: str, sha256: str) -> str | None:
        """The name the file had when first seen, or None for new content."""
        ...

    def remember(self, connector: str, sha256: str, file_name: str, outcome: str) -> None: ...


class InMemorySeenFileStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], str] = {}

    def seen(self, connector: str, sha256: str) -> str | None:
        with self._lock:
            return self._seen.get((connector, sha256))

    def remember(self, connector: str, sha256: str, file_name: str, outcome: str) -> None:
        with self._lock:
            self._seen.setdefault((connector, sha256), file_name)
