"""Settings of corrections through change requests (``settings.corrections``).

Read by the change-request API and dashboard (``hub.corrections``); described in
docs/corrections.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section

DEFAULT_DIRECT_TARGETS = (
    "household.address",
    "person.given_name",
    "person.family_name",
    "person.other_names",
    "attribute.other.phone_number",
)


@dataclass(frozen=True)
class CorrectionsSettings(Section):
    """Which small, well-defined corrections registry staff may apply directly (with an
    evidence reference), without a second person's approval."""

    name: ClassVar[str] = "corrections"

    # Targets as change requests name them: "household.<field>", "person.<field>",
    # "attribute.<domain>.<name>". Empty: every correction needs an approval.
    direct_targets: tuple[str, ...] = DEFAULT_DIRECT_TARGETS
