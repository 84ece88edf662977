"""Reviews: who an incoming record is about, and the queue of records a person must decide.

``resolve`` answers from identifiers first, then the matcher (``registry_core.resolution``).
What it cannot decide — identifiers pointing at different people, a score in the grey zone —
is queued here for a person; the queued record is sealed at rest (it may hold identifiers) and
opened only when listed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry_core.crypto import IdentifierCipher
from registry_core.errors import NotFound
from registry_core.models import MatchReview, Person
from registry_core.records import person_record
from registry_core.resolution import (
    Resolution,
    open_review,
    resolve_person,
    review_record,
    seal_review_record,
)
from registry_core.services.base import Source, Workspace, current_household, current_membership
from registry_core.services.provenance import assertions_of
from standards.timeutil import rfc3339


def review_item(cipher: IdentifierCipher, r: MatchReview) -> dict[str, Any]:
    """A review as the queue lists it, with its sealed record opened."""
    return {
        "id": str(r.id),
        "kind": r.kind,
        "reason": r.reason,
        "candidates": [{"person_id": c, "score": sc} for c, sc in r.candidates],
        "record": review_record(cipher, r),
        "source": {"system": r.source_system, "record_id": r.source_record_id},
        "status": r.status,
        "created_at": rfc3339(r.created_at),
        "resolved_at": rfc3339(r.resolved_at) if r.resolved_at else None,
        "resolved_by": r.resolved_by,
        "resolution": r.resolution,
    }


class Reviews:
    """Resolution of references and the review queue."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def resolve(
        self, reference: Mapping[str, Any], household_hint: Mapping[str, Any] | None = None
    ) -> Resolution:
        """Who ``reference`` (identifiers and/or names and birth date) is in the registry."""
        ws = self._ws
        return ws.read(
            lambda s: resolve_person(s, ws.cipher, ws.matcher, reference, household_hint)
        )

    def queue_review(
        self,
        *,
        kind: str,
        reason: str,
        record: Mapping[str, Any],
        candidates: Sequence[tuple[str, float]],
        source: Source,
        message_id: str | None = None,
    ) -> str:
        """Put a record in front of a person; returns the review id (idempotent per message)."""
        with self._ws.transaction() as session:
            review = open_review(
                session,
                self._ws.cipher,
                kind=kind,
                reason=reason,
                record=record,
                candidates=candidates,
                source_system=source.system,
                source_record_id=source.record_id,
                message_id=message_id,
            )
            session.flush()
            return str(review.id)

    def add_review_notes(self, message_id: str, notes: Sequence[Mapping[str, Any]]) -> bool:
        """Add data-quality notes to the (sealed) record of the review opened for
        ``message_id``; False when there is none."""
        cipher = self._ws.cipher
        with self._ws.transaction() as session:
            review = session.scalar(select(MatchReview).where(MatchReview.message_id == message_id))
            if review is None:
                return False
            record = review_record(cipher, review)
            kept = record.setdefault("data_quality_notes", [])
            kept.extend(n for n in notes if n not in kept)
            review.record_sealed = seal_review_record(cipher, record)
            return True

    def list_reviews(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        kind: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of reviews (with the sealed record opened) and the total; ``status`` and
        ``kind`` None: every one."""
        cipher = self._ws.cipher

        def work(session: Session) -> tuple[list[dict[str, Any]], int]:
            query = select(MatchReview)
            if status is not None:
                query = query.where(MatchReview.status == status)
            if kind is not None:
                query = query.where(MatchReview.kind == kind)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(MatchReview.created_at, MatchReview.id).limit(limit).offset(offset)
            ).all()
            return [review_item(cipher, r) for r in rows], total

        return self._ws.read(work)

    def review_detail(self, review_id: uuid.UUID | str) -> dict[str, Any]:
        """One review with each candidate person side by side: their record, the provenance
        of every field (who asserted what, when, which value is current) and their current
        household. A candidate merged away since is shown with ``merged_into``."""
        ws = self._ws

        def work(session: Session) -> dict[str, Any]:
            key = uuid.UUID(str(review_id))
            review = session.get(MatchReview, key)
            if review is None:
                raise NotFound("match review", key)
            detail = review_item(ws.cipher, review)
            detail["people"] = [
                _side(session, ws, uuid.UUID(str(c[0])), c[1]) for c in review.candidates
            ]
            return detail

        return ws.read(work)


def _side(session: Session, ws: Workspace, person_id: uuid.UUID, score: float) -> dict[str, Any]:
    person = session.get(Person, person_id)
    if person is None:
        return {"person_id": str(person_id), "score": score, "missing": True}
    membership = current_membership(session, person.id)
    household = current_household(session, person.id)
    return {
        "person_id": str(person.id),
        "score": score,
        "merged_into": str(person.merged_into_id) if person.merged_into_id else None,
        "person": person_record(session, person, ws.cipher),
        "created_at": rfc3339(person.created_at),
        "provenance": assertions_of(session, ws.precedence, "person", person.id),
        "household": None
        if household is None or membership is None
        else {
            "id": str(household.id),
            "registry_number": household.registry_number,
            "admin_area_code": household.admin_area_code,
            "address": household.address,
            "relationship": membership.relationship_to_head,
            "status": household.status,
        },
    }
