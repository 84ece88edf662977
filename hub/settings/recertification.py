"""Settings of household recertification (``settings.recertification``).

Read by ``hub.runtime`` (the registry's ``RecertificationPolicy``) and the recertification
round among the retention jobs (``hub.assembly``); described in docs/recertification.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, non_negative, ranged


@dataclass(frozen=True)
class RecertificationSettings(Section):
    """When a household is due again after its last certification, when it is reminded, and
    when it becomes overdue. Registry-wide: one interval for every household."""

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
