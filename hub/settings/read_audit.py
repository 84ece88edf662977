"""Settings of the audit of reads (``settings.read_audit``, ``[srhub.read_audit]``).

Read by ``hub.readaudit``; described in docs/operations.md and docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, ranged


@dataclass(frozen=True)
class ReadAuditSettings(Section):
    """How long the record of who read what is kept."""

    name: ClassVar[str] = "read_audit"

    # Rows older than this many days are purged by the retention round (oldest first, an
    # anchor keeps the rest verifiable). Two years by default: long enough for a complaint
    # about a read to reach an auditor; a law may ask for more.
    retention_days: float = ranged(730.0, above=0)
