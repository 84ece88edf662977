"""The review queue of field submissions, household visits, and each person's last national
ID cross-check (hub.review, hub.crosscheck).

Revision ID: 0011_review_items_and_visits
Revises: 0008_message_log_notes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_review_items_and_visits"
down_revision = "0010_field_worker_credentials"
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("instance_id", sa.String(200), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=True),
        sa.Column("form_id", sa.String(200), nullable=False),
        sa.Column("form_version", sa.String(100), nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("admin_area_code", sa.String(64), nullable=True),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("conflict", sa.Boolean(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    for column in ("state", "household_id", "form_id", "submitted_by", "admin_area_code"):
        op.create_index(f"ix_review_items_{column}", "review_items", [column])
    op.create_index("ix_review_items_state_submitted", "review_items", ["state", "submitted_at"])
    op.create_table(
        "review_submissions",
        sa.Column("instance_id", sa.String(200), primary_key=True),
        sa.Column("item_id", sa.Uuid(), sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("submitted_by", sa.String(200), nullable=False),
        sa.Column("form_version", sa.String(100), nullable=False),
        sa.Column("conflict", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_submissions_item_id", "review_submissions", ["item_id"])
    op.create_index("ix_review_submissions_submitted_by", "review_submissions", ["submitted_by"])
    op.create_table(
        "review_decisions",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Uuid(), sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("instance_id", sa.String(200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_decisions_item_id", "review_decisions", ["item_id"])
    op.create_table(
        "household_visits",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("admin_area_code", sa.String(64), nullable=True),
        sa.Column("visited_by", sa.String(200), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("instance_id", sa.String(200), nullable=True),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_household_visits_household", "household_visits", ["household_id", "visited_at"]
    )
    op.create_index("ix_household_visits_instance_id", "household_visits", ["instance_id"])
    op.create_table(
        "identity_checks",
        sa.Column("person_id", sa.Uuid(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("trigger", sa.String(64), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("identity_checks")
    op.drop_table("household_visits")
    op.drop_table("review_decisions")
    op.drop_table("review_submissions")
    op.drop_table("review_items")
