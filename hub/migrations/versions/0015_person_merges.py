"""Person merges (reversible, with a journal), merged persons' pointer to their survivor, and
the duplicate scan job (registry_core.models, hub.duplicates.tables).

Revision ID: 0015_person_merges
Revises: 0013_household_recertifications
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_person_merges"
down_revision = "0014_change_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_persons_merged_into_id"), ["merged_into_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_persons_merged_into_id_persons"), "persons", ["merged_into_id"], ["id"]
        )
    op.create_table(
        "person_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=False),
        sa.Column("merged_id", sa.Uuid(), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("forced_reason", sa.Text(), nullable=True),
        sa.Column("merged_by", sa.String(length=200), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("journal", sa.JSON(), nullable=False),
        sa.Column("unmerged_by", sa.String(length=200), nullable=True),
        sa.Column("unmerged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unmerge_reason", sa.Text(), nullable=True),
        sa.Column("unmerge_notes", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "state IN ('merged', 'unmerged')", name=op.f("ck_person_merges_merge_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["merged_id"], ["persons.id"], name=op.f("fk_person_merges_merged_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["survivor_id"], ["persons.id"], name=op.f("fk_person_merges_survivor_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_merges")),
    )
    op.create_index(op.f("ix_person_merges_merged_id"), "person_merges", ["merged_id"])
    op.create_index(op.f("ix_person_merges_review_id"), "person_merges", ["review_id"])
    op.create_index(op.f("ix_person_merges_survivor_id"), "person_merges", ["survivor_id"])
    op.create_table(
        "duplicate_scans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.String(length=64), nullable=True),
        sa.Column("keys_total", sa.Integer(), nullable=False),
        sa.Column("keys_done", sa.Integer(), nullable=False),
        sa.Column("blocks_too_large", sa.Integer(), nullable=False),
        sa.Column("pairs_compared", sa.Integer(), nullable=False),
        sa.Column("candidates_found", sa.Integer(), nullable=False),
        sa.Column("already_known", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("active_slot", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_duplicate_scans_scan_state_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_scans")),
        sa.UniqueConstraint("active_slot", name="uq_duplicate_scans_one_active"),
    )
    op.create_index(op.f("ix_duplicate_scans_state"), "duplicate_scans", ["state"])


def downgrade() -> None:
    op.drop_table("duplicate_scans")
    op.drop_table("person_merges")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_persons_merged_into_id_persons"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_persons_merged_into_id"))
        batch_op.drop_column("merged_into_id")
