"""Finding who an incoming partner record is about: identifiers first, then the matcher.

Precision first. An identifier held by exactly one person is a match. Identifiers that point to
different people, or a demographic score in the grey zone, go to a person in the review queue.
Only a clear demographic winner is taken automatically, and never to create a merge: the
incoming fact is attached to the existing person, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from registry_core.crypto import IdentifierCipher
from registry_core.matching import (
    FieldError,
    Outcome,
    PersonMatcher,
    blocking_keys,
    person_from_canonical,
)
from registry_core.models import (
    Household,
    Identifier,
    MatchReview,
    Membership,
    Person,
    PersonMatchKey,
)

MAX_CANDIDATES = 200
REVIEW_CONTEXT = "match_review"
_IDENTIFIER_KEY_PREFIXES = ("i:", "ih:")


@dataclass(frozen=True)
class Resolution:
    """Who a reference is: ``person_id`` for a match; otherwise why not."""

    outcome: str  # "match" | "review" | "no_match"
    person_id: uuid.UUID | None
    reason: str
    via: str = ""  # "identifier" | "matcher" | ""
    candidates: tuple[tuple[str, float], ...] = field(default_factory=tuple)


def _match_keys(person: Person) -> list[str]:
    return match_keys_for(
        {
            "given_name": person.given_name,
            "family_name": person.family_name,
            "birth_date": person.birth_date.isoformat() if person.birth_date else None,
            "sex": person.sex,
        },
        str(person.id),
    )


def match_keys_for(fields: Mapping[str, Any], record_id: str) -> list[str]:
    """The stored blocking keys of a person with these canonical fields (names, ISO birth
    date, sex); the bulk load computes them without building ORM rows."""
    try:
        record = person_from_canonical(
            {name: fields.get(name) for name in ("given_name", "family_name", "birth_date", "sex")},
            record_id=record_id,
        )
    except FieldError:
        return []
    return [
        k[:64]
        for k in dict.fromkeys(blocking_keys(record))
        if not k.startswith(_IDENTIFIER_KEY_PREFIXES)
    ]


def refresh_match_keys(session: Session, person: Person, *, new: bool = False) -> None:
    """Re-derive the person's stored blocking keys from their current names and birth date.
    ``new``: the person is being created and has no stored keys to delete yet."""
    if not new:
        session.execute(delete(PersonMatchKey).where(PersonMatchKey.person_id == person.id))
    for key in dict.fromkeys(_match_keys(person)):
        session.add(PersonMatchKey(person_id=person.id, key=key[:64]))


def resolve_by_identifiers(
    session: Session, cipher: IdentifierCipher, identifiers: Sequence[Mapping[str, Any]]
) -> Resolution | None:
    """A resolution if any identifier is known to the registry; None if none is."""
    owners: dict[uuid.UUID, list[str]] = {}
    for ident in identifiers:
        digests = cipher.lookup_hashes(ident["system"], ident["value"])
        owner = session.scalar(
            select(Identifier.person_id)
            .where(Identifier.system == ident["system"], Identifier.value_hash.in_(digests))
            .limit(1)
        )
        if owner is not None:
            owners.setdefault(owner, []).append(ident["system"])
    if not owners:
        return None
    if len(owners) > 1:
        return Resolution(
            "review",
            None,
            "identifiers of this record belong to different people: "
            + "; ".join(f"{', '.join(s)} -> {p}" for p, s in owners.items()),
            "identifier",
            tuple((str(p), 1.0) for p in owners),
        )
    person_id, systems = next(iter(owners.items()))
    return Resolution("match", person_id, f"identifier ({', '.join(systems)})", "identifier")


def _candidate_records(session: Session, keys: Sequence[str]) -> list[Any]:
    ids = list(
        session.scalars(
            select(PersonMatchKey.person_id)
            .where(PersonMatchKey.key.in_(list(keys)))
            .distinct()
            .limit(MAX_CANDIDATES)
        )
    )
    if not ids:
        return []
    rows = session.execute(
        select(Person, Household.address, Household.admin_area_code)
        .outerjoin(Membership, (Membership.person_id == Person.id) & Membership.end_date.is_(None))
        .outerjoin(Household, Household.id == Membership.household_id)
        .where(Person.id.in_(ids))
    ).all()
    records = []
    for person, address, area in rows:
        try:
            records.append(
                person_from_canonical(
                    {
                        "given_name": person.given_name,
                        "family_name": person.family_name,
                        "birth_date": person.birth_date.isoformat() if person.birth_date else None,
                        "sex": person.sex,
                    },
                    record_id=str(person.id),
                    household={"address": address, "admin_area_code": area},
                )
            )
        except FieldError:
            continue
    return records


def resolve_person(
    session: Session,
    cipher: IdentifierCipher,
    matcher: PersonMatcher,
    reference: Mapping[str, Any],
    household_hint: Mapping[str, Any] | None = None,
) -> Resolution:
    """Resolve a person reference (identifiers and/or names, birth date, sex)."""
    by_id = resolve_by_identifiers(session, cipher, reference.get("identifiers") or [])
    if by_id is not None:
        return by_id
    if not (reference.get("family_name") and reference.get("birth_date")):
        return Resolution("no_match", None, "no known identifier and too few facts to match")
    try:
        incoming = person_from_canonical(
            {k: reference.get(k) for k in ("given_name", "family_name", "birth_date", "sex")},
            record_id="incoming",
            household=household_hint,
        )
    except FieldError as exc:
        return Resolution("no_match", None, f"unreadable reference: {exc}")
    keys = [k for k in blocking_keys(incoming) if not k.startswith(_IDENTIFIER_KEY_PREFIXES)]
    existing = _candidate_records(session, keys) if keys else []
    decision = matcher.match_one(incoming, existing)
    if decision.outcome == Outcome.MATCH and decision.person_id:
        return Resolution(
            "match", uuid.UUID(decision.person_id), decision.reason, "matcher", decision.candidates
        )
    if decision.outcome == Outcome.REVIEW:
        return Resolution("review", None, decision.reason, "matcher", decision.candidates)
    return Resolution("no_match", None, decision.reason, "matcher", decision.candidates)


def open_review(
    session: Session,
    cipher: IdentifierCipher,
    *,
    kind: str,
    reason: str,
    record: Mapping[str, Any],
    candidates: Sequence[tuple[str, float]],
    source_system: str,
    source_record_id: str | None,
    message_id: str | None,
) -> MatchReview:
    """Queue a record for a person to decide; the same message never opens two reviews."""
    if message_id:
        existing = session.scalar(select(MatchReview).where(MatchReview.message_id == message_id))
        if existing is not None:
            return existing
    review = MatchReview(
        kind=kind,
        reason=reason,
        candidates=[[c, s] for c, s in candidates],
        record_sealed=seal_review_record(cipher, record),
        source_system=source_system,
        source_record_id=source_record_id,
        message_id=message_id,
    )
    session.add(review)
    return review


DUPLICATE_KIND = "duplicate"
DUPLICATE_SOURCE = "duplicate_scan"
# A pair's review, once opened, is never opened again (the unique ``message_id``): decided
# pairs (kept apart, merged, merge undone) are not proposed twice.
_PAIR_PREFIX = "duplicate:"


def duplicate_pair_key(a: uuid.UUID | str, b: uuid.UUID | str) -> str:
    """The one key of an unordered pair of persons (the review's ``message_id``, 64 wide:
    a digest of both ids; the ids themselves are the review's candidates)."""
    first, second = sorted([str(a), str(b)])
    digest = hashlib.sha256(f"{first}:{second}".encode()).hexdigest()[:48]
    return f"{_PAIR_PREFIX}{digest}"


def open_duplicate_review(
    session: Session,
    cipher: IdentifierCipher,
    *,
    person_a: uuid.UUID,
    person_b: uuid.UUID,
    score: float,
    outcome: str,
    scan_id: str | None,
) -> tuple[MatchReview, bool]:
    """Queue two registered persons the matcher thinks may be one; (review, newly opened).
    A pair already queued or decided is returned as it is, never re-opened."""
    key = duplicate_pair_key(person_a, person_b)
    existing = session.scalar(select(MatchReview).where(MatchReview.message_id == key))
    if existing is not None:
        return existing, False
    first, second = sorted([str(person_a), str(person_b)])
    review = open_review(
        session,
        cipher,
        kind=DUPLICATE_KIND,
        reason=f"the duplicate scan scored this pair {score:.3f} ({outcome})",
        record={"person_ids": [first, second], "score": score, "outcome": outcome},
        candidates=[(first, score), (second, score)],
        source_system=DUPLICATE_SOURCE,
        source_record_id=scan_id,
        message_id=key,
    )
    return review, True


def seal_review_record(cipher: IdentifierCipher, record: Mapping[str, Any]) -> bytes:
    return cipher.seal(REVIEW_CONTEXT, json.dumps(record, sort_keys=True).encode())


def review_record(cipher: IdentifierCipher, review: MatchReview) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(cipher.unseal(REVIEW_CONTEXT, review.record_sealed))
    return record
