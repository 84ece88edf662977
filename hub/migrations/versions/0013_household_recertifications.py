"""Household recertification: last certification, due date, state (registry_core.models).

Revision ID: 0013_household_recertifications
Revises: 0012_consent_evidence
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_household_recertifications"
down_revision = "0012_consent_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "household_recertifications",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("last_certified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("certified_by", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reminded_for", sa.Date(), nullable=True),
        sa.Column("overdue_for", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('current', 'due', 'overdue')",
            name=op.f("ck_household_recertifications_recertification_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_recertifications_household_id_households"),
        ),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_household_recertifications")),
    )
    op.create_index(
        op.f("ix_household_recertifications_due_on"), "household_recertifications", ["due_on"]
    )
    op.create_index(
        op.f("ix_household_recertifications_state"), "household_recertifications", ["state"]
    )


def downgrade() -> None:
    op.drop_table("household_recertifications")
