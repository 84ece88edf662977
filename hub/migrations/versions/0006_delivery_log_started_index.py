"""An index on the delivery log's start time, for its retention by age.

Revision ID: 0006_delivery_log_index
Revises: 0005_outbox_index
"""

from __future__ import annotations

from alembic import op

revision = "0006_delivery_log_index"
down_revision = "0005_outbox_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_subscription_deliveries_started", "subscription_deliveries", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_subscription_deliveries_started", table_name="subscription_deliveries")
