"""The read-audit log: append a row to the chain, page through it, verify it, purge it.

Appending is one short transaction: take the chain's lock (``pg_advisory_xact_lock`` on
PostgreSQL; on SQLite the transaction's ``BEGIN IMMEDIATE`` write lock), read the head, write
the row with the head's hash in it, commit. The lock is held until the commit, so on its own
the chain would allow one commit (one WAL flush) at a time per database. Within a process,
concurrent appends are therefore committed together (``GroupCommit``): whoever finds no
append in progress writes every entry waiting at that moment in one transaction, and the
others wait for it. Each read still waits until its own row is durable. A failed append
raises: the read paths then refuse to answer rather than answer unrecorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from hub.readaudit.chain import Anchor, ChainWalker, Verdict, row_hash
from hub.readaudit.records import ReadEntry
from hub.readaudit.tables import MAX_IDS, PURGE_SETTING, ReadAuditAnchor, ReadAuditRow
from standards.timeutil import utcnow

# This project's advisory lock key for the read-audit chain (an arbitrary constant).
CHAIN_LOCK = 0x5352_5244_4155
VERIFY_CHUNK = 5_000
MAX_PAGE = 500
_T = ReadAuditRow.__table__


class ChainBroken(RuntimeError):
    """The chain does not verify where an operation needed it to; the message says where."""


@dataclass(frozen=True)
class ReadFilters:
    """What an auditor asks for; every field optional. Ids must be canonical UUID strings."""

    subject: str | None = None
    household_id: str | None = None
    person_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    purpose: str | None = None


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lock(session: Session) -> None:
    if _is_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})


def latest_anchor(session: Session) -> Anchor:
    found = session.execute(
        select(ReadAuditAnchor.last_seq, ReadAuditAnchor.last_hash)
        .order_by(ReadAuditAnchor.id.desc())
        .limit(1)
    ).first()
    return Anchor(int(found[0]), str(found[1])) if found else Anchor()


def _head(session: Session) -> Anchor:
    """The last row, else (an empty or fully purged table) the latest anchor: a purge deletes
    every row up to its anchor, so a row present is always after it."""
    found = session.execute(
        select(ReadAuditRow.seq, ReadAuditRow.row_hash).order_by(ReadAuditRow.seq.desc()).limit(1)
    ).first()
    if found is None:
        return latest_anchor(session)
    return Anchor(int(found[0]), str(found[1]))


def _ids(values: tuple[str, ...]) -> str:
    unique = list(dict.fromkeys(values))[:MAX_IDS]
    return json.dumps(unique, separators=(",", ":"))


def append_in(session: Session, entry: ReadEntry) -> int:
    """Append ``entry`` inside the caller's transaction; return its seq. The lock is held
    until that transaction ends, so keep it short."""
    return append_many_in(session, [entry])[0]


def append_many_in(session: Session, entries: Sequence[ReadEntry]) -> list[int]:
    """Append ``entries`` in order inside the caller's transaction (one lock, one head
    read, one insert); return their seqs."""
    _lock(session)
    head = _head(session)
    rows = []
    for entry in entries:
        row = _row(entry, head)
        rows.append(row)
        head = Anchor(int(row["seq"]), str(row["row_hash"]))
    if rows:
        session.execute(insert(ReadAuditRow), rows)
    return [int(r["seq"]) for r in rows]


def _row(entry: ReadEntry, head: Anchor) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seq": head.seq + 1,
        "at": utcnow(),
        "subject": entry.subject[:200],
        "roles": ",".join(entry.roles)[:200],
        "program": entry.program[:64] if entry.program else None,
        "channel": entry.channel[:16],
        "route": entry.route[:200],
        "purpose": entry.purpose[:64],
        "query_kind": entry.query_kind[:64],
        "household_ids": _ids(entry.records.household_ids),
        "person_ids": _ids(entry.records.person_ids),
        "record_count": int(entry.records.count),
        "prev_hash": head.hash,
    }
    row["row_hash"] = row_hash(row)
    return row


class _Slot:
    """One waiting entry: set when the batch holding it committed or failed."""

    __slots__ = ("done", "entry", "error", "seq")

    def __init__(self, entry: ReadEntry) -> None:
        self.entry = entry
        self.done = False
        self.seq = 0
        self.error: BaseException | None = None


class GroupCommit:
    """Appends from many threads of one process, committed in as few transactions as the
    database's lock allows: the thread that gets ``_writer`` writes everything queued."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._queue: list[_Slot] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()

    def append(self, entry: ReadEntry) -> int:
        slot = _Slot(entry)
        with self._queue_lock:
            self._queue.append(slot)
        with self._writer:
            if not slot.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if slot.error is not None:
            raise slot.error
        return slot.seq

    def _write(self, batch: list[_Slot]) -> None:
        try:
            with self.sessions() as session, session.begin():
                seqs = append_many_in(session, [s.entry for s in batch])
        except BaseException as error:
            for slot in batch:
                slot.error, slot.done = error, True
            return
        for slot, seq in zip(batch, seqs, strict=True):
            slot.seq, slot.done = seq, True


