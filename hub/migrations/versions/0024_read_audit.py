"""The audit of reads: a hash-chained, append-only record of who read what (issue 17, §2).

Revision ID: 0024_read_audit
Revises: 0022_rate_limits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_read_audit"
down_revision = "0023_key_rotation"
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The append-only guards, as hub.readaudit.tables declares them (copied: a migration does
# not change when the module does).
POSTGRES_GUARDS: tuple[str, ...] = (
    """
CREATE OR REPLACE FUNCTION read_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'read_audit'
       AND current_setting('srhub.read_audit_purge', true) = 'on' THEN
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
    return {"postgresql": POSTGRES_GUARDS, "sqlite": SQLITE_GUARDS}.get(dialect, ())


def drop_statements(dialect: str) -> tuple[str, ...]:
    return {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP}.get(dialect, ())


def upgrade() -> None:
    op.create_table(
        "read_audit",
        sa.Column("seq", BigIntPK, autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("program", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("query_kind", sa.String(length=64), nullable=False),
        sa.Column("household_ids", sa.Text(), nullable=False),
        sa.Column("person_ids", sa.Text(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_read_audit")),
    )
    op.create_index(op.f("ix_read_audit_at"), "read_audit", ["at"])
    op.create_index(op.f("ix_read_audit_purpose"), "read_audit", ["purpose"])
    op.create_index(op.f("ix_read_audit_subject"), "read_audit", ["subject"])
    op.create_index("ix_read_audit_subject_seq", "read_audit", ["subject", "seq"])
    op.create_table(
        "read_audit_anchors",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("purged", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_read_audit_anchors")),
    )
    for statement in guard_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("read_audit_anchors")
    op.drop_index("ix_read_audit_subject_seq", table_name="read_audit")
    op.drop_index(op.f("ix_read_audit_subject"), table_name="read_audit")
    op.drop_index(op.f("ix_read_audit_purpose"), table_name="read_audit")
    op.drop_index(op.f("ix_read_audit_at"), table_name="read_audit")
    op.drop_table("read_audit")
