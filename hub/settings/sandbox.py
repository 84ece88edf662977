"""Settings of the sandbox partner systems ``srhub run`` starts (``settings.sandbox_mocks``),
and of what the hub does with them on its own (the households' consent to the ID check).

``SRHUB_SANDBOX`` (``settings.sandbox``) says whether they run at all. Read by
``hub.embedded_services``; described in docs/sandbox.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, non_negative


@dataclass(frozen=True)
class SandboxMockSettings(Section):
    """Ports, pace and activity of the sandbox."""

    name: ClassVar[str] = "sandbox_mocks"

    # None: each mock on its fixed port (8101-8105); 0: free ports (tests, a busy machine);
    # N: ports N, N+1, ... in the mocks' order.
    port_base: int | None = non_negative(None)
    # Seconds between the tax authority's file drops (0: only on demand).
    tax_interval_seconds: float = non_negative(20.0)
    # Simulated days per real second at the civil registry (0: no new births and deaths).
    days_per_second: float = non_negative(2.0)
    # About how many seeded people (with a national ID) consented in the survey to the national
    # ID check; the registration cross-check checks them by itself (0: none).
    verification_round: int = non_negative(25)
    # A simulated field team registers some of the population's households over OpenRosa
    # (online, offline batches, one re-sent form, one conflicting revisit); false: none.
    field_team: bool = True
