"""Tables of the staff dashboard: password users and the audit trail of button presses.

- ``ui_users``: people who log in with a password (others log in with a hub token or API key).
  Only an scrypt hash is stored; ``active`` lets an admin lock someone out without deleting the
  history that names them. Field workers and supervisors also carry their administrative
  areas (``areas``, a JSON list) and, because devices may authenticate with HTTP Digest, their
  Digest password-equivalents sealed with the hub's encryption key (``digest_ha1``; see
  ``hub.openrosa.credentials``). Staff users have neither.
- ``ui_audit``: one row per action taken in the dashboard (login, pause, replay, ...). Pages
  read it newest first with keyset pagination on ``id``, and filter by actor or target through
  their own indexes, so the page stays fast however long the trail grows.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, UTCDateTime
from standards.timeutil import utcnow


class UiUser(Base):
    __tablename__ = "ui_users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(300), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    areas: Mapped[str] = mapped_column(Text(), nullable=False, default="[]", server_default="[]")
    digest_ha1: Mapped[bytes | None] = mapped_column(LargeBinary())

    @property
    def area_codes(self) -> tuple[str, ...]:
        """The administrative areas (prefixes) of a field worker or supervisor; () for staff."""
        try:
            found = json.loads(self.areas or "[]")
        except ValueError:
            return ()
        if not isinstance(found, list):
            return ()
        return tuple(str(area) for area in found if isinstance(area, str) and area)

    @staticmethod
    def encode_areas(areas: tuple[str, ...] | list[str]) -> str:
        return json.dumps(list(areas))


class UiAudit(Base):
    __tablename__ = "ui_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    outcome: Mapped[str] = mapped_column(String(500), nullable=False, default="")

    __table_args__ = (
        Index("ix_ui_audit_actor_id", "actor", "id"),
        Index("ix_ui_audit_target_id", "target", "id"),
        Index("ix_ui_audit_at", "at"),
    )
