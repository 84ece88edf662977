"""The read audit's hash chain without a database: an edited, deleted, moved or inserted row
breaks it at that row; an anchor lets a purged chain verify from where the purge stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.readaudit.chain import GENESIS_HASH, Anchor, ChainWalker, row_hash, verify


def chain(count: int, start: Anchor | None = None) -> list[dict[str, Any]]:
    rows = []
    start = start or Anchor()
    prev, seq = start.hash, start.seq
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        seq += 1
        row: dict[str, Any] = {
            "seq": seq,
            "at": moment + timedelta(seconds=i, microseconds=7),
            "subject": f"user-{i % 3}",
            "roles": "registry_staff",
            "program": None,
            "channel": "api",
            "route": "GET /api/v1/households/<uuid:household_id>",
            "purpose": "unspecified",
            "query_kind": "",
            "household_ids": f'["00000000-0000-0000-0000-{i:012d}"]',
            "person_ids": "[]",
            "record_count": 1,
            "prev_hash": prev,
        }
        row["row_hash"] = prev = row_hash(row)
        rows.append(row)
    return rows


def test_an_untouched_chain_verifies_and_reports_its_head() -> None:
    rows = chain(5)
    verdict = verify(rows)
    assert verdict.intact and verdict.checked == 5
    assert (verdict.head_seq, verdict.head_hash) == (5, rows[-1]["row_hash"])
    assert verify([]).as_dict()["head"] == {"seq": 0, "hash": GENESIS_HASH}


def test_an_edited_row_is_found() -> None:
    rows = chain(5)
    rows[2]["subject"] = "someone-else"
    verdict = verify(rows)
    assert not verdict.intact and verdict.broken_seq == 3 and "changed" in verdict.reason
    assert verdict.checked == 2


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    rows = chain(5)
    rows[2]["record_count"] = 0
    rows[2]["row_hash"] = row_hash(rows[2])
    verdict = verify(rows)
    assert verdict.broken_seq == 4 and "link" in verdict.reason


def test_a_deleted_row_is_found() -> None:
    rows = chain(5)
    del rows[1]
    verdict = verify(rows)
    assert not verdict.intact and verdict.broken_seq == 3 and "missing" in verdict.reason


def test_a_deleted_first_row_is_found() -> None:
    verdict = verify(chain(3)[1:])
    assert verdict.broken_seq == 2


def test_reordered_rows_are_found() -> None:
    rows = chain(5)
    rows[1], rows[2] = rows[2], rows[1]
    assert verify(rows).broken_seq == 3
    # Moving the content but renumbering the rows to keep seq in order: the hash covers
    # seq, so it shows.
    rows = chain(5)
    rows[1], rows[2] = {**rows[2], "seq": 2}, {**rows[1], "seq": 3}
    assert verify(rows).broken_seq == 2


def test_a_purged_chain_verifies_from_its_anchor_only() -> None:
    rows = chain(6)
    anchor = Anchor(3, rows[2]["row_hash"])
    assert verify(rows[3:], anchor).intact
    assert not verify(rows[3:]).intact  # without the anchor it looks cut
    assert not verify(rows[4:], anchor).intact  # one row more gone than the anchor says


def test_the_walker_takes_chunks_and_stops_at_the_first_break() -> None:
    rows = chain(9)
    rows[7]["purpose"] = "other"
    walker = ChainWalker(Anchor())
    assert walker.feed(rows[:4]) and walker.feed(rows[4:6])
    assert not walker.feed(rows[6:])
    assert walker.verdict().broken_seq == 8


def test_times_hash_the_same_naive_or_aware() -> None:
    row = chain(1)[0]
    naive = {**row, "at": row["at"].replace(tzinfo=None)}
    assert row_hash(naive) == row["row_hash"]
