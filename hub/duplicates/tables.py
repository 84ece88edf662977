"""The duplicate scan job's row: state, progress counts and where it got to.

A scan walks the stored blocking keys in key order and commits after each batch; ``cursor``
is the last key done, so a scan interrupted by a restart resumes after it instead of starting
over (and re-proposing nothing: pairs already queued or decided are skipped by their key).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow


class ScanState:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ACTIVE = (QUEUED, RUNNING)
    ALL = (QUEUED, RUNNING, DONE, FAILED)


class DuplicateScan(Base):
    """One registry-wide duplicate scan (``POST /api/v1/duplicates/scans``)."""

    __tablename__ = "duplicate_scans"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    state: Mapped[str] = mapped_column(String(16), default=ScanState.QUEUED, index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()  # a running scan's last batch
    cursor: Mapped[str | None] = mapped_column(String(64))  # last blocking key done
    keys_total: Mapped[int] = mapped_column(Integer, default=0)
    keys_done: Mapped[int] = mapped_column(Integer, default=0)
    blocks_too_large: Mapped[int] = mapped_column(Integer, default=0)
    pairs_compared: Mapped[int] = mapped_column(Integer, default=0)
    candidates_found: Mapped[int] = mapped_column(Integer, default=0)  # newly queued pairs
    already_known: Mapped[int] = mapped_column(Integer, default=0)  # queued or decided before
    error: Mapped[str | None] = mapped_column(Text)
    # 1 while queued or running, NULL after: unique, so two requests at the same instant
    # cannot both queue a scan (NULLs never collide, on SQLite and PostgreSQL alike).
    active_slot: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(f"state IN {ScanState.ALL!r}", name="scan_state_known"),
        UniqueConstraint("active_slot", name="uq_duplicate_scans_one_active"),
    )
