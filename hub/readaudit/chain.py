"""The hash chain of the read audit: pure functions, no database.

Each row's hash is sha256 over the canonical JSON of its content (every column but the hash
itself, ``seq`` and the previous row's hash included). Editing a row changes its hash;
deleting one leaves a gap in ``seq`` and a ``prev_hash`` that names a row no longer there;
moving one breaks both. Verification starts at the genesis hash or, after a purge, at the
anchor the purge recorded (the last purged row's seq and hash).

What a chain alone cannot show: rows cut from its end (the head simply moves back) and a
forged anchor. ``srhub audit verify`` prints the head (seq and hash) so an operator can keep
it somewhere the database's administrators cannot write, and compare later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS: tuple[str, ...] = (
    "seq",
    "at",
    "subject",
    "roles",
    "program",
    "channel",
    "route",
    "purpose",
    "query_kind",
    "household_ids",
    "person_ids",
    "record_count",
    "prev_hash",
)


def _canonical_time(value: datetime) -> str:
    """UTC, microseconds always written: what both backends give back for what we stored."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash is taken over."""
    content: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = row[name]
        content[name] = _canonical_time(value) if isinstance(value, datetime) else value
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def row_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


@dataclass(frozen=True)
class Anchor:
    """Where a chain starts: seq 0 and the genesis hash, or a purge's last row."""

    seq: int = 0
    hash: str = GENESIS_HASH


@dataclass(frozen=True)
class Verdict:
    """The outcome of a verification: intact, or the first broken row and why."""

    intact: bool
    checked: int
    anchor: Anchor
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "checked": self.checked,
            "anchor": {"seq": self.anchor.seq, "hash": self.anchor.hash},
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "broken_seq": self.broken_seq,
            "reason": self.reason,
        }


class ChainWalker:
    """Checks rows one by one in ``seq`` order; stops at the first break.

    Kept incremental (``feed`` chunk after chunk) so a verification of millions of rows reads
    them in pages and holds none of them all at once.
    """

    def __init__(self, anchor: Anchor) -> None:
        self.anchor = anchor
        self.expected_seq = anchor.seq + 1
        self.expected_prev = anchor.hash
        self.checked = 0
        self.broken_seq: int | None = None
        self.reason = ""

    @property
    def broken(self) -> bool:
        return self.broken_seq is not None

    def feed(self, rows: Iterable[Mapping[str, Any]]) -> bool:
        """Check ``rows``; False once a break was found (later rows are not looked at)."""
        for row in rows:
            if self.broken:
                return False
            seq = int(row["seq"])
            if seq != self.expected_seq:
                self._break(
                    seq,
                    f"row {seq} follows row {self.expected_seq - 1}: "
                    f"{'rows missing' if seq > self.expected_seq else 'rows out of order'}",
                )
            elif row["prev_hash"] != self.expected_prev:
                self._break(seq, f"row {seq} does not link to the row before it")
            elif row_hash(row) != row["row_hash"]:
                self._break(seq, f"row {seq} was changed after it was written")
            else:
                self.checked += 1
                self.expected_seq = seq + 1
                self.expected_prev = str(row["row_hash"])
        return not self.broken

    def _break(self, seq: int, reason: str) -> None:
        self.broken_seq, self.reason = seq, reason

    def verdict(self) -> Verdict:
        return Verdict(
            intact=not self.broken,
            checked=self.checked,
            anchor=self.anchor,
            head_seq=self.expected_seq - 1,
            head_hash=self.expected_prev,
            broken_seq=self.broken_seq,
            reason=self.reason,
        )


def verify(rows: Iterable[Mapping[str, Any]], anchor: Anchor = Anchor()) -> Verdict:
    walker = ChainWalker(anchor)
    walker.feed(rows)
    return walker.verdict()
