"""Retention by age for the hub's other growing logs: DCI transactions and the delivery log.

Both grow with traffic and nothing else removes their rows: a DCI sync search writes one
transaction row (at a thousand searches a second that is 86 million rows a day), and every
delivery attempt to a subscriber writes one log row. They are kept for a set time, then
deleted oldest first along an index on their time column, in chunks, so a prune never holds a
long lock:

- ``dci_transactions`` (what txn/status answers): ``dci_transaction_max_age_days``, 30;
- ``subscription_deliveries`` (who received what, when, in which attempt):
  ``delivery_log_max_age_days``, 90. Its rows also let a sender recognise an event it already
  handed over after a crash; that matters for minutes, not months.

``srhub run`` prunes them with the message log (``Monitoring.prune``), and
``srhub monitoring prune`` on demand. Settings live in ``settings.monitoring``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hub.dci.tables import DciTransaction
from hub.settings import MonitoringSettings
from hub.subscriptions.tables import DeliveryAttempt
from registry_core.db import delete_older_than, utcnow


@dataclass(frozen=True)
class LogAges:
    dci_transactions: timedelta = timedelta(days=30)
    delivery_log: timedelta = timedelta(days=90)

    @classmethod
    def from_settings(cls, config: MonitoringSettings) -> LogAges:
        """Read from ``settings.monitoring`` (whose reader refused, at start, an age that is
        not a positive number of days)."""
        return cls(
            dci_transactions=timedelta(days=config.dci_transaction_max_age_days),
            delivery_log=timedelta(days=config.delivery_log_max_age_days),
        )


def prune_logs(
    session: Session, ages: LogAges, now: datetime | None = None, chunk: int = 10_000
) -> dict[str, int]:
    """Delete DCI transactions and delivery-log rows past their age; counts by log."""
    now = now or utcnow()
    return {
        "dci_transactions": delete_older_than(
            session,
            DciTransaction.correlation_id,
            DciTransaction.created_at,
            now - ages.dci_transactions,
            chunk,
        ),
        "delivery_log": delete_older_than(
            session, DeliveryAttempt.id, DeliveryAttempt.started_at, now - ages.delivery_log, chunk
        ),
    }
