"""A partial index for the outbox relay: unpublished events by subject and sequence.

Revision ID: 0005_outbox_index
Revises: 0004_subscriptions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox_index"
down_revision = "0004_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_unpublished_subject",
        "outbox",
        ["subject", "sequence"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unpublished_subject", table_name="outbox")
