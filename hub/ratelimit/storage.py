"""A ``limits`` storage in the hub's own database (SQLite or PostgreSQL).

There is no Redis in a hub installation; the database every API process already shares holds
the counters instead (``hub.ratelimit.tables``), so ``srhub serve --workers 4`` on two hosts
enforces one limit, not four. Each hit is one statement: an upsert that starts a new window
when the stored one has ended and otherwise adds to it, and returns the count, so two
processes hitting the same key at once can never both see the last free slot. Registered with
``limits`` under the scheme ``srhub-db`` (the library's storage registry: subclassing
``Storage`` with ``STORAGE_SCHEME`` is its extension point), built with
``storage_from_string("srhub-db://", engine=...)``.

Only the fixed-window strategy is supported: one row per key, one statement per hit.
"""

from __future__ import annotations

import random
import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from hub.ratelimit.tables import RateLimitCounter

# One hit in this many also deletes windows that ended (any key): the table stays the size of
# the clients seen in the last window, without a job of its own.
SWEEP_ONE_IN = 500

_UPSERT = text(
    """
    INSERT INTO rate_limit_counters (key, hits, expires_at)
    VALUES (:key, :amount, :now + :expiry)
    ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN rate_limit_counters.expires_at <= :now THEN :amount
                    ELSE rate_limit_counters.hits + :amount END,
        expires_at = CASE WHEN rate_limit_counters.expires_at <= :now THEN :now + :expiry
                          ELSE rate_limit_counters.expires_at END
    RETURNING hits
    """
)


class DatabaseStorage(Storage):
    """Fixed-window counters in ``rate_limit_counters``, shared by every process."""

    STORAGE_SCHEME = ["srhub-db"]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any
    ) -> None:
        engine = options.pop("engine", None)
        if not isinstance(engine, Engine):
            raise ValueError("the srhub-db storage needs engine=<the hub's SQLAlchemy engine>")
        self.engine = engine
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int | float, amount: int = 1, **_: Any) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            hits = conn.execute(
                _UPSERT, {"key": key, "amount": amount, "now": now, "expiry": float(expiry)}
            ).scalar_one()
            if random.randrange(SWEEP_ONE_IN) == 0:
                conn.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < now))
        return int(hits)

    def _row(self, key: str) -> tuple[int, float] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RateLimitCounter.hits, RateLimitCounter.expires_at).where(
                    RateLimitCounter.key == key
                )
            ).first()
        if row is None or row.expires_at <= time.time():
            return None
        return int(row.hits), float(row.expires_at)

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return int(conn.execute(delete(RateLimitCounter)).rowcount)

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))
