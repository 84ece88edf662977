"""Program enrolments as the programs connector reports them (registry_core.reports).

Revision ID: 0018_coverage
Revises: 0017_scoring_models
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_coverage"
down_revision = "0017_scoring_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "program_enrolments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_code", sa.String(length=64), nullable=False),
        sa.Column("beneficiary_number", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("enrolled_on", sa.Date(), nullable=True),
        sa.Column("exited_on", sa.Date(), nullable=True),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'exited')",
            name=op.f("ck_program_enrolments_enrolment_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_program_enrolments_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_enrolments")),
        sa.UniqueConstraint("program_code", "beneficiary_number", name="uq_program_enrolment"),
    )
    op.create_index(op.f("ix_program_enrolments_person_id"), "program_enrolments", ["person_id"])
    op.create_index(
        "ix_program_enrolments_program", "program_enrolments", ["program_code", "status"]
    )


def downgrade() -> None:
    op.drop_table("program_enrolments")
