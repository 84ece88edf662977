"""DCI senders an operator let in without a signature (hub.dci.tables.DciUnsignedSender).

Revision ID: 0007_dci_unsigned
Revises: 0006_delivery_log_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_dci_unsigned"
down_revision = "0006_delivery_log_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dci_unsigned_senders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sender_id", sa.String(length=200), nullable=False),
        sa.Column("allowed_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("allowed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dci_unsigned_senders")),
    )
    with op.batch_alter_table("dci_unsigned_senders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dci_unsigned_senders_sender_id"), ["sender_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dci_unsigned_senders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dci_unsigned_senders_sender_id"))
    op.drop_table("dci_unsigned_senders")
