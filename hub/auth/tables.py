"""The hub's authentication table: API keys for partner and program systems.

Only a SHA-256 hash of each key's secret is stored. The secret is 32 random bytes, so a fast
hash is as strong as a slow one here (there is nothing to brute-force), and it keeps the
per-request check cheap. The key id is stored in clear: it is how a presented key is found.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base
from standards.timeutil import utcnow


class ApiKeyRow(Base):
    __tablename__ = "auth_api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    secret_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    roles: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    admin_areas: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    program: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class RevokedTokenRow(Base):
    """A bearer token refused before its expiry, by its id (``jti``). Kept until the token
    would have expired anyway; then the retention jobs delete the row."""

    __tablename__ = "auth_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
    revoked_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)
    revoked_by: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
