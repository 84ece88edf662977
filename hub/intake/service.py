"""The intake core: forms administrators upload, submissions field teams send.

``IntakeService`` implements the ``IntakeBackend`` the OpenRosa server calls and the
operations the API and the dashboard offer. Its form half (upload, versions, retirement, form
list, downloads, media) is ``FormCatalog`` in ``hub.intake.forms``; this module receives,
queues and lists submissions and resolves conflicts. It knows no HTTP: errors are
``SubmissionRejected`` (the device's answer) or ``hub.intake.errors``.

Receiving is durable first: the instance is checked (form, version, rules, area), stored
sealed, committed, and only then published for the ingest worker; if publishing fails, the
row waits as ``received`` for the re-queue job (``hub.intake.queueing``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.roles import Principal
from hub.intake.apply import SubmissionApplier, open_json
from hub.intake.contract import (
    MediaFile,
    ReceiveOutcome,
    SubmissionRejected,
)
from hub.intake.errors import IntakeNotFound, NotAConflict
from hub.intake.forms import FormCatalog, current_version
from hub.intake.instance import flatten, parse_instance
from hub.intake.queueing import CONNECTOR, MessagePublisher, submission_message
from hub.intake.tables import (
    FORM_RETIRED,
    SEAL_ATTACHMENT,
    SEAL_XML,
    SUBMISSION_STATUSES,
    IntakeAttachment,
    IntakeForm,
    IntakeSubmission,
)
from hub.intake.validation import validate_instance
from hub.intake.xform import cached_model
from registry_core.areas import within_areas
from registry_core.errors import NotFound
from registry_core.service import Registry
from standards.timeutil import iso, utcnow

log = logging.getLogger(__name__)

MAX_SHOWN_VIOLATIONS = 5
RESOLUTIONS = ("keep_registry", "apply_submission")

# Told of each conflict resolution: (actor, action, target, outcome); e.g. the dashboard's
# audit trail. Must not raise.
AuditHook = Callable[[str, str, str, str], None]


class IntakeService(FormCatalog):
    """The intake core over the hub's database (see the module doc).

    ``sessions``: the hub's session factory; ``registry``: the registry services (conflict
    resolution applies through them); ``publisher``: where stored submissions are queued
    (``BrokerRawPublisher``; None queues nothing and leaves it to the re-queue job);
    ``applier``: how a submission is applied (holds the cipher and the review sink);
    ``max_submission_bytes``: ``settings.intake.max_submission_bytes``.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: Registry,
        applier: SubmissionApplier,
        *,
        publisher: MessagePublisher | None = None,
        max_submission_bytes: int = 10 * 1024 * 1024,
        audit: AuditHook | None = None,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.applier = applier
        self.cipher = applier.cipher
        self.publisher = publisher
        self.max_submission_bytes = max_submission_bytes
        self.audit = audit

    def receive_submission(
        self,
        xml: bytes,
        attachments: Sequence[MediaFile],
        principal: Principal,
        *,
        device_id: str | None = None,
    ) -> ReceiveOutcome:
        total = len(xml) + sum(len(a.content) for a in attachments)
        if total > self.max_submission_bytes:
            raise SubmissionRejected(
                f"the submission is larger than the {self.max_submission_bytes} bytes this "
                "server takes",
                413,
            )
        parsed = parse_instance(xml, self.max_submission_bytes)
        digest = hashlib.sha256(xml).hexdigest()
        with self.sessions() as session:
            known = self._known(session, parsed.instance_id, digest)
            if known is not None:
                return self._resent(session, known, attachments, principal)
            form = self._form_for(session, parsed.form_id, parsed.version)
            model = cached_model(form.md5, form.xform)
            violations = validate_instance(model, parsed.root)
            if violations:
                shown = "; ".join(str(v) for v in violations[:MAX_SHOWN_VIOLATIONS])
                more = len(violations) - MAX_SHOWN_VIOLATIONS
                extra = f" (and {more} more)" if more > 0 else ""
                raise SubmissionRejected(f"the answers break the form's rules: {shown}{extra}")
            answers = flatten(model, parsed.root).household["answers"]
            area = answers.get("admin_area_code")
            area = str(area).strip().upper() if area is not None else None
            self._check_area(session, principal, area, answers.get("household_id"))
            row = IntakeSubmission(
                instance_id=parsed.instance_id,
                form_id=form.form_id,
                form_version=form.version,
                form_pk=form.id,
                submitted_by=principal.subject[:200],
                device_id=(device_id or None) and device_id[:200],
                admin_area_code=area[:64] if area else None,
                received_at=utcnow(),
                body_sha256=digest,
                xml_sealed=self.cipher.seal(SEAL_XML, xml),
                status="received",
                # Queued right after the commit below; stamped now so that queueing needs no
                # second transaction (a publish that fails clears it again).
                queued_at=utcnow() if self.publisher is not None else None,
            )
            session.add(row)
            try:
                session.flush()
                kept: set[str] = set()
                for item in attachments:  # one file per name, as the resent parts count them
                    if item.name[:200] not in kept:
                        kept.add(item.name[:200])
                        session.add(self._attachment(row, item))
                session.commit()
            except IntegrityError:  # the same instanceID stored by a concurrent request
                session.rollback()
                known = self._known(session, parsed.instance_id, digest)
                if known is not None:
                    return self._resent(session, known, attachments, principal)
                raise
        self._queue(parsed.instance_id)
        return ReceiveOutcome(
            "created", parsed.instance_id, "Received: the household will be registered shortly."
        )

    def _known(self, session: Session, instance_id: str, digest: str) -> ReceiveOutcome | None:
        stored = session.scalar(
            select(IntakeSubmission.body_sha256).where(IntakeSubmission.instance_id == instance_id)
        )
        if stored is None:
            return None
        if stored == digest:
            return ReceiveOutcome("duplicate", instance_id, "Already received.")
        return ReceiveOutcome(
            "conflicting_duplicate",
            instance_id,
            "A different submission with this instanceID was received before; it stands.",
        )

    def _resent(
        self,
        session: Session,
        known: ReceiveOutcome,
        attachments: Sequence[MediaFile],
        principal: Principal,
    ) -> ReceiveOutcome:
        """The answer to an instance received before. A ``duplicate`` (the same XML) may bring
        media the first POST did not: ODK Collect splits a large submission into several POSTs
        of the same XML, each with more attachments (all but the last marked
        ``*isIncomplete*``; OpenRosa Form Submission API). Those are kept with the stored
        submission, once per file name; a file already kept is not replaced (a resent part
        carries the same files). Nothing is applied again: the XML is the same."""
        if known.status != "duplicate" or not attachments:
            return known
        row = session.scalar(
            select(IntakeSubmission)
            .where(IntakeSubmission.instance_id == known.instance_id)
            .with_for_update()  # concurrent parts of one submission add their files in turn
        )
        if row is None:  # pragma: no cover - found a moment ago; rows are never deleted
            return known
        if not principal.may_touch_area(row.admin_area_code):
            where = f"area {row.admin_area_code}" if row.admin_area_code else "no area"
            raise SubmissionRejected(
                f"this submission is for {where}, outside the areas you cover: "
                "its media files are not taken from you",
                403,
            )
        kept = set(
            session.scalars(
                select(IntakeAttachment.name).where(IntakeAttachment.submission_pk == row.id)
            )
        )
        added = 0
        for item in attachments:
            name = item.name[:200]
            if name in kept:
                continue
            kept.add(name)
            session.add(self._attachment(row, item))
            added += 1
        session.commit()
        if not added:
            return known
        log.info("intake: %d more media file(s) kept for a submission received before", added)
        return ReceiveOutcome(
            "duplicate",
            known.instance_id,
            f"Already received; {added} more media file(s) kept with it.",
        )

    def _attachment(self, row: IntakeSubmission, item: MediaFile) -> IntakeAttachment:
        return IntakeAttachment(
            submission_pk=row.id,
            name=item.name[:200],
            content_type=item.content_type[:100],
            size=len(item.content),
            content_sealed=self.cipher.seal(SEAL_ATTACHMENT, item.content),
        )

    def _form_for(self, session: Session, form_id: str, version: str) -> IntakeForm:
        versions = self._versions(session, form_id)
        if not versions:
            raise SubmissionRejected(f"no form {form_id!r} on this server", 404)
        current = current_version(versions)
        form = next((f for f in versions if f.version == version), None)
        if form is None:
            now = f"; the current version is {current.version}" if current else ""
            raise SubmissionRejected(
                f"form {form_id!r} has no version {version or '(none)'!r}{now}", 404
            )
        if form.state == FORM_RETIRED:
            now = (
                f"; download the current version {current.version} and fill it again"
                if current
                else "; the form takes no submissions any more"
            )
            raise SubmissionRejected(f"form {form_id!r} version {version} is retired{now}", 410)
        return form

    def _check_area(
        self, session: Session, principal: Principal, area: str | None, household_id: Any
    ) -> None:
        if not principal.may_touch_area(area):
            where = f"area {area}" if area else "a household without an area"
            covered = ", ".join(principal.admin_areas) or "none"
            raise SubmissionRejected(f"{where} is outside the areas you cover ({covered})", 403)
        if not household_id or not principal.area_scoped:
            return
        try:
            current = self.registry.within(session).get_household(str(household_id).strip())
        except (NotFound, ValueError):
            return  # an unknown household is refused when applied, with the reason
        if not principal.may_touch_area(current.get("admin_area_code")):
            raise SubmissionRejected(
                "the household to update is registered outside the areas you cover", 403
            )

    def _queue(self, instance_id: str) -> None:
        """Publish a stored submission for the ingest worker: no database work (its
        ``queued_at`` was stamped with the row), so a sync burst costs one transaction per
        submission, and no transaction is open while publishing (the embedded broker writes to
        the database itself)."""
        if self.publisher is None:
            return
        try:
            self.publisher.publish_messages(CONNECTOR, [submission_message(instance_id)])
        except Exception as exc:  # stored: the re-queue job publishes it later
            log.warning(
                "intake: submission stored but not queued (%s); it is queued again later",
                type(exc).__name__,
            )
            # Shown as never queued; the re-queue job takes it either way once its grace
            # period has passed, so a database that fails here too changes nothing.
            with contextlib.suppress(SQLAlchemyError), self.sessions.begin() as session:
                session.execute(
                    update(IntakeSubmission)
                    .where(IntakeSubmission.instance_id == instance_id)
                    .values(queued_at=None)
                )

    # ------------------------------------------------------------------ submissions

    def list_submissions(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        form_id: str | None = None,
        submitted_by: str | None = None,
        area: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Submissions newest first; an area-scoped caller sees only its areas."""
        if status is not None and status not in SUBMISSION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(SUBMISSION_STATUSES)}")
        query = select(IntakeSubmission)
        if status:
            query = query.where(IntakeSubmission.status == status)
        if form_id:
            query = query.where(IntakeSubmission.form_id == form_id)
        if submitted_by:
            query = query.where(IntakeSubmission.submitted_by == submitted_by)
        if area:
            query = query.where(within_areas(IntakeSubmission.admin_area_code, [area]))
        if principal.area_scoped:
            areas = [a for a in principal.admin_areas if a]
            if not areas:
                return []
            query = query.where(within_areas(IntakeSubmission.admin_area_code, areas))
        query = query.order_by(IntakeSubmission.received_at.desc()).limit(limit).offset(offset)
        with self.sessions() as session:
            return [_submission_dict(row) for row in session.scalars(query)]

    def get_submission(self, instance_id: str, principal: Principal) -> dict[str, Any]:
        """One submission with its mapped result, its problems or both sides of its conflict."""
        with self.sessions() as session:
            row = self._row(session, instance_id, principal)
            found = _submission_dict(row)
            found["result"] = open_json(self.cipher, row.result_sealed)
            found["attachments"] = [
                {"name": a.name, "content_type": a.content_type, "size": a.size}
                for a in session.scalars(
                    select(IntakeAttachment).where(IntakeAttachment.submission_pk == row.id)
                )
            ]
            return found

    def _row(self, session: Session, instance_id: str, principal: Principal) -> IntakeSubmission:
        row = session.scalar(
            select(IntakeSubmission).where(IntakeSubmission.instance_id == instance_id)
        )
        if row is None or (
            principal.area_scoped and not principal.may_touch_area(row.admin_area_code)
        ):
            raise IntakeNotFound(f"no submission {instance_id!r}")
        return row

    def resolve_conflict(
        self,
        instance_id: str,
        action: str,
        principal: Principal,
        *,
        registry_version: int | None = None,
    ) -> dict[str, Any]:
        """Decide a conflict: ``keep_registry`` (the submission is set aside) or
        ``apply_submission`` (applied over the registry's current version; ``registry_version``,
        when given, is the version the reviewer saw, and a household changed again since is a
        conflict again rather than an overwrite)."""
        if action not in RESOLUTIONS:
            raise ValueError(f"action must be one of {', '.join(RESOLUTIONS)}")
        with self.sessions.begin() as session:
            row = self._row(session, instance_id, principal)
            if row.status != "conflict":
                raise NotAConflict(f"submission {instance_id!r} is {row.status}, not a conflict")
            seen = (open_json(self.cipher, row.result_sealed) or {}).get("current_version")
            if action == "keep_registry":
                row.status = "resolved"
                row.reason = f"conflict resolved: registry kept by {principal.subject}"[:4000]
            else:
                version = registry_version if registry_version is not None else seen
                self.applier.apply(session, row, self.registry, against_version=version)
            if row.status == "conflict":  # changed again since the reviewer looked
                session.flush()
                found = _submission_dict(row)
                return found
            row.resolution = action
            row.resolved_by = principal.subject[:200]
            row.resolved_at = utcnow()
            session.flush()
            found = _submission_dict(row)
        outcome = found["status"]
        log.info("intake: conflict %s resolved (%s): %s", row.id, action, outcome)
        if self.audit is not None:
            self.audit(principal.subject, f"intake.{action}", instance_id, outcome)
        return found


def _submission_dict(row: IntakeSubmission) -> dict[str, Any]:
    return {
        "instance_id": row.instance_id,
        "form_id": row.form_id,
        "form_version": row.form_version,
        "submitted_by": row.submitted_by,
        "device_id": row.device_id,
        "admin_area_code": row.admin_area_code,
        "received_at": iso(row.received_at),
        "status": row.status,
        "reason": row.reason,
        "household_id": str(row.household_id) if row.household_id else None,
        "base_version": row.base_version,
        "processed_at": iso(row.processed_at) if row.processed_at else None,
        "resolution": row.resolution,
        "resolved_by": row.resolved_by,
        "resolved_at": iso(row.resolved_at) if row.resolved_at else None,
    }


def new_instance_id() -> str:
    return f"uuid:{uuid.uuid4()}"
