"""The rate limiter's counters, in the hub's database so every API process shares them.

One row per (limit, client) window: the hits counted so far and when the window ends, in
seconds since the epoch (a float is exact enough for a window and compares the same on
SQLite and PostgreSQL). Keys are ``<limit>/<kind>:<digest>``: a credential is never stored,
only a digest of it (``hub.ratelimit.policy``). Expired rows are reused by the next hit on the
same key and swept now and then (``hub.ratelimit.storage``).
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base


class RateLimitCounter(Base):
    """Hits of one client against one limit in the current fixed window."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
