"""Consents keep who recorded them and on what evidence, and who withdrew them and why
(the consent API, ``hub.api.consents``).

Revision ID: 0012_consent_evidence
Revises: 0011_review_items_and_visits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_consent_evidence"
down_revision = "0011_review_items_and_visits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("evidence_reference", sa.String(256), nullable=True))
        batch.add_column(sa.Column("recorded_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("revocation_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("revocation_reason")
        batch.drop_column("revoked_by")
        batch.drop_column("recorded_by")
        batch.drop_column("evidence_reference")
