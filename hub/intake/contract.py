"""What the OpenRosa protocol layer and the review queue need from the intake core.

Field collection is three parts that meet here: the intake core (``hub.intake``: forms,
submissions, mapping onto the registry), the OpenRosa server (``hub.openrosa``: the HTTP
protocol ODK Collect, KoboCollect and Enketo speak, and device authentication) and the review
queue (``hub.review``: supervisors verify, return or reject what field teams submitted). The
protocol layer knows no table and no mapping; the core knows no HTTP. Both sides are written
against these types, so each can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy.orm import Session

from hub.auth.roles import Principal

# Where ``create_app`` puts the app's IntakeBackend (``app.extensions[INTAKE_EXTENSION_KEY]``);
# the OpenRosa blueprint reads it from there, so tests can give it another backend.
INTAKE_EXTENSION_KEY = "srhub_intake"

# How a received submission was taken: ``created`` (new, stored durably: OpenRosa 201),
# ``duplicate`` (same instanceID and same body as one already received: answered as received,
# nothing is applied twice), ``conflicting_duplicate`` (same instanceID, different body: 409,
# as ODK Central does; the first one stands).
ReceiveStatus = Literal["created", "duplicate", "conflicting_duplicate"]


@dataclass(frozen=True)
class FormSummary:
    """One downloadable form as the OpenRosa form list shows it (current active version)."""

    form_id: str
    version: str
    title: str
    md5_hash: str  # hex MD5 of the XForm document's bytes; the form list prints "md5:<hex>"
    media_files: tuple[str, ...] = ()  # file names the manifest lists


@dataclass(frozen=True)
class FormDocument:
    """An XForm document to download, with its media for the manifest."""

    summary: FormSummary
    xform: bytes


@dataclass(frozen=True)
class MediaFile:
    """A form's media file (manifest entry) or a submission's attachment."""

    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class ReceiveOutcome:
    """The answer to one submission: what to tell the device."""

    status: ReceiveStatus
    instance_id: str
    message: str  # shown to the field worker in the app (OpenRosaResponse <message>)


class SubmissionRejected(Exception):
    """A submission that will never be accepted as sent; ``reason`` says what to fix.

    ``status`` is the HTTP status the protocol layer answers: 400 (not an XForm instance, no
    instanceID, fails the form's validation), 403 (outside the submitter's areas), 404 (unknown
    form), 410 (the form version is retired and accepts no more submissions), 413 (too large).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class IntakeBackend(Protocol):
    """The intake core as the OpenRosa blueprint sees it (``hub.intake.service`` implements)."""

    def forms_for(self, principal: Principal) -> Sequence[FormSummary]:
        """The active forms this caller may fill (all active forms for field roles)."""
        ...

    def form_document(self, form_id: str, principal: Principal) -> FormDocument | None:
        """The current active version of ``form_id``, or None when unknown or retired."""
        ...

    def form_media(self, form_id: str, name: str, principal: Principal) -> MediaFile | None:
        """One media file of the current version of ``form_id`` (manifest download)."""
        ...

    def receive_submission(
        self,
        xml: bytes,
        attachments: Sequence[MediaFile],
        principal: Principal,
        *,
        device_id: str | None = None,
    ) -> ReceiveOutcome:
        """Store one submission durably and queue it for the registry; idempotent on the
        instance's ``meta/instanceID``. Raises ``SubmissionRejected`` with a reason."""
        ...


# --- review queue (hub.review) -----------------------------------------------------------

ReviewState = Literal["submitted", "verified", "returned", "rejected"]


@dataclass(frozen=True)
class ReviewRequest:
    """What the intake core hands the review queue when a field submission was applied (or
    became a conflict): enough to list it by area and open it."""

    instance_id: str
    form_id: str
    form_version: str
    submitted_by: str
    admin_area_code: str | None
    household_id: str | None
    summary: str  # one line a supervisor reads in the queue (no identifiers)
    conflict: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The visit the submission records: when the form was filled (its ``end``/``start``
    # metadata, else when it was received) and where (the form's location question).
    visited_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None


class ReviewSink(Protocol):
    """Where the intake core reports applied field submissions (``hub.review`` implements it:
    it opens one review item per instance, idempotently). Called inside the transaction that
    applied the submission, with its session, so the review item and the change commit
    together."""

    def submitted(self, session: Session, request: ReviewRequest) -> None: ...
