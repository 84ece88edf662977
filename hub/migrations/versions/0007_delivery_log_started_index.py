"""An index on the delivery log's start time, for its retention by age.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_subscription_deliveries_started", "subscription_deliveries", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_subscription_deliveries_started", table_name="subscription_deliveries")
