"""Subscriptions and their delivery log (hub.subscriptions.tables).

Revision ID: 0004_subscriptions
Revises: 0003_message_log_alerts
Create Date: 2026-11-26 02:15:52.358026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_subscriptions"
down_revision = "0003_message_log_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription_code", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_deliveries")),
    )
    with op.batch_alter_table("subscription_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscription_deliveries_event", ["subscription_code", "event_id"], unique=False
        )
        batch_op.create_index(
            "ix_subscription_deliveries_sub", ["subscription_code", "id"], unique=False
        )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("program_code", sa.String(length=64), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("code", name=op.f("uq_subscriptions_code")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriptions_program_code"), ["program_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subscriptions_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_status"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_program_code"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("subscription_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_deliveries_sub")
        batch_op.drop_index("ix_subscription_deliveries_event")

    op.drop_table("subscription_deliveries")
