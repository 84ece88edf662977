"""Where pull connectors remember how far they got, so a restart resumes instead of restarting.

A checkpoint is any JSON value the connector chooses (a ``since`` timestamp, a page token, a
sequence number). The pull runner saves it only after every record up to it was published, so
after a crash the worst case is publishing a page again (at least once), never skipping one.

``SqlCheckpointStore`` keeps checkpoints in the hub's database (table ``connector_checkpoints``)
and ``InMemoryCheckpointStore`` serves tests and one-off runs. Both do the same, which
``tests/integration/test_connector_base.py`` checks.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base.tables import ConnectorCheckpoint, ConnectorSeenFile
from registry_core.db import utcnow

DEFAULT_STREAM = "default"


class CheckpointStore(Protocol):
    def load(self, connector: str, stream: str = DEFAULT_STREAM) -> Any | None:
        """The last saved checkpoint, or None when the connector never saved one."""
        ...

    def save(self, connector: str, value: Any, stream: str = DEFAULT_STREAM) -> None:
        """Replace the checkpoint; ``value`` must be JSON-serialisable."""
        ...


def _encode(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a checkpoint must be JSON-serialisable: {exc}") from None


class InMemoryCheckpointStore:
    """Checkpoints in a dict: for tests and runs that need not survive a restart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], str] = {}

    def load(self, connector: str, stream: str = DEFAULT_STREAM) -> Any | None:
        with self._lock:
            raw = self._values.get((connector, stream))
        return None if raw is None else json.loads(raw)

    def save(self, connector: str, value: Any, stream: str = DEFAULT_STREAM) -> None:
        encoded = _encode(value)  # same check as the SQL store
        with self._lock:
            self._values[(connector, stream)] = encoded


def _sessions(bind: Engine | sessionmaker[Session]) -> sessionmaker[Session]:
    if isinstance(bind, Engine):
        return sessionmaker(bind=bind, expire_on_commit=False)
    return bind


class SqlCheckpointStore:
    """Checkpoints in table ``connector_checkpoints``; each save is its own transaction."""

    def __init__(self, bind: Engine | sessionmaker[Session]) -> None:
        self._sessions = _sessions(bind)

    def load(self, connector: str, stream: str = DEFAULT_STREAM) -> Any | None:
        with self._sessions() as session:
            raw = session.execute(
                select(ConnectorCheckpoint.value_json).where(
                    ConnectorCheckpoint.connector == connector,
                    ConnectorCheckpoint.stream == stream,
                )
            ).scalar_one_or_none()
        return None if raw is None else json.loads(raw)

    def save(self, connector: str, value: Any, stream: str = DEFAULT_STREAM) -> None:
        encoded = _encode(value)
        for _ in range(2):  # a concurrent first insert makes ours fail once; then update
            try:
                with self._sessions() as session, session.begin():
                    changed = session.execute(
                        update(ConnectorCheckpoint)
                        .where(
                            ConnectorCheckpoint.connector == connector,
                            ConnectorCheckpoint.stream == stream,
                        )
                        .values(value_json=encoded, updated_at=utcnow())
                    ).rowcount
                    if not changed:
                        session.add(
                            ConnectorCheckpoint(
                                connector=connector, stream=stream, value_json=encoded
                            )
                        )
                return
            except IntegrityError:
                continue
        raise RuntimeError(f"could not save the checkpoint of {connector}/{stream}")


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


class SqlSeenFileStore:
    """Seen checksums in table ``connector_seen_files``, so duplicates are caught across
    restarts and across hosts sharing the database."""

    def __init__(self, bind: Engine | sessionmaker[Session]) -> None:
        self._sessions = _sessions(bind)

    def seen(self, connector: str, sha256: str) -> str | None:
        with self._sessions() as session:
            return session.execute(
                select(ConnectorSeenFile.file_name).where(
                    ConnectorSeenFile.connector == connector, ConnectorSeenFile.sha256 == sha256
                )
            ).scalar_one_or_none()

    def remember(self, connector: str, sha256: str, file_name: str, outcome: str) -> None:
        try:
            with self._sessions() as session, session.begin():
                session.add(
                    ConnectorSeenFile(
                        connector=connector,
                        sha256=sha256,
                        file_name=file_name[:255],
                        outcome=outcome,
                    )
                )
        except IntegrityError:
            pass  # already remembered (a re-run after a crash): the first record stands
