"""The review queue: items opened by field submissions, decisions by supervisors, and visit
records. Every function works in the caller's session (the intake core's transaction for
``submitted``, the API's or the dashboard's for the rest), so a decision and its history row
commit together.

Area scoping is the caller's: views check ``Principal.may_touch_area`` on the item's area
before deciding, and pass ``area_prefixes`` when listing, so one rule (``hub.auth.roles``)
decides for the API and the dashboard alike.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from hub.intake.contract import ReviewRequest
from hub.review import states
from hub.review.tables import (
    VISIT_OUTCOMES,
    HouseholdVisit,
    ReviewDecision,
    ReviewItem,
    ReviewSubmission,
)
from registry_core.areas import within_areas
from standards.timeutil import iso, utcnow

log = logging.getLogger(__name__)

OPEN_STATES = ("submitted", "returned")
MAX_REASONS = 10
MAX_REASON_LENGTH = 500


class ItemNotFound(LookupError):
    """No review item with this id."""


class VersionMismatch(Exception):
    """The item changed since the caller read it (someone else decided first)."""

    def __init__(self, current: int) -> None:
        super().__init__(
            f"the item changed since you read it (now version {current}); read it again"
        )
        self.current = current


@dataclass(frozen=True)
class Actor:
    """Who acts: the principal's subject, the role they act in, and the channel."""

    name: str
    role: str
    via: str = "api"  # api | dashboard | submission


def _uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


