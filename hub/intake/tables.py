"""The intake core's tables: form versions (with media) and field submissions (with attachments).

A form is kept per version: the XLSForm its author uploaded, the XForm pyxform made of it and
the MD5 devices compare, so every submission can name the exact questions it answered. A
submission is stored before anything else happens to it (durable first, then queued); its raw
XML, attachments and mapped result hold personal data and identifiers, so they are sealed with
the hub's key like the review queue's records (``IdentifierCipher.seal``), never kept in clear.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow

FORM_ACTIVE = "active"
FORM_RETIRED = "retired"

# received: stored and queued; applied: in the registry; conflict: the household changed since
# the version the submission was based on (both sides kept for review); invalid: the answers
# cannot become a household (mapping or rule failure, with the reason); failed: an unexpected
# error while applying (the reason says what to look at); resolved: a conflict a reviewer
# decided by keeping the registry's household.
SUBMISSION_STATUSES = ("received", "applied", "conflict", "invalid", "failed", "resolved")

# Contexts the sealed columns are bound to (AES-GCM associated data).
SEAL_XML = "intake.submission.xml"
SEAL_ATTACHMENT = "intake.submission.attachment"
SEAL_RESULT = "intake.submission.result"


class IntakeForm(Base):
    """One version of one XLSForm. ``(form_id, version)`` is unique: a version is uploaded once.
    The newest active version of a form_id is its current one."""

    __tablename__ = "intake_forms"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    form_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    # Loaded only when read (the download of the XLSForm): every submission reads its form
    # version's row, and the spreadsheet is the largest thing in it.
    xlsform: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    xlsform_name: Mapped[str] = mapped_column(String(200), default="")
    xform: Mapped[bytes] = mapped_column(LargeBinary)
    md5: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=FORM_ACTIVE)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()
    retired_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("form_id", "version", name="uq_intake_form_version"),)


class IntakeFormMedia(Base):
    """A media file of one form version (images, CSV choice lists): the manifest lists them."""

    __tablename__ = "intake_form_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    form_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("intake_forms.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    md5: Mapped[str] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("form_pk", "name", name="uq_intake_form_media"),)


class IntakeSubmission(Base):
    """One submitted instance, idempotent on its ``instance_id`` (the XForm's meta/instanceID).

    ``body_sha256`` tells a re-sent copy (same body: a duplicate) from a different submission
    under a known instanceID (a conflicting duplicate: the first stands)."""

    __tablename__ = "intake_submissions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    instance_id: Mapped[str] = mapped_column(String(128), unique=True)
    form_id: Mapped[str] = mapped_column(String(64))
    form_version: Mapped[str] = mapped_column(String(32))
    form_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("intake_forms.id"))
    submitted_by: Mapped[str] = mapped_column(String(200))
    device_id: Mapped[str | None] = mapped_column(String(200))
    admin_area_code: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    body_sha256: Mapped[str] = mapped_column(String(64))
    xml_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="received")
    reason: Mapped[str | None] = mapped_column(Text)
    household_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    base_version: Mapped[int | None] = mapped_column(Integer)
    # The mapped household (applied), both sides (conflict) or the problems (invalid): JSON,
    # sealed (it holds names and identifiers).
    result_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    queued_at: Mapped[datetime | None] = mapped_column()
    processed_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_intake_submissions_status", "status", "received_at"),
        Index("ix_intake_submissions_form", "form_id", "form_version"),
        Index("ix_intake_submissions_area", "admin_area_code"),
    )


class IntakeAttachment(Base):
    """A media part sent with a submission (a photo, a signature), sealed."""

    __tablename__ = "intake_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("intake_submissions.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    content_sealed: Mapped[bytes] = mapped_column(LargeBinary)
