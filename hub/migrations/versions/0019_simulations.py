"""Saved what-if simulations, programs' benefit schedules; score inputs as JSONB on PostgreSQL.

Revision ID: 0019_simulations
Revises: 0017_scoring_models
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019_simulations"
down_revision = "0018_coverage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Simulations read single variables of every household's inputs: JSONB needs no
        # parsing for ``->>`` (see registry_core/scoring/tables.py).
        op.alter_column(
            "household_scores",
            "inputs",
            type_=postgresql.JSONB(),
            existing_type=sa.JSON(),
            postgresql_using="inputs::jsonb",
        )
    op.create_table(
        "simulations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("scenario", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulations")),
        sa.UniqueConstraint("name", name=op.f("uq_simulations_name")),
    )
    op.create_table(
        "benefit_schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_schedules")),
        sa.UniqueConstraint("program_code", "version", name="uq_benefit_schedule_version"),
    )
    op.create_index(
        op.f("ix_benefit_schedules_program_code"), "benefit_schedules", ["program_code"]
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "household_scores",
            "inputs",
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(),
            postgresql_using="inputs::json",
        )
    op.drop_index(op.f("ix_benefit_schedules_program_code"), table_name="benefit_schedules")
    op.drop_table("benefit_schedules")
    op.drop_table("simulations")
