"""The read-audit tables: one row per read of personal data, and the anchors purges leave.

A row names registry UUIDs only (households, persons), never a national ID, a name or a
searched value: an identifier search records its kind (``identifier:national_id``), not the
number. Id lists are capped (``MAX_IDS``); ``record_count`` says how many records the read
returned in all.

``seq`` is given by the writer (the previous row's plus one, under the append lock), not by a
sequence, because it is part of the hashed content: a row moved, dropped or inserted breaks
the chain at its place. On PostgreSQL a trigger refuses UPDATE, and DELETE unless the purge
set ``srhub.read_audit_purge`` in its transaction; on SQLite a trigger refuses UPDATE (the
migration ``0024_read_audit`` creates them, as does ``create_all`` through the DDL events).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DDL, BigInteger, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, UTCDateTime
from standards.timeutil import utcnow

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
MAX_IDS = 100  # ids kept per row and kind; the count covers the rest
PURGE_SETTING = "srhub.read_audit_purge"


class ReadAuditRow(Base):
    """One read: who, which records, why, when, through what."""

    __tablename__ = "read_audit"

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    roles: Mapped[str] = mapped_column(String(200))  # sorted, comma-separated
    program: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # api | dci | fhir | ui
    route: Mapped[str] = mapped_column(String(200))  # the URL rule, never the URL with a query
    purpose: Mapped[str] = mapped_column(String(64), index=True)
    query_kind: Mapped[str] = mapped_column(String(64), default="")
    household_ids: Mapped[str] = mapped_column(Text)  # JSON list of UUID strings, capped
    person_ids: Mapped[str] = mapped_column(Text)  # JSON list of UUID strings, capped
    record_count: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class ReadAuditAnchor(Base):
    """Where verification starts after a purge: the last purged row's seq and hash."""

    __tablename__ = "read_audit_anchors"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    purged: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


Index("ix_read_audit_subject_seq", ReadAuditRow.subject, ReadAuditRow.seq)

# --- append-only guards ---------------------------------------------------------------------

POSTGRES_GUARDS: tuple[str, ...] = (
    f"""
CREATE OR REPLACE FUNCTION read_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'read_audit'
       AND current_setting('{PURGE_SETTING}', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused';
END
$$ LANGUAGE plpgsql
""",
    "CREATE TRIGGER read_audit_append_only BEFORE UPDATE OR DELETE ON read_audit "
    "FOR EACH ROW EXECUTE FUNCTION read_audit_append_only()",
    "CREATE TRIGGER read_audit_anchors_append_only BEFORE UPDATE OR DELETE ON "
    "read_audit_anchors FOR EACH ROW EXECUTE FUNCTION read_audit_append_only()",
)
POSTGRES_DROP: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS read_audit_anchors_append_only ON read_audit_anchors",
    "DROP TRIGGER IF EXISTS read_audit_append_only ON read_audit",
    "DROP FUNCTION IF EXISTS read_audit_append_only()",
)
SQLITE_GUARDS: tuple[str, ...] = (
    "CREATE TRIGGER read_audit_no_update BEFORE UPDATE ON read_audit "
    "BEGIN SELECT RAISE(ABORT, 'read_audit is append-only: UPDATE refused'); END",
    "CREATE TRIGGER read_audit_anchors_no_change BEFORE UPDATE ON read_audit_anchors "
    "BEGIN SELECT RAISE(ABORT, 'read_audit_anchors is append-only: UPDATE refused'); END",
    "CREATE TRIGGER read_audit_anchors_no_delete BEFORE DELETE ON read_audit_anchors "
    "BEGIN SELECT RAISE(ABORT, 'read_audit_anchors is append-only: DELETE refused'); END",
)
SQLITE_DROP: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS read_audit_anchors_no_delete",
    "DROP TRIGGER IF EXISTS read_audit_anchors_no_change",
    "DROP TRIGGER IF EXISTS read_audit_no_update",
)


def guard_statements(dialect: str) -> tuple[str, ...]:
    """The statements that make the tables append-only on ``dialect`` (none elsewhere)."""
    return {"postgresql": POSTGRES_GUARDS, "sqlite": SQLITE_GUARDS}.get(dialect, ())


def drop_statements(dialect: str) -> tuple[str, ...]:
    return {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP}.get(dialect, ())


# ``create_all`` (tests that build a schema without migrating) gets the same guards. The
# anchors table is created after the rows table, so both exist when its event fires.
for _dialect, _statements in (("postgresql", POSTGRES_GUARDS), ("sqlite", SQLITE_GUARDS)):
    for _statement in _statements:
        event.listen(
            ReadAuditAnchor.__table__,
            "after_create",
            DDL(_statement).execute_if(dialect=_dialect),
        )
