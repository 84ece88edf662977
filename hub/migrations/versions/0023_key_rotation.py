"""Key rotation (issue 17, item 3): the look-up key version beside each identifier hash, and a
subscription's previous webhook secret with the end of its overlap window.

Every existing identifier hash was made with the one key there was: version 1.

Revision ID: 0023_key_rotation
Revises: 0022_rate_limits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_key_rotation"
down_revision = "0022_rate_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identifiers") as batch:
        batch.add_column(
            sa.Column("value_hash_version", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch.create_index("ix_identifiers_value_hash_version", ["value_hash_version"])
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("previous_secret_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret_sealed")
    with op.batch_alter_table("identifiers") as batch:
        batch.drop_index("ix_identifiers_value_hash_version")
        batch.drop_column("value_hash_version")
