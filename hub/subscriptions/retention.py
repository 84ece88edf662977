"""Retention of the delivery log: this package's retention job.

Every delivery attempt to a subscriber writes one ``subscription_deliveries`` row (who received
what, when, in which attempt), and nothing else removes them. They are kept for
``delivery_log_max_age_days`` (``settings.monitoring``, default 90), then deleted oldest first along
the index on ``started_at``, in chunks. The rows also let a sender recognise an event it already
handed over after a crash; that matters for minutes, not months. The application runs the job
with the others (``hub.workers.retention``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hub.subscriptions.tables import DeliveryAttempt
from hub.workers.retention import RetentionJob
from registry_core.db import delete_older_than
from standards.timeutil import utcnow

NAME = "delivery_log"
DEFAULT_MAX_AGE_DAYS = 90


def prune_delivery_log(
    session: Session, max_age: timedelta, now: datetime | None = None, chunk: int = 10_000
) -> int:
    """Delete delivery-log rows older than ``max_age``; return how many."""
    cutoff = (now or utcnow()) - max_age
    return delete_older_than(session, DeliveryAttempt.id, DeliveryAttempt.started_at, cutoff, chunk)


def retention_job(max_age_days: float = DEFAULT_MAX_AGE_DAYS) -> RetentionJob:
    """The job, keeping rows for ``max_age_days`` (the application passes
    ``settings.monitoring.delivery_log_max_age_days``, checked when the settings were read)."""
    max_age = timedelta(days=max_age_days)
    return RetentionJob(NAME, lambda session: prune_delivery_log(session, max_age))
