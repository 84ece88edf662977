"""The budget of a program: benefit amount x beneficiaries x periods.

A schedule pays ``amount`` per household or per person (``max_persons`` caps the persons
counted per household — a household of nine paid for at most six, say), each ``period``,
for ``periods`` periods. Person-based schedules with a cap need the capped count per
household, which the simulation's query sums beside the plain one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def budget(
    schedule: Mapping[str, Any] | None, households: int, persons: int, capped_persons: int
) -> dict[str, Any] | None:
    """What the schedule costs for these beneficiaries (None: the program has none)."""
    if schedule is None:
        return None
    per_person = schedule["per"] == "person"
    units = (
        (capped_persons if schedule.get("max_persons") else persons) if per_person else (households)
    )
    periods = int(schedule["periods"])
    amount = float(schedule["amount"])
    return {
        "per_period": round(amount * units, 2),
        "total": round(amount * units * periods, 2),
        "amount": amount,
        "per": schedule["per"],
        "period": schedule.get("period", "month"),
        "periods": periods,
        "currency": schedule.get("currency"),
        "units": units,
    }
