"""Settings of the aggregate reports (``settings.reports``, ``[srhub.reports]``).

Read by ``hub.api.reports``; described in docs/policy.md ("Coverage reports"). ``min_cell``
is the smallest count a report shows: smaller counts, and counts from which one could be
worked out, are hidden, so a report never singles out a household or a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from hub.settings.base import Section, ranged

if TYPE_CHECKING:
    from registry_core.reports.counts import Facts


@dataclass(frozen=True)
class ReportSettings(Section):
    """Small-cell suppression and where the segments' facts are."""

    name: ClassVar[str] = "reports"

    # Counts from 1 to min_cell - 1 are hidden (2 at least: a report never shows a single one).
    min_cell: int = ranged(5, low=2, high=1000)
    # A person's disability: a fact (domain, name) whose value is a number above 0 or true.
    disability_domain: str = "other"
    disability_attribute: str = "disability"
    # The GIS layer saying whether a household's locality is "urban" or "rural" (a household
    # fact the GIS connector writes, domain "other" named after the layer).
    settlement_layer: str = "urban_rural"

    def facts(self) -> Facts:
        """Where the segments' facts are, as the report counts read them."""
        from registry_core.reports.counts import Facts

        return Facts(
            disability_domain=self.disability_domain,
            disability_name=self.disability_attribute,
            settlement_layer=self.settlement_layer,
        )
