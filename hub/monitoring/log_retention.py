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
``srhub monitoring prune`` on demand. Settings live in ``settings.extra``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.dci.tables import DciTransaction
from hub.settings import SettingsError
from hub.subscriptions.tables import DeliveryAttempt
from registry_core.db import delete_older_than, utcnow


@dataclass(frozen=True)
class LogAges:
    dci_transactions: timedelta = timedelta(days=30)
    delivery_log: timedelta = timedelta(days=90)

    @classmethod
    def from_settings(cls, extra: dict[str, Any]) -> LogAges:
        """Read from ``settings.extra``; a value that is not a positive number of days is a
        SettingsError naming the key (read at start, so a typo never waits for the first
        prune)."""
        return cls(
            dci_transactions=_days(extra, "dci_transaction_max_age_days", 30),
            delivery_log=_days(extra, "delivery_log_max_age_days", 90),
        )


def _days(extra: dict[str, Any], key: str, default: float) -> timedelta:
    value = extra.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SettingsError(f"extra.{key} must be a positive number of days")
    return timedelta(days=value)


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
