"""Dashboard users (password logins) and the dashboard's audit trail (hub.ui.tables).

Revision ID: 0002_dashboard_users
Revises: 0001_initial
Create Date: 2026-11-26 02:14:50.669271
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_dashboard_users"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("outcome", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_audit")),
    )
    with op.batch_alter_table("ui_audit", schema=None) as batch_op:
        batch_op.create_index("ix_ui_audit_actor_id", ["actor", "id"], unique=False)
        batch_op.create_index("ix_ui_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_ui_audit_target_id", ["target", "id"], unique=False)

    op.create_table(
        "ui_users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_ui_users")),
    )


def downgrade() -> None:
    op.drop_table("ui_users")
    with op.batch_alter_table("ui_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_ui_audit_target_id")
        batch_op.drop_index("ix_ui_audit_at")
        batch_op.drop_index("ix_ui_audit_actor_id")

    op.drop_table("ui_audit")
