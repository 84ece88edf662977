"""Retention of the DCI transactions: this package's retention job.

A DCI sync search writes one transaction row (at a thousand searches a second that is 86
million rows a day), and nothing else removes them. They are what ``txn/status`` answers, so
they are kept for ``dci_transaction_max_age_days`` (``settings.monitoring``, default 30), then
deleted oldest first along the index on ``created_at``, in chunks, so a prune never holds a long
lock. The application runs the job with the others (``hub.workers.retention``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hub.dci.tables import DciTransaction
from hub.workers.retention import RetentionJob
from registry_core.db import delete_older_than
from standards.timeutil import utcnow

NAME = "dci_transactions"
DEFAULT_MAX_AGE_DAYS = 30


def prune_transactions(
    session: Session, max_age: timedelta, now: datetime | None = None, chunk: int = 10_000
) -> int:
    """Delete DCI transactions older than ``max_age``; return how many."""
    cutoff = (now or utcnow()) - max_age
    return delete_older_than(
        session, DciTransaction.correlation_id, DciTransaction.created_at, cutoff, chunk
    )


def retention_job(max_age_days: float = DEFAULT_MAX_AGE_DAYS) -> RetentionJob:
    """The job, keeping rows for ``max_age_days`` (the application passes
    ``settings.monitoring.dci_transaction_max_age_days``, checked when the settings were read)."""
    max_age = timedelta(days=max_age_days)
    return RetentionJob(NAME, lambda session: prune_transactions(session, max_age))
