"""When a household is due for recertification: the policy and its date arithmetic.

A household is certified when it is registered, when a field submission about it is applied,
or when staff confirm it. The policy turns the day of the last certification into a due date
(``interval_days`` later) and a day into a state:

- ``current``: before the reminder window;
- ``due``: from ``reminder_days`` before the due date until ``grace_days`` after it;
- ``overdue``: later than that. Overdue households are flagged, never deleted or deactivated.

The interval may differ by program (``program_intervals``): a household enrolled in programs
(an active consent of the program covers it or one of its members, the registry's record of
enrolment) is due after the shortest interval among them, a program without an interval of
its own counting the registry-wide one; a household in no program uses the registry-wide one.

Pure functions, so the arithmetic is tested without a database; the storage and the periodic
round are ``registry_core.services.recertification``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


class RecertificationState:
    CURRENT = "current"
    DUE = "due"
    OVERDUE = "overdue"
    ALL = (CURRENT, DUE, OVERDUE)


@dataclass(frozen=True)
class RecertificationPolicy:
    """The recertification rule (``settings.recertification`` in the hub): a registry-wide
    interval, and per-program intervals (program code -> days) that override it for the
    households enrolled in those programs."""

    interval_days: int = 730
    reminder_days: int = 60
    grace_days: int = 0
    program_intervals: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.interval_days < 1:
            raise ValueError("interval_days must be at least 1")
        if self.reminder_days < 0 or self.grace_days < 0:
            raise ValueError("reminder_days and grace_days must not be negative")
        for program, days in self.program_intervals.items():
            if not program or days < 1:
                raise ValueError(f"the interval of program {program!r} must be at least 1 day")

    def interval_for(self, programs: Iterable[str] = ()) -> int:
        """Days between certifications of a household enrolled in ``programs``: the shortest
        of their intervals (the registry-wide one for a program without its own), or the
        registry-wide one for a household in no program."""
        intervals = [self.program_intervals.get(p, self.interval_days) for p in programs]
        return min(intervals, default=self.interval_days)

    def due_on(self, certified_at: datetime | date, programs: Iterable[str] = ()) -> date:
        """The due date of a certification made at ``certified_at`` (its calendar day, UTC)
        of a household enrolled in ``programs``."""
        day = certified_at.date() if isinstance(certified_at, datetime) else certified_at
        return day + timedelta(days=self.interval_for(programs))

    @property
    def per_program(self) -> bool:
        """True when some program has an interval of its own (enrolments matter)."""
        return bool(self.program_intervals)

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
