"""When a household is due for recertification: the policy and its date arithmetic.

A household is certified when it is registered, when a field submission about it is applied,
or when staff confirm it. The policy turns the day of the last certification into a due date
(``interval_days`` later) and a day into a state:

- ``current``: before the reminder window;
- ``due``: from ``reminder_days`` before the due date until ``grace_days`` after it;
- ``overdue``: later than that. Overdue households are flagged, never deleted or deactivated.

Pure functions, so the arithmetic is tested without a database; the storage and the periodic
round are ``registry_core.services.recertification``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


class RecertificationState:
    CURRENT = "current"
    DUE = "due"
    OVERDUE = "overdue"
    ALL = (CURRENT, DUE, OVERDUE)


@dataclass(frozen=True)
class RecertificationPolicy:
    """Registry-wide recertification rule (``settings.recertification`` in the hub)."""

    interval_days: int = 730
    reminder_days: int = 60
    grace_days: int = 0

    def __post_init__(self) -> None:
        if self.interval_days < 1:
            raise ValueError("interval_days must be at least 1")
        if self.reminder_days < 0 or self.grace_days < 0:
            raise ValueError("reminder_days and grace_days must not be negative")

    def due_on(self, certified_at: datetime | date) -> date:
        """The due date of a certification made at ``certified_at`` (its calendar day, UTC)."""
        day = certified_at.date() if isinstance(certified_at, datetime) else certified_at
        return day + timedelta(days=self.interval_days)

    def reminder_from(self, due_on: date) -> date:
        """The first day of the reminder window of a cycle due on ``due_on``."""
        return due_on - timedelta(days=self.reminder_days)

    def overdue_from(self, due_on: date) -> date:
        """The first day a household due on ``due_on`` is overdue."""
        return due_on + timedelta(days=self.grace_days + 1)

    def latest_due_in_window(self, today: date) -> date:
        """The latest due date whose reminder window has begun on ``today``."""
        return today + timedelta(days=self.reminder_days)

    def latest_due_overdue(self, today: date) -> date:
        """The latest due date that is overdue on ``today``."""
        return today - timedelta(days=self.grace_days + 1)

    def state_on(self, due_on: date, today: date) -> str:
        """``current``, ``due`` or ``overdue`` on ``today`` for a cycle due on ``due_on``."""
        if today >= self.overdue_from(due_on):
            return RecertificationState.OVERDUE
        if today >= self.reminder_from(due_on):
            return RecertificationState.DUE
        return RecertificationState.CURRENT
