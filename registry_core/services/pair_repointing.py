"""A merge's effect on the other open duplicate pairs of the merged-away person, and its undoing.

When M is merged into S, every other *open* duplicate review about M and some X would
otherwise stay in the queue naming a record that is no longer live (deciding it was a 409).
So, in the merge's transaction:

- the pair M/X becomes S/X (**re-pointed**): its candidates and its pair key
  (``duplicate_pair_key``, the review's ``message_id``) now name the survivor; its score is
  still the one the scan gave M/X, and its reason says so;
- unless S/X would be S with itself, or S/X already has a review of its own (open or decided):
  then M/X is closed as **superseded**, with a resolution naming the merge (and that review).

Each change is listed in the merge's journal (``journal["pairs"]``) with the values before, so
an unmerge puts it back: a re-pointed review still open and still about S/X names M again; a
review this merge superseded and nobody touched since is open again (M and X are two records
once more, and their pair was never decided). A re-pointed pair someone decided after the merge
(merged, kept apart) keeps its decision about S/X; the unmerge says so in its notes.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from registry_core.crypto import IdentifierCipher
from registry_core.models import MatchReview
from registry_core.resolution import (
    DUPLICATE_KIND,
    duplicate_pair_key,
    review_record,
    seal_review_record,
)
from standards.timeutil import utcnow

OPEN = "open"
SUPERSEDED = "superseded"
RESOLVER = "merge"


def _open_pairs_of(
    session: Session, person_id: uuid.UUID, exclude: uuid.UUID | None
) -> list[MatchReview]:
    """Open duplicate reviews naming ``person_id`` (a text match on the candidates, portable
    across SQLite and PostgreSQL, checked exactly afterwards), locked."""
    rows = session.scalars(
        select(MatchReview)
        .where(
            MatchReview.kind == DUPLICATE_KIND,
            MatchReview.status == OPEN,
            cast(MatchReview.candidates, String).like(f"%{person_id}%"),
        )
        .order_by(MatchReview.created_at, MatchReview.id)
        .with_for_update()
    ).all()
    return [
        r
        for r in rows
        if r.id != exclude and str(person_id) in {str(c[0]) for c in r.candidates[:2]}
    ]


def _reseal(cipher: IdentifierCipher, review: MatchReview, first: str, second: str) -> None:
    record = review_record(cipher, review)
    record["person_ids"] = [first, second]
    review.record_sealed = seal_review_record(cipher, record)


def _supersede(review: MatchReview, resolution: str) -> dict[str, Any]:
    review.status = SUPERSEDED
    review.resolved_at = utcnow()
    review.resolved_by = RESOLVER
    review.resolution = resolution
    return {"id": str(review.id), "action": SUPERSEDED}


def repoint_pairs(
    session: Session,
    cipher: IdentifierCipher,
    *,
    survivor: uuid.UUID,
    merged: uuid.UUID,
    merge_id: uuid.UUID,
    deciding_review: uuid.UUID | None,
) -> list[dict[str, Any]]:
    """Re-point or supersede the merged person's other open pairs; the journal entries."""
    entries: list[dict[str, Any]] = []
    for review in _open_pairs_of(session, merged, deciding_review):
        ids = [str(c[0]) for c in review.candidates[:2]]
        other = ids[1] if ids[0] == str(merged) else ids[0]
        if other == str(survivor):
            entries.append(
                _supersede(review, f"superseded: merge {merge_id} made the two one record")
            )
            continue
        key = duplicate_pair_key(survivor, other)
        known = session.scalar(select(MatchReview.id).where(MatchReview.message_id == key))
        if known is not None:
            entries.append(
                _supersede(
                    review,
                    f"superseded: after merge {merge_id} this pair is the survivor's pair "
                    f"already in review {known}",
                )
            )
            continue
        score = float(review.candidates[0][1])
        first, second = sorted([str(survivor), other])
        entries.append(
            {
                "id": str(review.id),
                "action": "repointed",
                "candidates_before": [list(c) for c in review.candidates],
                "message_id_before": review.message_id,
                "message_id_after": key,
                "reason_before": review.reason,
            }
        )
        review.candidates = [[first, score], [second, score]]
        review.message_id = key
        review.reason = (
            f"{review.reason}; re-pointed to the survivor {survivor} by merge {merge_id} "
            "(the score is the merged-away record's)"
        )
        _reseal(cipher, review, first, second)
    return entries


def restore_pairs(
    session: Session,
    cipher: IdentifierCipher,
    entries: list[dict[str, Any]],
    notes: list[str],
) -> None:
    """Undo ``repoint_pairs`` for an unmerge (see the module docstring); ``notes`` gets a
    line for each pair that could not be put back as it was."""
    for entry in reversed(entries):
        review = session.get(MatchReview, uuid.UUID(entry["id"]), with_for_update=True)
        if review is None:
            continue
        if entry["action"] == SUPERSEDED:
            if review.status == SUPERSEDED and review.resolved_by == RESOLVER:
                review.status = OPEN
                review.resolved_at = None
                review.resolved_by = None
                review.resolution = None
            continue
        if review.status != OPEN or review.message_id != entry["message_id_after"]:
            notes.append(
                f"duplicate pair {review.id} was re-pointed to the survivor and is now "
                f"{review.status}; it stays about the survivor"
            )
            continue
        taken = session.scalar(
            select(MatchReview.id).where(MatchReview.message_id == entry["message_id_before"])
        )
        if taken is not None:
            notes.append(f"duplicate pair {review.id} stays about the survivor: {taken} exists")
            continue
        review.candidates = entry["candidates_before"]
        review.message_id = entry["message_id_before"]
        review.reason = entry["reason_before"]
        first, second = (str(c[0]) for c in entry["candidates_before"][:2])
        _reseal(cipher, review, first, second)
