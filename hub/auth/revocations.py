"""Revoking one bearer token by its id (``jti``), before it expires.

A token is self-contained, so refusing one needs a list: ``auth_revoked_tokens`` holds each
revoked id until the token would have expired anyway (then the retention job deletes it, so
the list stays as small as the number of live revoked tokens). Every process checks the list
on every verification, through ``RevocationList``: it keeps the ids in memory and re-reads
them at most every ``refresh_seconds`` (default 5), so a revocation takes effect everywhere
within that time without a database read per request. A revocation made in this process
takes effect here at once.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.tables import RevokedTokenRow
from hub.workers.retention import RetentionJob
from standards.timeutil import utcnow

REFRESH_SECONDS = 5.0
MAX_REASON = 500
MAX_JTI = 64


class RevocationError(ValueError):
    """A revocation request is refused; the message says why."""


def revoke(
    session: Session, *, jti: str, expires_at: datetime, revoked_by: str, reason: str
) -> bool:
    """Add ``jti`` to the list; False when it was revoked already (nothing changes)."""
    jti, reason = jti.strip(), reason.strip()
    if not jti or len(jti) > MAX_JTI:
        raise RevocationError(f"a token id (jti) has 1 to {MAX_JTI} characters")
    if not reason or len(reason) > MAX_REASON:
        raise RevocationError(f"say why the token is revoked (1 to {MAX_REASON} characters)")
    if session.get(RevokedTokenRow, jti) is not None:
        return False
    session.add(
        RevokedTokenRow(
            jti=jti,
            expires_at=expires_at,
            revoked_at=utcnow(),
            revoked_by=revoked_by[:200],
            reason=reason,
        )
    )
    return True


def list_revoked(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(RevokedTokenRow)
        .where(RevokedTokenRow.expires_at > utcnow())
        .order_by(RevokedTokenRow.revoked_at.desc())
    )
    return [
        {
            "jti": row.jti,
            "expires_at": row.expires_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat(),
            "revoked_by": row.revoked_by,
            "reason": row.reason,
        }
        for row in rows
    ]


def prune_expired(session: Session) -> int:
    """Delete the ids of tokens that have expired since: they are refused on their own."""
    result = session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def retention_job() -> RetentionJob:
    return RetentionJob("revoked_tokens", prune_expired)


class RevocationList:
    """The revoked ids as one process sees them, refreshed from the database on a timer.

    If the database cannot be read, the last known list stays in force (and is retried on
    the next check): a database blip must neither lock everyone out nor forget revocations.
    """

    def __init__(
        self, sessions: sessionmaker[Session], refresh_seconds: float = REFRESH_SECONDS
    ) -> None:
        self._sessions = sessions
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._ids: frozenset[str] = frozenset()
        self._loaded_at: float | None = None

    def __call__(self, jti: str) -> bool:
        return jti in self._current()

    def forget_cache(self) -> None:
        """Read the list again at the next check (after a revocation in this process)."""
        with self._lock:
            self._loaded_at = None

    def _current(self) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            if self._loaded_at is not None and now - self._loaded_at < self._refresh:
                return self._ids
            try:
                with self._sessions() as session:
                    found = session.scalars(
                        select(RevokedTokenRow.jti).where(RevokedTokenRow.expires_at > utcnow())
                    )
                    self._ids = frozenset(found)
            except SQLAlchemyError:
                pass  # keep the last list; retried at the next check
            self._loaded_at = now
            return self._ids
