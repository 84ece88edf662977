"""Data-quality issues and full scans (hub.quality.tables, docs/data-quality.md).

Revision ID: 0016_data_quality_issues
Revises: 0013_household_recertifications
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_data_quality_issues"
down_revision = "0015_person_merges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_quality_issues",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=True),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("admin_area_code", sa.String(length=64), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_changed_by", sa.String(length=200), nullable=True),
        sa.Column("state_reason", sa.String(length=500), nullable=True),
        sa.Column("times_reopened", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved', 'dismissed')",
            name=op.f("ck_data_quality_issues_quality_state_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_quality_issues")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_data_quality_issues_dedupe_key")),
    )
    with op.batch_alter_table("data_quality_issues", schema=None) as batch_op:
        batch_op.create_index("ix_data_quality_issues_area", ["admin_area_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_data_quality_issues_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index("ix_data_quality_issues_opened", ["opened_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_data_quality_issues_person_id"), ["person_id"], unique=False
        )
        batch_op.create_index("ix_data_quality_issues_resolved", ["resolved_at"], unique=False)
        batch_op.create_index("ix_data_quality_issues_state_kind", ["state", "kind"], unique=False)

    op.create_table(
        "data_quality_scans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.String(length=36), nullable=True),
        sa.Column("households_total", sa.Integer(), nullable=False),
        sa.Column("persons_total", sa.Integer(), nullable=False),
        sa.Column("households_checked", sa.Integer(), nullable=False),
        sa.Column("persons_checked", sa.Integer(), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.CheckConstraint(
            "state IN ('running', 'finished', 'failed')",
            name=op.f("ck_data_quality_scans_scan_state_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_quality_scans")),
    )
    with op.batch_alter_table("data_quality_scans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_quality_scans_state"), ["state"], unique=False)
        batch_op.create_index(
            "uq_data_quality_scans_one_running",
            ["state"],
            unique=True,
            postgresql_where=sa.text("state = 'running'"),
            sqlite_where=sa.text("state = 'running'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("data_quality_scans", schema=None) as batch_op:
        batch_op.drop_index("uq_data_quality_scans_one_running")
        batch_op.drop_index(batch_op.f("ix_data_quality_scans_state"))

    op.drop_table("data_quality_scans")
    with op.batch_alter_table("data_quality_issues", schema=None) as batch_op:
        batch_op.drop_index("ix_data_quality_issues_state_kind")
        batch_op.drop_index("ix_data_quality_issues_resolved")
        batch_op.drop_index(batch_op.f("ix_data_quality_issues_person_id"))
        batch_op.drop_index("ix_data_quality_issues_opened")
        batch_op.drop_index(batch_op.f("ix_data_quality_issues_household_id"))
        batch_op.drop_index("ix_data_quality_issues_area")

    op.drop_table("data_quality_issues")
