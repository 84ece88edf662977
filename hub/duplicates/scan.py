"""One batch of a registry-wide duplicate scan, over the blocking keys already stored.

Every person carries blocking keys (``person_match_keys``: phonetic name + birth year, birth
date, name pair), kept current by every write. The scan walks the distinct keys in order, a
batch at a time: the persons sharing a key form a block, each pair in a block is judged by the
hub's matcher (the trained model ``settings.matcher_model`` names, or the built-in one), and
every pair the matcher does not rule out (``review`` or ``match``) is queued in the match
review queue for staff. Nothing is merged automatically.

Idempotent: a pair's review has one key (``duplicate_pair_key``), so a pair already queued,
kept apart, merged or unmerged is skipped (counted in ``already_known`` unless this scan queued
it itself). Blocks larger than the matcher's ``max_block_size`` are not expanded (a very
common name and birth year): counted in ``blocks_too_large``. Persons merged away carry no keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.duplicates.tables import DuplicateScan
from registry_core.crypto import IdentifierCipher
from registry_core.matching import FieldError, Outcome, PersonRecord, person_from_canonical
from registry_core.matching.matcher import PairJudge
from registry_core.models import (
    Household,
    Identifier,
    MatchReview,
    Membership,
    Person,
    PersonMatchKey,
)
from registry_core.resolution import duplicate_pair_key, open_duplicate_review
from standards.timeutil import utcnow

BATCH_KEYS = 200
_LOOKUP_CHUNK = 500
_ID_SYSTEMS = ("national_id",)


def count_keys(session: Session) -> int:
    """How many distinct blocking keys the scan will walk."""
    return int(session.scalar(select(func.count(func.distinct(PersonMatchKey.key)))) or 0)


def _next_keys(session: Session, after: str | None, size: int) -> list[str]:
    query = select(PersonMatchKey.key).distinct().order_by(PersonMatchKey.key).limit(size)
    if after is not None:
        query = query.where(PersonMatchKey.key > after)
    return list(session.scalars(query))


def _chunks(items: list[Any], size: int = _LOOKUP_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _records(
    session: Session, cipher: IdentifierCipher, ids: set[uuid.UUID]
) -> dict[str, PersonRecord]:
    """Matcher records of ``ids`` with their current household's address and area and their
    national ID (opened in memory only, to tell two people with two IDs apart)."""
    out: dict[str, PersonRecord] = {}
    for chunk in _chunks(sorted(ids)):
        national: dict[uuid.UUID, str] = {}
        for ident in session.scalars(
            select(Identifier).where(
                Identifier.person_id.in_(chunk), Identifier.system.in_(_ID_SYSTEMS)
            )
        ):
            national[ident.person_id] = cipher.decrypt(ident.system, ident.value_ciphertext)
        rows = session.execute(
            select(Person, Household.address, Household.admin_area_code)
            .outerjoin(
                Membership,
                (Membership.person_id == Person.id) & Membership.end_date.is_(None),
            )
            .outerjoin(Household, Household.id == Membership.household_id)
            .where(Person.id.in_(chunk), Person.merged_into_id.is_(None))
        ).all()
        for person, address, area in rows:
            canonical: dict[str, Any] = {
                "given_name": person.given_name,
                "family_name": person.family_name,
                "birth_date": person.birth_date.isoformat() if person.birth_date else None,
                "sex": person.sex,
            }
            if person.id in national:
                canonical["identifiers"] = [{"system": "national_id", "value": national[person.id]}]
            try:
                out[str(person.id)] = person_from_canonical(
                    canonical,
                    record_id=str(person.id),
                    household={"address": address, "admin_area_code": area},
                )
            except FieldError:
                continue
    return out


def _known_pairs(session: Session, keys: list[str]) -> dict[str, str | None]:
    """Pair key -> the scan that queued it, for pairs that already have a review."""
    known: dict[str, str | None] = {}
    for chunk in _chunks(keys):
        for key, scan in session.execute(
            select(MatchReview.message_id, MatchReview.source_record_id).where(
                MatchReview.message_id.in_(chunk)
            )
        ):
            known[str(key)] = scan
    return known


def run_batch(
    session: Session,
    cipher: IdentifierCipher,
    matcher: PairJudge,
    scan: DuplicateScan,
    batch_keys: int = BATCH_KEYS,
) -> bool:
    """Scan the next ``batch_keys`` keys after ``scan.cursor`` in ``session``'s transaction,
    updating the scan's counts and cursor; False when no key was left."""
    keys = _next_keys(session, scan.cursor, batch_keys)
    if not keys:
        return False
    blocks: dict[str, list[uuid.UUID]] = {}
    for key, person_id in session.execute(
        select(PersonMatchKey.key, PersonMatchKey.person_id).where(PersonMatchKey.key.in_(keys))
    ):
        blocks.setdefault(key, []).append(person_id)
    limit = matcher.max_block_size
    pairs: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for members in blocks.values():
        if len(members) < 2:
            continue
        if len(members) > limit:
            scan.blocks_too_large += 1
            continue
        ordered = sorted(members, key=str)
        for i, first in enumerate(ordered):
            for second in ordered[i + 1 :]:
                pairs.add((first, second))
    by_key = {duplicate_pair_key(a, b): (a, b) for a, b in pairs}
    known = _known_pairs(session, sorted(by_key))
    scan_id = str(scan.id)
    fresh = {k: p for k, p in by_key.items() if k not in known}
    scan.already_known += sum(1 for queued_by in known.values() if queued_by != scan_id)
    records = _records(session, cipher, {pid for pair in fresh.values() for pid in pair})
    for a, b in (fresh[k] for k in sorted(fresh)):
        left, right = records.get(str(a)), records.get(str(b))
        if left is None or right is None:
            continue
        score, outcome = matcher.judge(left, right)
        scan.pairs_compared += 1
        if outcome is Outcome.NO_MATCH:
            continue
        _, opened = open_duplicate_review(
            session,
            cipher,
            person_a=a,
            person_b=b,
            score=round(score, 4),
            outcome=outcome.value,
            scan_id=scan_id,
        )
        scan.candidates_found += int(opened)
    scan.cursor = keys[-1]
    scan.keys_done += len(keys)
    scan.heartbeat_at = utcnow()
    return True


def scan_record(scan: DuplicateScan) -> dict[str, Any]:
    """A scan as the API and the dashboard show it."""
    from standards.timeutil import rfc3339

    def when(value: Any) -> str | None:
        return rfc3339(value) if value else None

    total = scan.keys_total or 0
    return {
        "id": str(scan.id),
        "state": scan.state,
        "requested_by": scan.requested_by,
        "created_at": when(scan.created_at),
        "started_at": when(scan.started_at),
        "finished_at": when(scan.finished_at),
        "heartbeat_at": when(scan.heartbeat_at),
        "progress": {
            "keys_total": total,
            "keys_done": scan.keys_done,
            "percent": round(100.0 * min(scan.keys_done, total) / total, 1) if total else 0.0,
        },
        "pairs_compared": scan.pairs_compared,
        "candidates_found": scan.candidates_found,
        "already_known": scan.already_known,
        "blocks_too_large": scan.blocks_too_large,
        "error": scan.error,
    }