def _as_dict(row: ReadAuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at,
        "subject": row.subject,
        "roles": row.roles,
        "program": row.program,
        "channel": row.channel,
        "route": row.route,
        "purpose": row.purpose,
        "query_kind": row.query_kind,
        "household_ids": row.household_ids,
        "person_ids": row.person_ids,
        "record_count": row.record_count,
        "prev_hash": row.prev_hash,
        "row_hash": row.row_hash,
    }


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row as auditors read it: id lists parsed, the time in ISO 8601."""
    return {
        **row,
        "at": row["at"].isoformat(),
        "roles": [r for r in str(row["roles"]).split(",") if r],
        "household_ids": json.loads(row["household_ids"]),
        "person_ids": json.loads(row["person_ids"]),
    }


@dataclass(frozen=True)
class ReadPage:
    items: list[dict[str, Any]]
    next_before: int | None  # pass as ``before`` for the next (older) page


class ReadAuditLog:
    """The log over one database (``sessions``). Keep one per process (the app keeps it in
    its extensions), so that concurrent appends share commits (``GroupCommit``)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._group = GroupCommit(sessions)

    def append(self, entry: ReadEntry) -> int:
        """Append ``entry`` and return its seq once it is committed."""
        return self._group.append(entry)

    def page(self, filters: ReadFilters, *, before: int | None = None, limit: int = 50) -> ReadPage:
        """Newest first, keyset-paginated on ``seq``: page N costs what page 1 does."""
        limit = max(1, min(limit, MAX_PAGE))
        query = select(ReadAuditRow).order_by(ReadAuditRow.seq.desc()).limit(limit + 1)
        if before is not None:
            query = query.where(ReadAuditRow.seq < before)
        if filters.subject:
            query = query.where(ReadAuditRow.subject == filters.subject)
        if filters.purpose:
            query = query.where(ReadAuditRow.purpose == filters.purpose)
        if filters.since is not None:
            query = query.where(ReadAuditRow.at >= filters.since)
        if filters.until is not None:
            query = query.where(ReadAuditRow.at < filters.until)
        # Ids are canonical UUIDs (checked by the caller), so the quoted form is exact.
        if filters.household_id:
            query = query.where(ReadAuditRow.household_ids.contains(f'"{filters.household_id}"'))
        if filters.person_id:
            query = query.where(ReadAuditRow.person_ids.contains(f'"{filters.person_id}"'))
        with self.sessions() as session:
            rows = [_as_dict(r) for r in session.scalars(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return ReadPage([shown(r) for r in rows], int(rows[-1]["seq"]) if more else None)

    def verify(self, chunk: int = VERIFY_CHUNK) -> Verdict:
        """Walk the chain from the latest anchor to the head; the first break is reported."""
        with self.sessions() as session:
            anchor = latest_anchor(session)
            walker = ChainWalker(anchor)
            for rows in _chunks(session, anchor.seq, None, chunk):
                if not walker.feed(rows):
                    break
            return walker.verdict()

    def purge(self, cutoff: datetime, chunk: int = VERIFY_CHUNK) -> int:
        with self.sessions() as session, session.begin():
            return purge_in(session, cutoff, chunk)


def _chunks(
    session: Session, after: int, upto: int | None, chunk: int
) -> Iterator[list[dict[str, Any]]]:
    while True:
        query = select(ReadAuditRow).where(ReadAuditRow.seq > after)
        if upto is not None:
            query = query.where(ReadAuditRow.seq <= upto)
        rows = [_as_dict(r) for r in session.scalars(query.order_by(ReadAuditRow.seq).limit(chunk))]
        session.expunge_all()
        if not rows:
            return
        yield rows
        after = int(rows[-1]["seq"])


def purge_in(session: Session, cutoff: datetime, chunk: int = VERIFY_CHUNK) -> int:
    """Delete the oldest rows written before ``cutoff`` and record an anchor (the last purged
    row's seq and hash) so verification starts there; return how many rows went.

    Only a prefix of the chain goes (up to the first row at or after ``cutoff``), and only if
    that prefix verifies: a purge never erases the evidence of a tampered row
    (ChainBroken then, and nothing is deleted).
    """
    _lock(session)
    anchor = latest_anchor(session)
    first_kept = session.scalar(
        select(func.min(ReadAuditRow.seq)).where(
            ReadAuditRow.seq > anchor.seq, ReadAuditRow.at >= cutoff
        )
    )
    if first_kept is None:
        last = session.scalar(select(func.max(ReadAuditRow.seq)))
    else:
        last = int(first_kept) - 1
    if last is None or int(last) <= anchor.seq:
        return 0
    last = int(last)
    walker = ChainWalker(anchor)
    for rows in _chunks(session, anchor.seq, last, chunk):
        if not walker.feed(rows):
            break
    verdict = walker.verdict()
    if not verdict.intact or verdict.head_seq != last:
        where = verdict.broken_seq if verdict.broken_seq is not None else verdict.head_seq + 1
        raise ChainBroken(
            f"the read audit does not verify at row {where} ({verdict.reason or 'row missing'}); "
            "nothing was purged"
        )
    if _is_postgresql(session):
        session.execute(text("SELECT set_config(:name, 'on', true)"), {"name": PURGE_SETTING})
    deleted = 0
    start = anchor.seq
    while start < last:
        stop = min(start + chunk, last)
        result = session.execute(
            delete(ReadAuditRow).where(ReadAuditRow.seq > start, ReadAuditRow.seq <= stop)
        )
        deleted += int(getattr(result, "rowcount", 0) or 0)
        start = stop
    if _is_postgresql(session):
        session.execute(text("SELECT set_config(:name, 'off', true)"), {"name": PURGE_SETTING})
    session.add(ReadAuditAnchor(last_seq=last, last_hash=verdict.head_hash, purged=deleted))
    session.flush()
    return deleted
