"""Corrections through change requests: the requests and their steps (hub.corrections.tables).

Revision ID: 0014_change_requests
Revises: 0013_household_recertifications
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_change_requests"
down_revision = "0013_household_recertifications"
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("admin_area_code", sa.String(64), nullable=True),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("old_value", sa.JSON(), nullable=True),
        sa.Column("proposed_value", sa.JSON(), nullable=True),
        sa.Column("evidence_reference", sa.String(200), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("on_behalf_of", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("direct", sa.Boolean(), nullable=False),
        sa.Column("proposed_by", sa.String(200), nullable=False),
        sa.Column("proposer_role", sa.String(32), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(1000), nullable=True),
        sa.Column("replaced_value", sa.JSON(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    for column in ("state", "household_id", "admin_area_code", "proposed_by"):
        op.create_index(f"ix_change_requests_{column}", "change_requests", [column])
    op.create_index(
        "ix_change_requests_state_proposed", "change_requests", ["state", "proposed_at"]
    )
    op.create_table(
        "change_request_steps",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Uuid(), sa.ForeignKey("change_requests.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_change_request_steps_request_id", "change_request_steps", ["request_id"])


def downgrade() -> None:
    op.drop_table("change_request_steps")
    op.drop_table("change_requests")
