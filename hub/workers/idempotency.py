"""The processed-message store: how an at-least-once broker gives exactly-once effects.

Every consumer records the ids of the messages it has handled, keyed by (consumer, message id),
in the same database transaction as the handler's own writes. A redelivered or re-published
copy finds its id already there and is acknowledged without running the handler again; a crash
before the commit leaves neither the effect nor the record, so the retry runs the handler again.

The table only needs to remember ids for as long as a duplicate can still arrive (the relay
re-publishes after a crash, the broker redelivers unacked messages), so ``purge`` bounds it by
age and by count per consumer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Index, String, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.workers.retention import RetentionJob
from registry_core.db import Base
from standards.timeutil import utcnow

DEFAULT_MAX_AGE = timedelta(days=7)
DEFAULT_MAX_COUNT = 1_000_000  # per consumer


class ProcessedMessage(Base):
    """One message id a consumer has fully handled (its effect is committed)."""

    __tablename__ = "processed_messages"
    __table_args__ = (Index("ix_processed_messages_consumer_time", "consumer", "processed_at"),)

    consumer: Mapped[str] = mapped_column(String(128), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


def already_processed(session: Session, consumer: str, message_id: str) -> bool:
    """True if ``consumer`` has committed the handling of ``message_id``."""
    found = session.execute(
        select(ProcessedMessage.message_id).where(
            ProcessedMessage.consumer == consumer, ProcessedMessage.message_id == message_id
        )
    ).first()
    return found is not None


def known_ids(session: Session, consumer: str, message_ids: Sequence[str]) -> set[str]:
    """Which of ``message_ids`` ``consumer`` has already processed (one query for a batch)."""
    if not message_ids:
        return set()
    rows = session.execute(
        select(ProcessedMessage.message_id).where(
            ProcessedMessage.consumer == consumer,
            ProcessedMessage.message_id.in_(sorted(set(message_ids))),
        )
    )
    return {row[0] for row in rows}


def record_many(session: Session, consumer: str, message_ids: Sequence[str]) -> None:
    """Record a batch of ids in one statement inside the caller's transaction.

    The caller has checked them with ``known_ids``; a concurrent worker that recorded one of
    them in the meantime makes this raise ``IntegrityError`` (and the caller's transaction must
    be rolled back), so a duplicate can never commit its effect twice.
    """
    if not message_ids:
        return
    now = utcnow()
    session.execute(
        insert(ProcessedMessage),
        [{"consumer": consumer, "message_id": mid, "processed_at": now} for mid in message_ids],
    )


def claim(session: Session, consumer: str, message_id: str) -> bool:
    """Record ``message_id`` as processed by ``consumer`` inside the caller's transaction.

    Returns False if it was already recorded (a duplicate: skip the handler). Runs in a
    SAVEPOINT so a duplicate-key race with another worker only undoes this claim; on PostgreSQL
    the second claimant waits for the first to commit and then sees the conflict.
    """
    if already_processed(session, consumer, message_id):
        return False
    try:
        with session.begin_nested():
            session.add(ProcessedMessage(consumer=consumer, message_id=message_id))
    except IntegrityError:
        return False
    return True


def purge(
    session: Session,
    consumer: str | None = None,
    *,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_count: int = DEFAULT_MAX_COUNT,
    now: datetime | None = None,
) -> int:
    """Forget ids older than ``max_age`` and all but the newest ``max_count`` per consumer.

    ``consumer=None`` purges every consumer. Returns how many rows were deleted. The caller
    commits (``hub.workers.runtime`` calls this now and then in its own short transaction).
    """
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    cutoff = (now or utcnow()) - max_age
    by_age = delete(ProcessedMessage).where(ProcessedMessage.processed_at < cutoff)
    if consumer is not None:
        by_age = by_age.where(ProcessedMessage.consumer == consumer)
    deleted = _rowcount(session, by_age)

    consumers = (
        [consumer]
        if consumer is not None
        else list(session.scalars(select(ProcessedMessage.consumer).distinct()))
    )
    for name in consumers:
        # The processed_at of the max_count-th newest row is the oldest one we keep.
        boundary = session.execute(
            select(ProcessedMessage.processed_at, ProcessedMessage.message_id)
            .where(ProcessedMessage.consumer == name)
            .order_by(ProcessedMessage.processed_at.desc(), ProcessedMessage.message_id.desc())
            .offset(max_count - 1)
            .limit(1)
        ).first()
        if boundary is None:
            continue
        kept_time, kept_id = boundary
        older = delete(ProcessedMessage).where(
            ProcessedMessage.consumer == name,
            (ProcessedMessage.processed_at < kept_time)
            | (
                (ProcessedMessage.processed_at == kept_time)
                & (ProcessedMessage.message_id < kept_id)
            ),
        )
        deleted += _rowcount(session, older)
    return deleted


def _rowcount(session: Session, statement: Any) -> int:
    return cast(CursorResult[Any], session.execute(statement)).rowcount or 0


def retention_job(
    consumer: str | None = None,
    *,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_count: int = DEFAULT_MAX_COUNT,
) -> RetentionJob:
    """The store's retention job: one consumer's ids (the runtime purges its own now and
    then) or every consumer's (``None``: the scheduled and on-demand prunes)."""
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    return RetentionJob(
        "processed_messages",
        lambda session: purge(session, consumer, max_age=max_age, max_count=max_count),
    )
