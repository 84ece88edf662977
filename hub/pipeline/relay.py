"""The outbox relay: moves committed change events from the ``outbox`` table to ``sr.events``.

The registry writes events in the same transaction as the change (transactional outbox); the
relay publishes them afterwards. Its promises:

- At least once. Rows are marked ``published_at`` only after the broker confirmed the whole
  batch. A crash in between leaves them unmarked and they are published again; consumers are
  idempotent on the message id (= the event id), so the duplicate has no second effect.
- Fast. One claim query, one batch publish waiting for all confirms together (not one round
  trip per message), one update: the per-message cost is building a JSON body.
- Nothing malformed reaches subscribers, and nothing malformed blocks the rest: a row whose
  envelope or routing key is invalid is sent to ``sr.dead`` (routing key ``outbox.invalid``)
  with the reason instead, and marked like the others.
- Per-subject order. Rows go out in ``sequence`` order, and a row is held back while an earlier
  unpublished row of the same subject is claimed by someone else.
- Two relays do not double-publish in the normal case. On PostgreSQL the claim is
  ``SELECT ... FOR UPDATE SKIP LOCKED`` inside one transaction that lasts until the rows are
  marked. SQLite has one write lock for the whole file: holding it across a publish would stall
  every other writer (the registry, consumers) for the publish's round trip, and deadlock
  against the embedded broker, which writes to the same file. So on SQLite the relay uses two
  short transactions (read, then mark after the confirms), and relays take turns through an
  exclusive lock on a file beside the database (released by the OS if the process dies).

Limitation worth knowing: on PostgreSQL ``sequence`` is assigned at insert, not at commit, so a
transaction that inserts an event and commits after a later one can be published after it. The
registry core serialises changes to one subject (row locks), which keeps per-subject order.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, sessionmaker

from hub.broker.base import EXCHANGE_DEAD, EXCHANGE_EVENTS, Broker, DeadLetterReason, Message
from hub.broker.messages import InvalidMessage, check_message, dead_letter_headers
from registry_core.models import OutboxEvent
from registry_core.outbox import to_cloudevent
from standards.cloudevents import CONTENT_TYPE, EnvelopeError, to_json_bytes, validate_event
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

DEAD_ROUTING_KEY = "outbox.invalid"
OUTBOX_PLACE = "outbox"  # x-sr-original-queue of a row the relay refused: it never left it

_COLUMNS = (
    OutboxEvent.sequence,
    OutboxEvent.event_id,
    OutboxEvent.type,
    OutboxEvent.routing_key,
    OutboxEvent.source,
    OutboxEvent.subject,
    OutboxEvent.time,
    OutboxEvent.data,
)

# In-process exclusion for SQLite relays sharing a lock file (flock is per open file, but one
# process may also run two relays on threads).
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def message_for(row: Row[Any] | OutboxEvent, envelope: dict[str, Any] | None = None) -> Message:
    """The broker message of an outbox row: its CloudEvent (``to_cloudevent``, the project's
    one builder) as JSON, keyed by the event id."""
    return Message(
        body=to_json_bytes(envelope if envelope is not None else to_cloudevent(row)),
        routing_key=row.routing_key,
        message_id=row.event_id,
        content_type=CONTENT_TYPE,
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in batches; ``run_once`` does one batch.

    ``broker`` is used from the calling thread only (pika's rule). ``after_publish`` is called
    with the published event ids after the broker confirmed them and before they are marked;
    tests use it to simulate a crash at the worst moment.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        broker: Broker,
        batch_size: int = 500,
        *,
        exchange: str = EXCHANGE_EVENTS,
        after_publish: Callable[[list[str]], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.session_factory = session_factory
        self.broker = broker
        self.batch_size = batch_size
        self.exchange = exchange
        self.after_publish = after_publish
        self.published_total = 0
        self._dialect: str | None = None
        self._lock_path: Path | None = None
        self._database_path: Path | None = None

    # -- public ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Publish up to ``batch_size`` events; return how many were published and marked.

        Raises the broker's errors (``ConnectionClosed``, ``PublishNotConfirmed``,
        ``Unroutable``) after rolling back: the rows stay unpublished and the next call retries.
        """
        if self._backend() == "postgresql":
            count = self._run_locked_rows()
        else:
            count = self._run_serialised()
        self.published_total += count
        return count

    def drain(self, max_batches: int | None = None) -> int:
        """Run batches until the outbox is empty (or ``max_batches``); return the total."""
        total = 0
        batches = 0
        while max_batches is None or batches < max_batches:
            count = self.run_once()
            total += count
            batches += 1
            if count == 0:
                break
        return total

    # -- PostgreSQL: row locks held from claim to mark ------------------------------------

    def _run_locked_rows(self) -> int:
        with self.session_factory() as session, session.begin():
            rows = session.execute(
                select(*_COLUMNS)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.sequence)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            rows = self._without_blocked_subjects(session, rows)
            if not rows:
                return 0
            self._publish(rows)
            self._mark(session, rows)
        return len(rows)

    def _without_blocked_subjects(
        self, session: Session, rows: Sequence[Row[Any]]
    ) -> list[Row[Any]]:
        """Drop rows that have an earlier unpublished row of their subject outside this batch.

        Such an earlier row is claimed by another relay (it was skipped as locked); publishing
        the later one now would overtake it.
        """
        if not rows:
            return []
        ours = [row.sequence for row in rows]
        subjects = sorted({row.subject for row in rows})
        earliest_foreign = dict(
            session.execute(
                select(OutboxEvent.subject, OutboxEvent.sequence)
                .where(
                    OutboxEvent.published_at.is_(None),
                    OutboxEvent.subject.in_(subjects),
                    OutboxEvent.sequence < max(ours),
                    OutboxEvent.sequence.not_in(ours),
                )
                .order_by(OutboxEvent.sequence.desc())
            ).all()
        )  # descending, so dict() keeps the smallest sequence per subject
        if not earliest_foreign:
            return list(rows)
        return [
            row
            for row in rows
            if row.subject not in earliest_foreign or row.sequence < earliest_foreign[row.subject]
        ]

    # -- SQLite: one relay at a time, short transactions ----------------------------------

    def _run_serialised(self) -> int:
        with self._exclusive() as acquired:
            if not acquired:
                return 0  # another relay is publishing; it will get these rows
            with self.session_factory() as session:
                with session.begin():
                    rows = session.execute(
                        select(*_COLUMNS)
                        .where(OutboxEvent.published_at.is_(None))
                        .order_by(OutboxEvent.sequence)
                        .limit(self.batch_size)
                    ).all()
                if not rows:
                    return 0
                self._publish(rows)
                with session.begin():
                    self._mark(session, rows)
        return len(rows)

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        path = self._lock_path
        if path is None:  # in-memory database: only this process can see it
            lock = _process_lock(":memory:")
            got = lock.acquire(blocking=False)
            try:
                yield got
            finally:
                if got:
                    lock.release()
            return
        lock = _process_lock(str(path))
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            lock.release()

    # -- shared ----------------------------------------------------------------------------

    def _publish(self, rows: Sequence[Row[Any]]) -> None:
        good: list[Message] = []
        bad: list[Message] = []
        for row in rows:
            envelope = to_cloudevent(row)
            message = message_for(row, envelope)
            problem = _problem_with(envelope, message)
            if problem is None:
                good.append(message)
            else:
                bad.append(_dead_copy(row, message, problem, self.exchange))
        if good:
            self.broker.publish(self.exchange, good)
        if bad:
            # A malformed row must not block the outbox behind it, nor reach subscribers:
            # it goes to sr.dead with the reason, and is marked like the others.
            log.error("relay: %d malformed outbox event(s) sent to %s", len(bad), EXCHANGE_DEAD)
            self.broker.publish(EXCHANGE_DEAD, bad)
        if self.after_publish is not None:
            self.after_publish([row.event_id for row in rows])

    def _mark(self, session: Session, rows: Sequence[Row[Any]]) -> None:
        session.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.sequence.in_([row.sequence for row in rows]),
                OutboxEvent.published_at.is_(None),
            )
            .values(published_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    def _backend(self) -> str:
        if self._dialect is None:
            with self.session_factory() as session:
                bind = session.get_bind()
            self._dialect = bind.dialect.name
            if self._dialect == "sqlite":
                self._database_path = _sqlite_path(bind.engine.url.database)
                if self._database_path is not None:
                    self._lock_path = self._database_path.with_name(
                        self._database_path.name + ".relay.lock"
                    )
        return self._dialect


def _problem_with(envelope: dict[str, Any], message: Message) -> str | None:
    """Why ``message`` cannot go to subscribers (invalid envelope or routing key), or None."""
    try:
        validate_event(envelope)
        check_message(message)
    except (EnvelopeError, InvalidMessage) as exc:
        return str(exc)
    return None


def _dead_copy(row: Row[Any], message: Message, problem: str, exchange: str) -> Message:
    """The copy of a malformed row for ``sr.dead``: the same ``x-sr-*`` headers as any dead
    letter (``dead_letter_headers``), from the outbox rather than a queue."""
    reason = DeadLetterReason.now("InvalidOutboxEvent", f"outbox row {row.sequence}: {problem}", 1)
    return Message(
        body=message.body,
        routing_key=DEAD_ROUTING_KEY,
        message_id=str(row.event_id),
        headers=dead_letter_headers(message, reason, exchange=exchange, queue=OUTBOX_PLACE),
        content_type=CONTENT_TYPE,
    )


def _sqlite_path(database: str | None) -> Path | None:
    """The file of a SQLite database name, or None for in-memory / URI databases."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).resolve()


def _process_lock(key: str) -> threading.Lock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())