class ReviewQueue:
    """Implements ``hub.intake.contract.ReviewSink``; holds no state of its own."""

    # --- the intake core's side ---------------------------------------------------------------

    def submitted(self, session: Session, request: ReviewRequest) -> None:
        """Open (or bring back) the review item of one applied field submission.

        Idempotent on the instanceID. A new submission for a household whose item is
        ``returned`` brings that item back to ``submitted``; one whose item is still
        ``submitted`` joins it (the supervisor reads the latest); after a final decision a new
        item is opened, so decisions are never rewritten.
        """
        if session.get(ReviewSubmission, request.instance_id) is not None:
            return
        household_id = _uuid(request.household_id)
        item: ReviewItem | None = None
        if household_id is not None:
            item = session.scalars(
                select(ReviewItem)
                .where(ReviewItem.household_id == household_id)
                .where(ReviewItem.state.in_(OPEN_STATES))
                .order_by(ReviewItem.submitted_at.desc())
                .limit(1)
            ).first()
        now = utcnow()
        step: tuple[str | None] | None = None  # the history step to record, if any
        if item is None:
            item = ReviewItem(id=uuid.uuid4(), state="submitted", version=1, submitted_at=now)
            session.add(item)
            step = (None,)
        elif item.state == "returned":
            states.check("returned", "submitted", "resubmission")
            step = ("returned",)
            item.state = "submitted"
            item.version += 1
        item.instance_id = request.instance_id
        item.household_id = household_id
        item.form_id = request.form_id[:200]
        item.form_version = request.form_version[:100]
        item.submitted_by = request.submitted_by[:200]
        item.admin_area_code = request.admin_area_code
        item.summary = request.summary[:500]
        item.conflict = request.conflict
        item.notes = [n[:500] for n in request.notes][:50]
        item.submitted_at = now
        item.updated_at = now
        session.flush()  # the item row first: history and submission rows refer to it
        if step is not None:
            self._history(session, item, step[0], "submitted", (), request, now)
        session.add(
            ReviewSubmission(
                instance_id=request.instance_id,
                item_id=item.id,
                submitted_by=request.submitted_by[:200],
                form_version=request.form_version[:100],
                conflict=request.conflict,
                received_at=now,
            )
        )
        session.flush()
        if household_id is not None and not request.conflict:
            # The form was filled at the door: that is a completed visit, kept once per instance.
            self.record_visit(
                session,
                household_id,
                request.admin_area_code,
                visited_by=request.submitted_by,
                visited_at=request.visited_at or now,
                outcome="completed",
                recorded_by=f"form:{request.form_id}",
                lat=request.latitude,
                lon=request.longitude,
                accuracy_m=request.accuracy_m,
                instance_id=request.instance_id,
            )

    @staticmethod
    def _history(
        session: Session,
        item: ReviewItem,
        source: str | None,
        target: str,
        reasons: Sequence[str],
        request: ReviewRequest,
        at: datetime,
    ) -> None:
        session.add(
            ReviewDecision(
                item_id=item.id,
                actor=request.submitted_by[:200],
                actor_role="field_worker",
                via="submission",
                from_state=source,
                to_state=target,
                reasons=list(reasons),
                instance_id=request.instance_id,
                at=at,
            )
        )

    # --- the supervisor's side ----------------------------------------------------------------

    @staticmethod
    def load(session: Session, item_id: uuid.UUID | str, *, lock: bool = False) -> ReviewItem:
        query = select(ReviewItem).where(ReviewItem.id == _uuid(item_id))
        if lock:
            query = query.with_for_update()
        item = session.scalars(query).first()
        if item is None:
            raise ItemNotFound(f"no review item {item_id}")
        return item

    def decide(
        self,
        session: Session,
        item_id: uuid.UUID | str,
        decision: str,
        reasons: Sequence[str],
        actor: Actor,
        *,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Verify, return or reject one item (``states.TRANSITIONS`` decides what is allowed;
        reasons are required to return or reject). The history row is the audit record."""
        cleaned = clean_reasons(reasons)
        item = self.load(session, item_id, lock=True)
        if expected_version is not None and expected_version != item.version:
            raise VersionMismatch(item.version)
        states.check(item.state, decision, "decision", cleaned)
        now = utcnow()
        session.add(
            ReviewDecision(
                item_id=item.id,
                actor=actor.name[:200],
                actor_role=actor.role[:32],
                via=actor.via[:16],
                from_state=item.state,
                to_state=decision,
                reasons=list(cleaned),
                instance_id=item.instance_id,
                at=now,
            )
        )
        log.info(
            "review: item %s %s -> %s by %s (%s)",
            item.id,
            item.state,
            decision,
            actor.role,
            actor.via,
        )
        item.state = decision
        item.reasons = list(cleaned)
        item.decided_by = actor.name[:200]
        item.decided_at = now
        item.updated_at = now
        item.version += 1
        session.flush()
        return item_record(session, item, history=True)

    # --- reading ----------------------------------------------------------------------------

    @staticmethod
    def list_items(
        session: Session,
        *,
        state: str | None = None,
        area: str | None = None,
        submitter: str | None = None,
        form: str | None = None,
        area_prefixes: Sequence[str] | None = None,
        own_submissions_of: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of items, newest submission first. ``area_prefixes`` limits an area-scoped
        caller to its areas (items without an area are then never shown);
        ``own_submissions_of`` limits a field worker to items fed by their submissions."""
        conditions: list[ColumnElement[bool]] = []
        if state:
            conditions.append(ReviewItem.state == state)
        if area:
            conditions.append(within_areas(ReviewItem.admin_area_code, [area]))
        if submitter:
            conditions.append(ReviewItem.submitted_by == submitter)
        if form:
            conditions.append(ReviewItem.form_id == form)
        if area_prefixes is not None:
            conditions.append(area_condition(area_prefixes))
        if own_submissions_of is not None:
            conditions.append(
                exists(
                    select(ReviewSubmission.instance_id).where(
                        ReviewSubmission.item_id == ReviewItem.id,
                        ReviewSubmission.submitted_by == own_submissions_of,
                    )
                )
            )
        total = session.scalar(select(func.count()).select_from(ReviewItem).where(*conditions))
        rows = session.scalars(
            select(ReviewItem)
            .where(*conditions)
            .order_by(ReviewItem.submitted_at.desc(), ReviewItem.id)
            .limit(limit)
            .offset(offset)
        )
        return [item_record(session, r) for r in rows], int(total or 0)

    @staticmethod
    def submitters(session: Session, item_id: uuid.UUID) -> set[str]:
        return set(
            session.scalars(
                select(ReviewSubmission.submitted_by).where(ReviewSubmission.item_id == item_id)
            )
        )

    # --- visits -------------------------------------------------------------------------------

    @staticmethod
    def record_visit(
        session: Session,
        household_id: uuid.UUID | str,
        admin_area_code: str | None,
        *,
        visited_by: str,
        visited_at: datetime,
        outcome: str,
        recorded_by: str,
        lat: float | None = None,
        lon: float | None = None,
        accuracy_m: float | None = None,
        note: str | None = None,
        instance_id: str | None = None,
    ) -> dict[str, Any]:
        """Keep one visit; idempotent on ``instance_id`` (a submission's visit is kept once)."""
        if outcome not in VISIT_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(VISIT_OUTCOMES)}")
        if outcome == "other" and not (note or "").strip():
            raise ValueError("an 'other' outcome needs a note saying what happened")
        if instance_id is not None:
            known = session.scalars(
                select(HouseholdVisit).where(HouseholdVisit.instance_id == instance_id)
            ).first()
            if known is not None:
                return visit_record(known)
        visit = HouseholdVisit(
            id=uuid.uuid4(),
            household_id=_uuid(household_id),
            admin_area_code=admin_area_code,
            visited_by=visited_by[:200],
            visited_at=visited_at,
            lat=lat,
            lon=lon,
            accuracy_m=accuracy_m,
            outcome=outcome,
            note=(note or None) and note[:1000],
            instance_id=instance_id,
            recorded_by=recorded_by[:200],
            recorded_at=utcnow(),
        )
        session.add(visit)
        session.flush()
        return visit_record(visit)

    @staticmethod
    def visits_for(
        session: Session, household_id: uuid.UUID | str, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        hid = _uuid(household_id)
        total = session.scalar(
            select(func.count())
            .select_from(HouseholdVisit)
            .where(HouseholdVisit.household_id == hid)
        )
        rows = session.scalars(
            select(HouseholdVisit)
            .where(HouseholdVisit.household_id == hid)
            .order_by(HouseholdVisit.visited_at.desc(), HouseholdVisit.id)
            .limit(limit)
            .offset(offset)
        )
        return [visit_record(v) for v in rows], int(total or 0)


def clean_reasons(reasons: Sequence[str]) -> tuple[str, ...]:
    """Trimmed, non-empty reasons; ``ValueError`` when there are too many or one is too long."""
    cleaned = tuple(r.strip() for r in reasons if isinstance(r, str) and r.strip())
    if len(cleaned) > MAX_REASONS:
        raise ValueError(f"at most {MAX_REASONS} reasons")
    if any(len(r) > MAX_REASON_LENGTH for r in cleaned):
        raise ValueError(f"a reason is at most {MAX_REASON_LENGTH} characters")
    return cleaned


def area_condition(prefixes: Sequence[str]) -> ColumnElement[bool]:
    """``Principal.may_touch_area`` as SQL: the item's area is inside one of the areas."""
    return within_areas(ReviewItem.admin_area_code, prefixes)


def item_record(session: Session, item: ReviewItem, *, history: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": str(item.id),
        "state": item.state,
        "instance_id": item.instance_id,
        "household_id": str(item.household_id) if item.household_id else None,
        "form_id": item.form_id,
        "form_version": item.form_version,
        "submitted_by": item.submitted_by,
        "admin_area_code": item.admin_area_code,
        "summary": item.summary,
        "conflict": item.conflict,
        "notes": list(item.notes or []),
        "reasons": list(item.reasons or []),
        "decided_by": item.decided_by,
        "decided_at": iso(item.decided_at) if item.decided_at else None,
        "submitted_at": iso(item.submitted_at),
        "version": item.version,
        "allowed_decisions": list(states.allowed_decisions(item.state)),
    }
    if history:
        steps = session.scalars(
            select(ReviewDecision)
            .where(ReviewDecision.item_id == item.id)
            .order_by(ReviewDecision.id)
        )
        record["history"] = [
            {
                "at": iso(s.at),
                "actor": s.actor,
                "actor_role": s.actor_role,
                "via": s.via,
                "from": s.from_state,
                "to": s.to_state,
                "reasons": list(s.reasons or []),
                "instance_id": s.instance_id,
            }
            for s in steps
        ]
        subs = session.scalars(
            select(ReviewSubmission)
            .where(ReviewSubmission.item_id == item.id)
            .order_by(ReviewSubmission.received_at)
        )
        record["submissions"] = [
            {
                "instance_id": s.instance_id,
                "submitted_by": s.submitted_by,
                "form_version": s.form_version,
                "conflict": s.conflict,
                "received_at": iso(s.received_at),
            }
            for s in subs
        ]
    return record


def visit_record(visit: HouseholdVisit) -> dict[str, Any]:
    location = None
    if visit.lat is not None and visit.lon is not None:
        location = {"lat": visit.lat, "lon": visit.lon, "accuracy_m": visit.accuracy_m}
    return {
        "id": str(visit.id),
        "household_id": str(visit.household_id),
        "visited_by": visit.visited_by,
        "visited_at": iso(visit.visited_at),
        "location": location,
        "outcome": visit.outcome,
        "note": visit.note,
        "instance_id": visit.instance_id,
        "recorded_by": visit.recorded_by,
        "recorded_at": iso(visit.recorded_at),
    }
