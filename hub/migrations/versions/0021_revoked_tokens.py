"""Bearer tokens revoked one by one (their jti), kept until they would have expired.

Revision ID: 0021_revoked_tokens
Revises: 0020_admin_areas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_revoked_tokens"
down_revision = "0020_admin_areas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
    )
    op.create_index("ix_auth_revoked_tokens_expires_at", "auth_revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_revoked_tokens_expires_at", table_name="auth_revoked_tokens")
    op.drop_table("auth_revoked_tokens")
