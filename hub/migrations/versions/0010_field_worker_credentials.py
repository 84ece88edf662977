"""Field workers and supervisors as password users: their areas and sealed Digest
password-equivalents on ui_users (OpenRosa device authentication).

Revision ID: 0010_field_worker_credentials
Revises: 0009_intake_forms_submissions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_field_worker_credentials"
down_revision = "0009_intake_forms_submissions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ui_users") as batch:
        batch.add_column(sa.Column("areas", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("digest_ha1", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ui_users") as batch:
        batch.drop_column("digest_ha1")
        batch.drop_column("areas")
