"""Intake forms (XLSForm versions, media) and field submissions (hub.intake.tables).

Revision ID: 0009_intake_forms_submissions
Revises: 0008_message_log_notes
Create Date: 2026-12-05 19:29:00.674171
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_intake_forms_submissions"
down_revision = "0008_message_log_notes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_forms",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("form_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("xlsform", sa.LargeBinary(), nullable=False),
        sa.Column("xlsform_name", sa.String(length=200), nullable=False),
        sa.Column("xform", sa.LargeBinary(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_forms")),
        sa.UniqueConstraint("form_id", "version", name="uq_intake_form_version"),
    )
    with op.batch_alter_table("intake_forms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intake_forms_form_id"), ["form_id"], unique=False)

    op.create_table(
        "intake_form_media",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("form_pk", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_pk"], ["intake_forms.id"], name=op.f("fk_intake_form_media_form_pk_intake_forms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_form_media")),
        sa.UniqueConstraint("form_pk", "name", name="uq_intake_form_media"),
    )
    with op.batch_alter_table("intake_form_media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intake_form_media_form_pk"), ["form_pk"], unique=False)

    op.create_table(
        "intake_submissions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        sa.Column("form_id", sa.String(length=64), nullable=False),
        sa.Column("form_version", sa.String(length=32), nullable=False),
        sa.Column("form_pk", sa.Uuid(), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=True),
        sa.Column("admin_area_code", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("xml_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("household_id", sa.Uuid(), nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("result_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_pk"],
            ["intake_forms.id"],
            name=op.f("fk_intake_submissions_form_pk_intake_forms"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_submissions")),
        sa.UniqueConstraint("instance_id", name=op.f("uq_intake_submissions_instance_id")),
    )
    with op.batch_alter_table("intake_submissions", schema=None) as batch_op:
        batch_op.create_index("ix_intake_submissions_area", ["admin_area_code"], unique=False)
        batch_op.create_index(
            "ix_intake_submissions_form", ["form_id", "form_version"], unique=False
        )
        batch_op.create_index(
            "ix_intake_submissions_status", ["status", "received_at"], unique=False
        )

    op.create_table(
        "intake_attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("submission_pk", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_pk"],
            ["intake_submissions.id"],
            name=op.f("fk_intake_attachments_submission_pk_intake_submissions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_attachments")),
    )
    with op.batch_alter_table("intake_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intake_attachments_submission_pk"), ["submission_pk"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("intake_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_attachments_submission_pk"))

    op.drop_table("intake_attachments")
    with op.batch_alter_table("intake_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_submissions_status")
        batch_op.drop_index("ix_intake_submissions_form")
        batch_op.drop_index("ix_intake_submissions_area")

    op.drop_table("intake_submissions")
    with op.batch_alter_table("intake_form_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_form_media_form_pk"))

    op.drop_table("intake_form_media")
    with op.batch_alter_table("intake_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_forms_form_id"))

    op.drop_table("intake_forms")
