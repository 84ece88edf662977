"""Each person's last national ID cross-check as the household shows it.

One row per person: ``pending`` (asked, no answer yet: ``message_id`` is the queued request),
``verified``, ``failed`` (with the authority's reason), or ``not_checked`` (with why: no
national ID, no consent, policy). The registry keeps the verification itself
(``persons.verification_status``); this row adds what the registry does not: that a check is
pending, why none was made, and a failure's reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base
from standards.timeutil import utcnow

CHECK_STATUSES = ("pending", "verified", "failed", "not_checked")


class IdentityCheck(Base):
    __tablename__ = "identity_checks"

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    trigger: Mapped[str | None] = mapped_column(String(64))  # the event type that asked
    message_id: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
