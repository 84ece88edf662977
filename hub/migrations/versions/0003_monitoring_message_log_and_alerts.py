"""Monitoring: the message log (bounded by retention) and the alerts table (Step 6).

Revision ID: 0003_message_log_alerts
Revises: 0002_dashboard_users
Create Date: 2026-11-26 02:15:41.811763
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_message_log_alerts"
down_revision = "0002_dashboard_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("connector", sa.String(length=128), nullable=False),
        sa.Column("partner", sa.String(length=128), nullable=True),
        sa.Column("subscription", sa.String(length=128), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("routing_key", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("body_sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
    )
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.create_index("ix_message_log_connector_id", ["connector", "id"], unique=False)
        batch_op.create_index("ix_message_log_message", ["message_id", "direction"], unique=False)
        batch_op.create_index(
            "ix_message_log_pending", ["status", "connector", "started_at"], unique=False
        )
        batch_op.create_index("ix_message_log_started", ["started_at"], unique=False)
        batch_op.create_index("ix_message_log_status_id", ["status", "id"], unique=False)

    op.create_table(
        "monitoring_alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=160), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("began_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_state", sa.String(length=16), nullable=True),
        sa.Column("notify_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_alerts")),
    )
    with op.batch_alter_table("monitoring_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_monitoring_alerts_began", ["began_at"], unique=False)
        batch_op.create_index(
            "ix_monitoring_alerts_state", ["state", "rule", "subject"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("monitoring_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_alerts_state")
        batch_op.drop_index("ix_monitoring_alerts_began")

    op.drop_table("monitoring_alerts")
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.drop_index("ix_message_log_status_id")
        batch_op.drop_index("ix_message_log_started")
        batch_op.drop_index("ix_message_log_pending")
        batch_op.drop_index("ix_message_log_message")
        batch_op.drop_index("ix_message_log_connector_id")

    op.drop_table("message_log")
