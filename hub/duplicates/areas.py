"""Duplicate pairs as a supervisor sees them: only pairs whose two people both live (a current
membership) in households inside the supervisor's areas.

A merge moves memberships, identifiers, consents and provenance between two records and tells
both records' programs: a supervisor decides it only when both people are theirs to look after,
as they approve corrections only in their areas (``docs/auth.md``). A person without a current
household is in no area, so a pair with one is for registry staff; a person merged away is
read as their survivor (one step), so a supervisor still sees the pairs they decided.
Forcing an unsafe merge, undoing a merge and starting a scan stay with registry staff and
administrators.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.roles import Principal
from registry_core.crypto import IdentifierCipher
from registry_core.models import Household, MatchReview, Membership, Person
from registry_core.resolution import DUPLICATE_KIND
from registry_core.services.merges import PairCheck
from registry_core.services.reviews import review_item

_CHUNK = 500


class OutsideAreas(PermissionError):
    """The pair is not wholly inside the caller's areas (the message says which rule)."""


def pair_inside(principal: Principal, areas: list[str | None]) -> bool:
    return len(areas) == 2 and all(principal.may_touch_area(a) for a in areas)


def area_check(principal: Principal) -> PairCheck | None:
    """The check the registry runs on a locked review before deciding it (None: unscoped)."""
    if not principal.area_scoped:
        return None

    def check(areas: list[str | None]) -> None:
        if not pair_inside(principal, areas):
            raise OutsideAreas(
                "Both people must live in households of the areas you cover "
                f"({', '.join(principal.admin_areas) or 'none'}); registry staff decide this pair."
            )

    return check


def _household_areas(session: Session, ids: list[uuid.UUID]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Membership.person_id, Household.admin_area_code)
            .join(Household, Household.id == Membership.household_id)
            .where(Membership.person_id.in_(ids[start : start + _CHUNK]))
            .where(Membership.end_date.is_(None))
        )
        found.update({str(pid): area for pid, area in rows})
    return found


def areas_of(session: Session, person_ids: Iterable[uuid.UUID]) -> dict[str, str | None]:
    """Person id -> the area of their current household, or of their survivor's when they were
    merged away (absent: no current household)."""
    ids = list(person_ids)
    found = _household_areas(session, ids)
    missing = [i for i in ids if str(i) not in found]
    survivors: dict[str, uuid.UUID] = {}
    for start in range(0, len(missing), _CHUNK):
        rows = session.execute(
            select(Person.id, Person.merged_into_id).where(
                Person.id.in_(missing[start : start + _CHUNK]), Person.merged_into_id.is_not(None)
            )
        )
        survivors.update({str(pid): into for pid, into in rows if into is not None})
    if survivors:
        theirs = _household_areas(session, list(set(survivors.values())))
        for pid, into in survivors.items():
            if str(into) in theirs:
                found[pid] = theirs[str(into)]
    return found


def detail_areas(detail: dict[str, Any], sessions: sessionmaker[Session]) -> list[str | None]:
    """The two areas of a review's detail (``Registry.review_detail``): each side's current
    household's, a merged-away side read as its survivor's (looked up in ``sessions``)."""
    shown = {
        side["person_id"]: (side.get("household") or {}).get("admin_area_code")
        for side in detail.get("people", [])
    }
    areas = []
    for side in detail.get("people", []):
        area = shown.get(side["person_id"])
        if area is None and side.get("merged_into"):
            area = shown.get(side["merged_into"])
            if area is None:
                with sessions() as session:
                    area = areas_of(session, [uuid.UUID(side["merged_into"])]).get(
                        side["merged_into"]
                    )
        areas.append(area)
    return areas


def supervised_pairs(
    session: Session,
    cipher: IdentifierCipher,
    principal: Principal,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the duplicate pairs inside ``principal``'s areas, oldest first, and their
    total. The queue's rows are read without their sealed records and filtered here (one area
    query per 500 people); only the page's records are opened."""
    query = select(MatchReview).where(MatchReview.kind == DUPLICATE_KIND)
    if status is not None:
        query = query.where(MatchReview.status == status)
    rows = session.scalars(query.order_by(MatchReview.created_at, MatchReview.id)).all()
    people = {uuid.UUID(str(c[0])) for r in rows for c in r.candidates[:2]}
    areas = areas_of(session, people)
    inside = [
        r for r in rows if pair_inside(principal, [areas.get(str(c[0])) for c in r.candidates[:2]])
    ]
    return [review_item(cipher, r) for r in inside[offset : offset + limit]], len(inside)
