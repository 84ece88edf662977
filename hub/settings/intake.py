"""Settings of field collection and registration checks (``settings.intake``).

Read by ``hub.intake`` (forms, submissions), ``hub.openrosa`` (the OpenRosa server) and the
national ID cross-check that registration triggers; described in docs/field-collection.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from hub.settings.base import Section

CrossCheckPolicy = Literal["always", "first", "never"]


@dataclass(frozen=True)
class IntakeSettings(Section):
    """Field collection: submission limits and when registration is checked with the national
    ID authority."""

    name: ClassVar[str] = "intake"

    # When a registration (by API, form or partner) queues a national ID cross-check:
    # "always" (every registration or re-registration of a person), "first" (only a person the
    # registry has never checked), "never".
    crosscheck_policy: CrossCheckPolicy = "first"
    # Largest submission (XML plus attachments) the OpenRosa server takes; announced to
    # devices as X-OpenRosa-Accept-Content-Length.
    max_submission_bytes: int = 10 * 1024 * 1024
