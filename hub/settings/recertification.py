"""Settings of household recertification (``settings.recertification``).

Read by ``hub.runtime`` (the registry's ``RecertificationPolicy``) and the recertification
round among the retention jobs (``hub.assembly``); described in docs/recertification.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, SettingsError, non_negative, ranged

MAX_PROGRAM_CODE = 64


@dataclass(frozen=True)
class RecertificationSettings(Section):
    """When a household is due again after its last certification, when it is reminded, and
    when it becomes overdue. One registry-wide interval, and optionally intervals per program
    for the households enrolled in them."""

    name: ClassVar[str] = "recertification"

    # Days from a certification (registration, applied field submission, staff confirmation)
    # to the next due date.
    interval_days: int = ranged(730, low=1)
    # Days before the due date a household enters the reminder window
    # (`household.recertification_due`, once per cycle).
    reminder_days: int = non_negative(60)
    # Days after the due date before the household is flagged overdue
    # (`household.recertification_overdue`).
    grace_days: int = non_negative(0)
    # Per-program intervals, "<program code>=<days>" each (TOML list or comma-separated), e.g.
    # ["CT=365", "OAP=1095"]: a household enrolled in programs is due after the shortest of
    # their intervals (interval_days for a program not listed); in none, after interval_days.
    program_intervals: tuple[str, ...] = ()

    def check(self, label: Callable[[str], str]) -> None:
        self.intervals_by_program(label)

    def intervals_by_program(self, label: Callable[[str], str] = lambda key: key) -> dict[str, int]:
        """``program_intervals`` as {program code: days}; a ``SettingsError`` naming the entry
        that is not ``CODE=DAYS`` with DAYS a whole number of at least 1, or names a program
        twice."""
        found: dict[str, int] = {}
        for entry in self.program_intervals:
            code, sep, days = (part.strip() for part in entry.partition("="))
            shown = entry if len(entry) <= 80 else entry[:80] + "..."
            if (
                not sep
                or not code
                or len(code) > MAX_PROGRAM_CODE
                or not (days.isascii() and days.isdigit() and len(days) <= 6)
            ):
                raise SettingsError(
                    f"{label('program_intervals')}: {shown!r} is not <program code>=<days>"
                )
            if int(days) < 1:
                raise SettingsError(
                    f"{label('program_intervals')}: the interval of {code!r} must be at least 1"
                )
            if code in found:
                raise SettingsError(f"{label('program_intervals')}: {code!r} is given twice")
            found[code] = int(days)
        return found
