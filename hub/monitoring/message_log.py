"""The message log: one row per inbound or outbound exchange, kept within fixed bounds.

When a partner says "we sent it" or a program says "we never got it", staff need the facts:
which message, when, how big, what happened to it and why. Rows hold metadata only (ids,
connector or subscription, routing key, size, status, error reason, times). The body is kept
only for connectors/subscriptions configured to (``message_log_bodies``), sealed with the hub's
AES-GCM key (``IdentifierCipher.seal``), because bodies carry personal data.

Storage stays bounded: ``enforce_retention`` deletes rows older than ``max_age`` and then the
oldest rows beyond ``max_rows`` and ``max_bytes`` (sizes of bodies and sealed bodies counted).
``retention_job`` is this package's retention job: the monitoring thread runs it on a schedule
and ``srhub monitoring prune`` on demand, with the other packages' jobs.

Writes go through ``MessageLogWriter``: a queue flushed by one thread in small transactions, so
a publisher or a worker never waits on (or fails because of) the log. The monitoring
middleware (``hub.monitoring.middleware``) submits the records: an inbound row is created when
the connector publishes (status ``received``) and updated by the ingest outcome; the oldest
``received`` row of a connector is its lag. There is no process-wide writer: whoever starts the
writer hands it to the middleware and to the health model.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CursorResult,
    Index,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from hub.settings import MonitoringSettings
from hub.workers.retention import RetentionJob
from registry_core.db import Base, UTCDateTime, delete_older_than
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

INBOUND = "in"
OUTBOUND = "out"
RECEIVED = "received"  # published to sr.inbound, not processed yet
PENDING_STATUSES = (RECEIVED,)
SEAL_CONTEXT = "srhub.message_log"

NOTES_LENGTH = 1000
_Key = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class MessageLogEntry(Base):
    __tablename__ = "message_log"
    __table_args__ = (
        Index("ix_message_log_connector_id", "connector", "id"),
        Index("ix_message_log_status_id", "status", "id"),
        Index("ix_message_log_message", "message_id", "direction"),
        Index("ix_message_log_pending", "status", "connector", "started_at"),
        Index("ix_message_log_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(_Key, primary_key=True, autoincrement=True)
    direction: Mapped[str] = mapped_column(String(3), nullable=False)
    connector: Mapped[str] = mapped_column(String(128), nullable=False)  # or subscription
    partner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    subscription: Mapped[str | None] = mapped_column(String(128), nullable=True)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False)
    routing_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Data-quality notes of a handled record (a partner's identifier dropped, and why; the
    # reason a record went to review): what staff need to answer "what happened to it".
    notes: Mapped[str | None] = mapped_column(String(NOTES_LENGTH), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    body_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


COLUMNS = (
    "id",
    "direction",
    "connector",
    "partner",
    "subscription",
    "message_id",
    "routing_key",
    "size",
    "status",
    "error",
    "notes",
    "started_at",
    "finished_at",
)


# ---------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class LogRecord:
    """One exchange to record, or (``update=True``) the outcome of an inbound one."""

    direction: str
    connector: str
    message_id: str
    status: str
    started_at: datetime
    routing_key: str | None = None
    size: int = 0
    error: str | None = None
    finished_at: datetime | None = None
    partner: str | None = None
    subscription: str | None = None
    body: bytes | None = None
    update: bool = False
    notes: str | None = None


def write_records(session: Session, records: Sequence[LogRecord], seal: Callable[..., Any]) -> None:
    """Apply ``records`` in order: inserts, and outcome updates (inserting when the row is not
    there: published by another process, or recorded before monitoring started)."""
    pending: list[dict[str, Any]] = []

    def flush_inserts() -> None:
        if pending:
            session.execute(insert(MessageLogEntry), pending)
            pending.clear()

    for record in records:
        row = {
            "direction": record.direction,
            "connector": record.connector[:128],
            "partner": record.partner,
            "subscription": record.subscription,
            "message_id": record.message_id[:255],
            "routing_key": record.routing_key,
            "size": record.size,
            "status": record.status[:32],
            "error": record.error[:500] if record.error else None,
            "notes": record.notes[:NOTES_LENGTH] if record.notes else None,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "body_sealed": seal(record.body) if record.body is not None else None,
        }
        if not record.update:
            pending.append(row)
            continue
        flush_inserts()
        changed = cast(
            CursorResult[Any],
            session.execute(
                update(MessageLogEntry)
                .where(
                    MessageLogEntry.message_id == row["message_id"],
                    MessageLogEntry.direction == record.direction,
                )
                .values(
                    status=row["status"],
                    error=row["error"],
                    notes=row["notes"],
                    finished_at=row["finished_at"],
                )
            ),
        ).rowcount
        if not changed:
            pending.append(row)
    flush_inserts()


class MessageLogWriter:
    """Buffers log records and writes them from one background thread.

    ``submit`` never blocks and never raises: when the buffer is full (the database is down for
    long) records are dropped and counted in ``dropped``, because the log must not stop traffic.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: Any | None = None,
        *,
        body_connectors: Iterable[str] = (),
        flush_interval: float = 0.5,
        max_buffer: int = 50_000,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._bodies = frozenset(body_connectors)
        self._queue: queue.Queue[LogRecord] = queue.Queue(max_buffer)
        self._interval = flush_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.dropped = 0
        self.written = 0
        self.last_error: str | None = None

    def keeps_body(self, connector: str) -> bool:
        return self._cipher is not None and ("*" in self._bodies or connector in self._bodies)

    def submit(self, record: LogRecord) -> None:
        if record.body is not None and not self.keeps_body(record.connector):
            record = LogRecord(**{**record.__dict__, "body": None})
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _seal(self, body: bytes) -> bytes:
        assert self._cipher is not None  # keeps_body checked it
        sealed: bytes = self._cipher.seal(SEAL_CONTEXT, body)
        return sealed

    def flush(self) -> int:
        """Write everything buffered now; returns how many records were written."""
        with self._flush_lock:
            batch: list[LogRecord] = []
            while len(batch) < 5000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not batch:
                return 0
            try:
                with self._sessions.begin() as session:
                    write_records(session, batch, self._seal)
            except Exception as exc:  # the log is best effort: say why, keep the hub running
                self.dropped += len(batch)
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                log.warning("message log: %d records not written: %s", len(batch), self.last_error)
                return 0
            self.written += len(batch)
            return len(batch)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            while self.flush():
                pass
        while self.flush():
            pass

    def start(self) -> MessageLogWriter:
        self._thread = threading.Thread(target=self._run, name="srhub-message-log", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


# ---------------------------------------------------------------------------- reading


def entry_dict(row: Any) -> dict[str, Any]:
    found = {name: getattr(row, name) for name in COLUMNS}
    for name in ("started_at", "finished_at"):
        found[name] = found[name].isoformat() if found[name] else None
    found["has_body"] = getattr(row, "body_sealed", None) is not None
    duration = None
    if row.finished_at and row.started_at:
        duration = round((row.finished_at - row.started_at).total_seconds() * 1000, 1)
    found["duration_ms"] = duration
    return found


def list_messages(
    session: Session,
    *,
    connector: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, keyset-paginated on ``id``: pass the returned cursor as ``before`` for the
    next page (None when there is none). Each filter combination is served by an index on
    (filter column, id), so a page costs the same on the millionth row as on the first."""
    columns = [getattr(MessageLogEntry, name) for name in COLUMNS]
    query = select(*columns, MessageLogEntry.body_sealed.is_not(None).label("has_body"))
    if connector:
        query = query.where(MessageLogEntry.connector == connector)
    if status:
        query = query.where(MessageLogEntry.status == status)
    if direction:
        query = query.where(MessageLogEntry.direction == direction)
    if before is not None:
        query = query.where(MessageLogEntry.id < before)
    rows = session.execute(query.order_by(MessageLogEntry.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    items = []
    for row in page:
        item = entry_dict(row)
        item["has_body"] = bool(row.has_body)
        items.append(item)
    cursor = page[-1].id if len(rows) > limit else None
    return items, cursor


def read_body(session: Session, entry_id: int, cipher: Any) -> bytes | None:
    """The unsealed body of one entry (for admins investigating one exchange), if kept."""
    sealed = session.execute(
        select(MessageLogEntry.body_sealed).where(MessageLogEntry.id == entry_id)
    ).scalar_one_or_none()
    if sealed is None:
        return None
    body: bytes = cipher.unseal(SEAL_CONTEXT, sealed)
    return body


def pending_by_connector(session: Session) -> dict[str, dict[str, Any]]:
    """Per connector: how many inbound messages wait to be processed, and since when."""
    rows = session.execute(
        select(
            MessageLogEntry.connector,
            func.count(),
            func.min(MessageLogEntry.started_at),
        )
        .where(MessageLogEntry.status.in_(PENDING_STATUSES))
        .where(MessageLogEntry.direction == INBOUND)
        .group_by(MessageLogEntry.connector)
    ).all()
    return {name: {"backlog": int(count), "oldest_at": oldest} for name, count, oldest in rows}


# ---------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class RetentionPolicy:
    """How much log to keep: rows younger than ``max_age``, at most ``max_rows`` rows and
    ``max_bytes`` of stored bodies (``size`` plus sealed body length), newest kept first."""

    max_age: timedelta = timedelta(days=30)
    max_rows: int = 1_000_000
    max_bytes: int = 1 << 30

    @classmethod
    def from_settings(cls, config: MonitoringSettings) -> RetentionPolicy:
        return cls(
            max_age=timedelta(days=config.message_log_max_age_days),
            max_rows=config.message_log_max_rows,
            max_bytes=config.message_log_max_bytes,
        )


@dataclass(frozen=True)
class RetentionResult:
    deleted_by_age: int
    deleted_by_rows: int
    deleted_by_bytes: int
    rows_left: int
    bytes_left: int

    @property
    def deleted(self) -> int:
        return self.deleted_by_age + self.deleted_by_rows + self.deleted_by_bytes


_ROW_BYTES = MessageLogEntry.size + func.coalesce(func.length(MessageLogEntry.body_sealed), 0)
_CHUNK = 10_000  # rows deleted per statement: keeps each transaction short


def _delete_ids_below(session: Session, cutoff_id: int) -> int:
    """Delete every row with ``id < cutoff_id``, in chunks."""
    total = 0
    while True:
        ids = (
            session.execute(
                select(MessageLogEntry.id)
                .where(MessageLogEntry.id < cutoff_id)
                .order_by(MessageLogEntry.id)
                .limit(_CHUNK)
            )
            .scalars()
            .all()
        )
        if not ids:
            return total
        session.execute(delete(MessageLogEntry).where(MessageLogEntry.id.in_(ids)))
        total += len(ids)


def enforce_retention(
    session: Session, policy: RetentionPolicy, now: datetime | None = None
) -> RetentionResult:
    """Delete by age (``started_at``), then the oldest rows beyond the row and byte limits
    (ids grow with time, so there "oldest" is "lowest id"). Every step walks an index and
    deletes in chunks."""
    now = now or utcnow()
    by_rows = by_bytes = 0
    cutoff_time = now - policy.max_age
    # by age: exact, along the started_at index, in chunks
    by_age = delete_older_than(
        session, MessageLogEntry.id, MessageLogEntry.started_at, cutoff_time, _CHUNK
    )

    count = session.execute(select(func.count()).select_from(MessageLogEntry)).scalar() or 0
    if count > policy.max_rows:
        cutoff = session.execute(
            select(MessageLogEntry.id)
            .order_by(MessageLogEntry.id.desc())
            .offset(policy.max_rows)
            .limit(1)
        ).scalar()
        if cutoff is not None:
            by_rows = _delete_ids_below(session, cutoff + 1)

    total_bytes = session.execute(select(func.coalesce(func.sum(_ROW_BYTES), 0))).scalar() or 0
    if total_bytes > policy.max_bytes:
        # Walk from the newest down until the budget is spent; delete everything older.
        kept = 0
        cutoff_id: int | None = None
        last_id: int | None = None
        while cutoff_id is None:
            query = select(MessageLogEntry.id, _ROW_BYTES).order_by(MessageLogEntry.id.desc())
            if last_id is not None:
                query = query.where(MessageLogEntry.id < last_id)
            chunk = session.execute(query.limit(_CHUNK)).all()
            if not chunk:
                break
            for row_id, row_bytes in chunk:
                if kept + int(row_bytes) > policy.max_bytes:
                    cutoff_id = row_id
                    break
                kept += int(row_bytes)
            last_id = chunk[-1][0]
        if cutoff_id is not None:
            by_bytes = _delete_ids_below(session, cutoff_id + 1)

    rows_left = session.execute(select(func.count()).select_from(MessageLogEntry)).scalar() or 0
    bytes_left = session.execute(select(func.coalesce(func.sum(_ROW_BYTES), 0))).scalar() or 0
    return RetentionResult(by_age, by_rows, by_bytes, int(rows_left), int(bytes_left))


def retention_job(policy: RetentionPolicy) -> RetentionJob:
    """The message log's retention job (``hub.workers.retention``)."""
    return RetentionJob("message_log", lambda session: enforce_retention(session, policy))
