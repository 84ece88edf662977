"""A merge re-points the merged-away person's other open duplicate pairs to the survivor, or
closes them as superseded; an unmerge puts them back (both databases). Deciding a re-pointed
pair then works, where it was a 409 before."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from registry_core.models import MatchReview
from registry_core.resolution import duplicate_pair_key, open_duplicate_review, review_record
from registry_core.service import Source
from registry_core.services.merges import Actor, MergeRefused

STAFF = Actor("token:amina")
SOURCE = Source("program_ct_ovc", "CT-1")


def _people(registry: Any, count: int) -> list[str]:
    ids = []
    for index in range(count):
        household = registry.register_household(
            {
                "admin_area_code": f"KE-047-0{index}",
                "address": f"Plot {index}",
                "members": [
                    {
                        "given_name": "Wanjiru",
                        "family_name": "Kamau",
                        "birth_date": "1979-03-14",
                        "sex": "female",
                        "relationship": "head",
                    }
                ],
            },
            SOURCE,
        ).record
        ids.append(household["members"][0]["id"])
    return ids


def _pair(registry: Any, a: str, b: str, score: float = 0.9) -> str:
    with registry.ws.sessions() as session, session.begin():
        review, _new = open_duplicate_review(
            session,
            registry.ws.cipher,
            person_a=uuid.UUID(a),
            person_b=uuid.UUID(b),
            score=score,
            outcome="review",
            scan_id=None,
        )
        session.flush()
        return str(review.id)


def _review(registry: Any, review_id: str) -> dict[str, Any]:
    with registry.ws.sessions() as session:
        row = session.get(MatchReview, uuid.UUID(review_id))
        assert row is not None
        return {
            "status": row.status,
            "pair": sorted(str(c[0]) for c in row.candidates),
            "key": row.message_id,
            "sealed_pair": review_record(registry.ws.cipher, row)["person_ids"],
            "resolution": row.resolution,
        }


class _Registry:
    """The registry with the session factory and cipher it was built with (for the test's
    own reads of the review rows)."""

    def __init__(self, registry: Any, sessions: Any, cipher: Any) -> None:
        self._registry = registry
        self.ws = type("Ws", (), {"sessions": sessions, "cipher": cipher})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)


@pytest.fixture
def people(registry: Any, db_engine: Any, cipher: Any) -> tuple[Any, list[str]]:
    from registry_core.db import make_session_factory

    wrapped = _Registry(registry, make_session_factory(db_engine), cipher)
    return wrapped, _people(registry, 4)


def test_other_open_pairs_follow_the_survivor_and_can_be_decided(people: Any) -> None:
    registry, (s, m, x, y) = people
    decided = _pair(registry, s, m)
    to_x = _pair(registry, m, x, 0.8)
    to_y = _pair(registry, m, y)
    already = _pair(registry, s, y)  # the survivor's own pair with y is already queued
    merge = registry.merge_review(decided, survivor_id=s, reason="same person", actor=STAFF)

    moved = _review(registry, to_x)
    assert moved["status"] == "open"
    assert moved["pair"] == sorted([s, x]) == moved["sealed_pair"]
    assert moved["key"] == duplicate_pair_key(s, x)
    gone = _review(registry, to_y)
    assert gone["status"] == "superseded"
    assert already in gone["resolution"] and merge["id"] in gone["resolution"]
    assert _review(registry, already)["status"] == "open"
    # Deciding the re-pointed pair works (it answered 409 naming the survivor before).
    registry.keep_apart(to_x, reason="two people", actor=STAFF)
    assert _review(registry, to_x)["status"] == "kept_apart"
    # A pair with the merged person cannot come back through the scan's idempotent key either.
    with registry.ws.sessions() as session:
        keys = set(session.scalars(select(MatchReview.message_id)))
    assert duplicate_pair_key(m, x) not in keys


def test_an_unmerge_puts_open_pairs_back_and_keeps_decided_ones(people: Any) -> None:
    registry, (s, m, x, y) = people
    decided = _pair(registry, s, m)
    to_x = _pair(registry, m, x)
    to_y = _pair(registry, m, y)
    already = _pair(registry, s, y)
    merge = registry.merge_review(decided, survivor_id=s, reason="same person", actor=STAFF)
    registry.keep_apart(already, reason="two people", actor=STAFF)
    undone = registry.unmerge(merge["id"], reason="wrong merge", actor=STAFF)

    back = _review(registry, to_x)
    assert back["status"] == "open"
    assert back["pair"] == sorted([m, x]) == back["sealed_pair"]
    assert back["key"] == duplicate_pair_key(m, x)
    reopened = _review(registry, to_y)
    assert reopened["status"] == "open" and reopened["resolution"] is None
    assert _review(registry, already)["status"] == "kept_apart"
    assert undone["unmerge_notes"] == []


def test_a_repointed_pair_decided_after_the_merge_keeps_its_decision(people: Any) -> None:
    registry, (s, m, x, _y) = people
    decided = _pair(registry, s, m)
    to_x = _pair(registry, m, x)
    merge = registry.merge_review(decided, survivor_id=s, reason="same person", actor=STAFF)
    registry.keep_apart(to_x, reason="two people", actor=STAFF)
    undone = registry.unmerge(merge["id"], reason="wrong merge", actor=STAFF)
    kept = _review(registry, to_x)
    assert kept["status"] == "kept_apart" and kept["pair"] == sorted([s, x])
    assert any(to_x in note and "kept_apart" in note for note in undone["unmerge_notes"])


def test_a_merge_without_review_supersedes_the_pairs_own_review(people: Any) -> None:
    registry, (s, m, _x, _y) = people
    queued = _pair(registry, s, m)
    merge = registry.merge_persons(s, m, reason="partner report", actor=STAFF)
    assert _review(registry, queued)["status"] == "superseded"
    with pytest.raises(MergeRefused):  # the pair is no longer open
        registry.merge_review(queued, survivor_id=s, reason="again", actor=STAFF)
    registry.unmerge(merge["id"], reason="wrong", actor=STAFF)
    assert _review(registry, queued)["status"] == "open"
