"""Settings of the data-quality checks (``settings.quality``).

Read by ``hub.quality`` (the rules' thresholds, the scan's batch size and schedule);
described in docs/data-quality.md. Every threshold is registry-wide: a country sets what is
plausible for its population once, and every check (on change or in a scan) applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, SettingsError, non_negative, ranged


@dataclass(frozen=True)
class QualitySettings(Section):
    """Thresholds of the anomaly checks, and how the full scan runs."""

    name: ClassVar[str] = "quality"

    # Oldest plausible age in years (at death for a deceased person); older is `impossible_age`.
    max_age_years: int = ranged(120, low=1, high=200)
    # Fewest and most current members a plausible active household has (`household_size`).
    min_household_size: int = ranged(1, low=1)
    max_household_size: int = ranged(20, low=1)
    # Youngest plausible head of household, in years (`household_composition`).
    min_head_age_years: int = ranged(14, low=0, high=100)
    # Smallest plausible age gap between a parent and a child, in years: the head's child
    # younger than that gap, or the head's parent older by less, is `household_composition`.
    min_parent_gap_years: int = ranged(12, low=0, high=100)
    # Declared and tax income differ "far" when |declared - tax| / max(declared, tax) is above
    # this ratio (0.5: one is less than half of the other) ...
    income_tolerance_ratio: float = ranged(0.5, above=0, high=1)
    # ... and by more than this absolute amount a year (so tiny incomes never raise issues).
    income_min_difference: float = non_negative(1200.0)
    # Household attributes (domain income) holding a declared monthly / yearly income.
    declared_monthly_income: tuple[str, ...] = ("monthly_income",)
    declared_annual_income: tuple[str, ...] = ("annual_income",)
    # Source systems whose income facts are the tax authority's, and the fact they report.
    tax_income_sources: tuple[str, ...] = ("tax",)
    tax_income_name: str = "gross_income"
    # A deceased person is "still notified" when an event naming them is delivered to a
    # program later than this many days after their date of death (the grace a death notice
    # needs to travel).
    deceased_grace_days: int = non_negative(30)
    # Households (then persons) checked per transaction of a scan.
    scan_batch_size: int = ranged(200, low=1, high=10_000)
    # Hours between automatic full scans (run with the retention jobs); 0: only on request.
    scan_interval_hours: int = non_negative(24)

    def check(self, label: Callable[[str], str]) -> None:
        if self.min_household_size > self.max_household_size:
            raise SettingsError(
                f"{label('min_household_size')} must not exceed {label('max_household_size')}"
            )
