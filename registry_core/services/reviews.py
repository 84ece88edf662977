"""Reviews: who an incoming record is about, and the queue of records a person must decide.

``resolve`` answers from identifiers first, then the matcher (``registry_core.resolution``).
What it cannot decide — identifiers pointing at different people, a score in the grey zone —
is queued here for a person; the queued record is sealed at rest (it may hold identifiers) and
opened only when listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry_core.models import MatchReview
from registry_core.resolution import (
    Resolution,
    open_review,
    resolve_person,
    review_record,
    seal_review_record,
)
from registry_core.services.base import Source, Workspace
from standards.timeutil import rfc3339


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
        self, status: str = "open", limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of reviews (with the sealed record opened) and the total."""
        cipher = self._ws.cipher

        def work(session: Session) -> tuple[list[dict[str, Any]], int]:
            query = select(MatchReview).where(MatchReview.status == status)
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(MatchReview.created_at, MatchReview.id).limit(limit).offset(offset)
            ).all()
            return [
                {
                    "id": str(r.id),
                    "kind": r.kind,
                    "reason": r.reason,
                    "candidates": [{"person_id": c, "score": sc} for c, sc in r.candidates],
                    "record": review_record(cipher, r),
                    "source": {"system": r.source_system, "record_id": r.source_record_id},
                    "status": r.status,
                    "created_at": rfc3339(r.created_at),
                }
                for r in rows
            ], total

        return self._ws.read(work)
