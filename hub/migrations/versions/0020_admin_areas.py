"""Admin areas with their outlines (GIS), and daily snapshots of the policy headline counts.

Revision ID: 0020_admin_areas
Revises: 0019_simulations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_admin_areas"
down_revision = "0019_simulations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_areas",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("parent_code", sa.String(length=64), nullable=True),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("layers", sa.JSON(), nullable=False),
        sa.Column("bbox", sa.JSON(), nullable=False),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_admin_areas")),
    )
    op.create_index("ix_admin_areas_level", "admin_areas", ["level"])
    op.create_table(
        "policy_snapshots",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("program_code", sa.String(length=64), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("min_cell", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "program_code", name=op.f("pk_policy_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("policy_snapshots")
    op.drop_index("ix_admin_areas_level", table_name="admin_areas")
    op.drop_table("admin_areas")
