"""Where the hub keeps its connectors' checkpoints and seen files: two tables and two stores.

Connectors know only the protocols (``connectors.base.checkpoints``: ``CheckpointStore``,
``SeenFileStore``) and get a store through their context; the SQL lives here, on the hub's
side, so ``connectors`` never imports the database or the registry. The host
(``hub.connectors_host``) builds one store of each over the hub's engine and hands them to
every connector. The tables sit on the project's single declarative ``Base`` (so Alembic and
the fixtures see them; ``hub.dbschema.MODEL_MODULES`` lists this module). Neither holds
partner data: a checkpoint is a cursor (a timestamp, a page token, a sequence number) and a
seen file is a checksum and a file name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from connectors.base.checkpoints import DEFAULT_STREAM, decode_checkpoint, encode_checkpoint
from registry_core.db import Base
from standards.timeutil import utcnow


class ConnectorCheckpoint(Base):
    """The position a pull connector has published up to, per stream (one connector may
    follow several feeds)."""

    __tablename__ = "connector_checkpoints"

    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100), primary_key=True)
    value_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConnectorSeenFile(Base):
    """A dropped file already handled, by content checksum: the same bytes delivered again
    (a partner re-sends, an operator copies twice) are not ingested twice."""

    __tablename__ = "connector_seen_files"

    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(20))  # processed | rejected
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


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
        return decode_checkpoint(raw)

    def save(self, connector: str, value: Any, stream: str = DEFAULT_STREAM) -> None:
        encoded = encode_checkpoint(value)
        for _ in range(2):  # a concurrent first insert makes ours fail once; then update
            try:
                with self._sessions() as session, session.begin():
                    result = session.execute(
                        update(ConnectorCheckpoint)
                        .where(
                            ConnectorCheckpoint.connector == connector,
                            ConnectorCheckpoint.stream == stream,
                        )
                        .values(value_json=encoded, updated_at=utcnow())
                    )
                    changed = result.rowcount if isinstance(result, CursorResult) else 0
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
