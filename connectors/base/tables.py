"""The connectors' own tables: where each pull stream stopped, and which files were seen.

They live on the project's single declarative ``Base`` so Alembic and the test fixtures see
them with everything else (``hub.dbschema.MODEL_MODULES`` lists this module). Neither table
holds partner data: a checkpoint is a cursor (a timestamp, a page token, a sequence number)
and a seen file is a checksum and a file name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, utcnow


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
