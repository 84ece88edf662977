"""Data-quality notes on message log entries (identifiers dropped by a mapping, review reasons).

Revision ID: 0008_message_log_notes
Revises: 0007_dci_unsigned
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_message_log_notes"
down_revision = "0007_dci_unsigned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message_log", sa.Column("notes", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_log") as batch:
        batch.drop_column("notes")
