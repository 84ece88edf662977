"""Intake forms: the versions administrators upload (XLSForm converted by pyxform, with their
media), list and retire, and what devices download (``FormCatalog``).

``IntakeService`` (``hub.intake.service``) is a ``FormCatalog`` that also receives and applies
submissions; the split keeps each module to one job.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.roles import Principal
from hub.intake.contract import FormDocument, FormSummary, MediaFile
from hub.intake.errors import FormRefused, FormVersionExists, IntakeNotFound
from hub.intake.media import referenced_media
from hub.intake.tables import (
    FORM_ACTIVE,
    FORM_RETIRED,
    IntakeForm,
    IntakeFormMedia,
    IntakeSubmission,
)
from hub.intake.validation import unsupported_expressions
from hub.intake.xlsform import FormConversionError, convert_xlsform
from standards.timeutil import iso, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadResult:
    form: dict[str, Any]
    warnings: tuple[str, ...]


def _form_dict(form: IntakeForm, current: bool | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "form_id": form.form_id,
        "version": form.version,
        "title": form.title,
        "state": form.state,
        "md5": form.md5,
        "created_by": form.created_by,
        "created_at": iso(form.created_at),
        "retired_at": iso(form.retired_at) if form.retired_at else None,
    }
    if current is not None:
        found["current"] = current
    return found


def current_version(forms: Sequence[IntakeForm]) -> IntakeForm | None:
    """The newest active version (``forms`` newest first)."""
    return next((f for f in forms if f.state == FORM_ACTIVE), None)


class FormCatalog:
    """Form versions over the hub's database: upload, list, versions, retire; the form list,
    downloads and media of the ``IntakeBackend``."""

    sessions: sessionmaker[Session]

    # ------------------------------------------------------------------ forms

    def upload_form(
        self,
        content: bytes,
        filename: str,
        created_by: str,
        media: Sequence[MediaFile] = (),
    ) -> UploadResult:
        """Convert and store a new form version; it becomes the form's current version.
        ``FormRefused`` (with pyxform's reason) or ``FormVersionExists``."""
        try:
            converted = convert_xlsform(content, filename)
        except FormConversionError as exc:
            raise FormRefused(exc.reason) from None
        warnings = list(converted.warnings)
        warnings.extend(
            f"the server cannot re-check this rule (it is not refused for it): {e}"
            for e in unsupported_expressions(converted.model)
        )
        given = {m.name for m in media}
        warnings.extend(
            f"the form refers to the media file {name!r}, which was not uploaded with it: "
            "devices will not find it (send it as a 'media' part)"
            for name in referenced_media(converted.xform)
            if name not in given
        )
        with self.sessions.begin() as session:
            exists = session.scalar(
                select(IntakeForm.id).where(
                    IntakeForm.form_id == converted.form_id,
                    IntakeForm.version == converted.version,
                )
            )
            if exists is not None:
                raise FormVersionExists(
                    f"form {converted.form_id} already has version {converted.version}; a version "
                    "is uploaded once: raise the version in the settings sheet"
                )
            form = IntakeForm(
                form_id=converted.form_id,
                version=converted.version,
                title=converted.title,
                xlsform=content,
                xlsform_name=filename[:200],
                xform=converted.xform,
                md5=converted.md5,
                state=FORM_ACTIVE,
                created_by=created_by[:200],
                created_at=utcnow(),
            )
            session.add(form)
            session.flush()
            for item in media:
                session.add(
                    IntakeFormMedia(
                        form_pk=form.id,
                        name=item.name[:200],
                        content_type=item.content_type[:100],
                        content=item.content,
                        md5=hashlib.md5(item.content, usedforsecurity=False).hexdigest(),
                    )
                )
            try:
                session.flush()
            except IntegrityError:
                raise FormVersionExists(
                    f"form {converted.form_id} version {converted.version} was just uploaded"
                ) from None
            log.info("intake: form %s version %s uploaded", form.form_id, form.version)
            return UploadResult(_form_dict(form, True), tuple(warnings))

    def _versions(self, session: Session, form_id: str) -> list[IntakeForm]:
        return list(
            session.scalars(
                select(IntakeForm)
                .where(IntakeForm.form_id == form_id)
                .order_by(IntakeForm.created_at.desc(), IntakeForm.version.desc())
            )
        )

    def list_forms(self) -> list[dict[str, Any]]:
        """Every form with its current version (or its newest, when all are retired)."""
        with self.sessions() as session:
            forms = list(
                session.scalars(
                    select(IntakeForm).order_by(
                        IntakeForm.form_id, IntakeForm.created_at.desc(), IntakeForm.version.desc()
                    )
                )
            )
            counts = dict(
                session.execute(
                    select(IntakeSubmission.form_id, func.count()).group_by(
                        IntakeSubmission.form_id
                    )
                ).all()
            )
        by_id: dict[str, list[IntakeForm]] = {}
        for form in forms:
            by_id.setdefault(form.form_id, []).append(form)
        found = []
        for form_id, versions in by_id.items():
            current = current_version(versions)
            shown = _form_dict(current or versions[0], current is not None)
            shown["versions"] = len(versions)
            shown["submissions"] = int(counts.get(form_id, 0))
            found.append(shown)
        return found

    def form_versions(self, form_id: str) -> list[dict[str, Any]]:
        with self.sessions() as session:
            versions = self._versions(session, form_id)
            if not versions:
                raise IntakeNotFound(f"no form {form_id!r}")
            current = current_version(versions)
            return [_form_dict(f, f is current) for f in versions]

    def xlsform_of(self, form_id: str, version: str) -> tuple[str, bytes]:
        with self.sessions() as session:
            form = self._version(session, form_id, version)
            return form.xlsform_name or f"{form_id}.xlsx", form.xlsform

    def _version(self, session: Session, form_id: str, version: str) -> IntakeForm:
        form = session.scalar(
            select(IntakeForm).where(IntakeForm.form_id == form_id, IntakeForm.version == version)
        )
        if form is None:
            raise IntakeNotFound(f"form {form_id!r} has no version {version!r}")
        return form

    def retire_version(self, form_id: str, version: str, retired_by: str) -> dict[str, Any]:
        """Retire one version: devices no longer get it and its submissions are refused (410)
        from now on; the newest other active version becomes current."""
        with self.sessions.begin() as session:
            form = self._version(session, form_id, version)
            if form.state != FORM_RETIRED:
                form.state = FORM_RETIRED
                form.retired_at = utcnow()
                form.retired_by = retired_by[:200]
            session.flush()
            current = current_version(self._versions(session, form_id))
            shown = _form_dict(form, False)
            shown["current_version"] = current.version if current else None
            return shown

    def has_forms(self) -> bool:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(IntakeForm)) != 0

    # ------------------------------------------------------------------ IntakeBackend

    def forms_for(self, principal: Principal) -> Sequence[FormSummary]:
        with self.sessions() as session:
            forms = list(
                session.scalars(
                    select(IntakeForm)
                    .where(IntakeForm.state == FORM_ACTIVE)
                    .order_by(
                        IntakeForm.form_id, IntakeForm.created_at.desc(), IntakeForm.version.desc()
                    )
                )
            )
            seen: set[str] = set()
            found = []
            for form in forms:
                if form.form_id in seen:
                    continue
                seen.add(form.form_id)
                found.append(self._summary(session, form))
            return found

    def _summary(self, session: Session, form: IntakeForm) -> FormSummary:
        media = session.scalars(
            select(IntakeFormMedia.name)
            .where(IntakeFormMedia.form_pk == form.id)
            .order_by(IntakeFormMedia.name)
        )
        return FormSummary(form.form_id, form.version, form.title, form.md5, tuple(media))

    def _current_form(self, session: Session, form_id: str) -> IntakeForm | None:
        return current_version(self._versions(session, form_id))

    def form_document(self, form_id: str, principal: Principal) -> FormDocument | None:
        with self.sessions() as session:
            form = self._current_form(session, form_id)
            if form is None:
                return None
            return FormDocument(self._summary(session, form), form.xform)

    def form_media(self, form_id: str, name: str, principal: Principal) -> MediaFile | None:
        with self.sessions() as session:
            form = self._current_form(session, form_id)
            if form is None:
                return None
            item = session.scalar(
                select(IntakeFormMedia).where(
                    IntakeFormMedia.form_pk == form.id, IntakeFormMedia.name == name
                )
            )
            return MediaFile(item.name, item.content_type, item.content) if item else None
