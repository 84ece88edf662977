"""Scoring models, eligibility rules, current scores and eligibility (registry_core.scoring).

Revision ID: 0017_scoring_models
Revises: 0013_household_recertifications
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_scoring_models"
down_revision = "0016_data_quality_issues"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'retired')",
            name=op.f("ck_scoring_models_scoring_model_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_models")),
        sa.UniqueConstraint("code", "version", name="uq_scoring_model_version"),
    )
    op.create_index(op.f("ix_scoring_models_code"), "scoring_models", ["code"])
    op.create_table(
        "eligibility_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_code", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'retired')",
            name=op.f("ck_eligibility_rules_eligibility_rule_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eligibility_rules")),
        sa.UniqueConstraint("program_code", "version", name="uq_eligibility_rule_version"),
    )
    op.create_index(
        op.f("ix_eligibility_rules_program_code"), "eligibility_rules", ["program_code"]
    )
    op.create_table(
        "household_scores",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("model_code", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("scorable", sa.Boolean(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("contributions", sa.JSON(), nullable=False),
        sa.Column("previous_model_version", sa.Integer(), nullable=True),
        sa.Column("previous_score", sa.Float(), nullable=True),
        sa.Column("previous_contributions", sa.JSON(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_scores_household_id_households"),
        ),
        sa.PrimaryKeyConstraint("household_id", "model_code", name=op.f("pk_household_scores")),
    )
    op.create_table(
        "household_eligibility",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("program_code", sa.String(length=64), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("model_code", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_eligibility_household_id_households"),
        ),
        sa.PrimaryKeyConstraint(
            "household_id", "program_code", name=op.f("pk_household_eligibility")
        ),
    )
    op.create_index(
        "ix_household_eligibility_program",
        "household_eligibility",
        ["program_code", "eligible"],
    )


def downgrade() -> None:
    op.drop_table("household_eligibility")
    op.drop_table("household_scores")
    op.drop_table("eligibility_rules")
    op.drop_table("scoring_models")
