"""The data-quality tables: the issues the checks found, and the full scans' progress.

``data_quality_issues`` holds one row per kind and subject (``dedupe_key``, unique): a check
that finds the same problem again updates ``last_seen_at``; one that no longer finds it
resolves the row (``resolved_by`` = ``check``); a problem coming back reopens it. ``details``
carry numbers and registry ids only (``hub.quality.rules``), never names, dates of birth or
identifier values. ``opened_at`` and ``resolved_at`` give the daily trend.

``data_quality_scans`` records each full scan: who asked, where it is (phase and cursor, so any
process may carry on a scan another started), what it found.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow


class IssueState:
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"
    ALL = (OPEN, ACKNOWLEDGED, RESOLVED, DISMISSED)
    # States a check keeps up to date: a fix resolves them on its own.
    LIVE = (OPEN, ACKNOWLEDGED)


class ScanState:
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    ALL = (RUNNING, FINISHED, FAILED)


class DataQualityIssue(Base):
    __tablename__ = "data_quality_issues"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    subject_type: Mapped[str] = mapped_column(String(16))  # person | household
    household_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    admin_area_code: Mapped[str | None] = mapped_column(String(64))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=IssueState.OPEN)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the current episode opened (a reopened issue starts a new one): the trend's "opened".
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    # Who changed the state last, when, and why (a check: "check"; a person: their name).
    state_changed_at: Mapped[datetime | None] = mapped_column()
    state_changed_by: Mapped[str | None] = mapped_column(String(200))
    state_reason: Mapped[str | None] = mapped_column(String(500))
    times_reopened: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved', 'dismissed')",
            name="quality_state_known",
        ),
        Index("ix_data_quality_issues_state_kind", "state", "kind"),
        Index("ix_data_quality_issues_area", "admin_area_code"),
        Index("ix_data_quality_issues_opened", "opened_at"),
        Index("ix_data_quality_issues_resolved", "resolved_at"),
    )


class DataQualityScan(Base):
    __tablename__ = "data_quality_scans"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    state: Mapped[str] = mapped_column(String(16), default=ScanState.RUNNING, index=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    phase: Mapped[str] = mapped_column(String(16), default="households")  # then persons
    cursor: Mapped[str | None] = mapped_column(String(36))  # last id done in this phase
    households_total: Mapped[int] = mapped_column(Integer, default=0)
    persons_total: Mapped[int] = mapped_column(Integer, default=0)
    households_checked: Mapped[int] = mapped_column(Integer, default=0)
    persons_checked: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        CheckConstraint("state IN ('running', 'finished', 'failed')", name="scan_state_known"),
        # One scan runs at a time, even when two processes start one at the same moment.
        Index(
            "uq_data_quality_scans_one_running",
            "state",
            unique=True,
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
    )
