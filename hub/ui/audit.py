"""The dashboard's audit trail: who pressed which button, on what, when, and what happened.

Rows are written in their own short transaction right after the action, so an action that
failed is recorded too (with its outcome). Reading is keyset-paginated on the primary key,
newest first: page N costs the same as page 1 on a trail of millions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.ui.tables import UiAudit

PAGE_SIZE = 50


def record(
    sessions: sessionmaker[Session], actor: str, action: str, target: str = "", outcome: str = ""
) -> None:
    with sessions() as db, db.begin():
        db.add(
            UiAudit(
                actor=actor[:200], action=action[:64], target=target[:300], outcome=outcome[:500]
            )
        )


@dataclass(frozen=True)
class AuditPage:
    rows: list[UiAudit]
    next_before: int | None  # pass as ``before`` for the next (older) page


def page(
    sessions: sessionmaker[Session],
    *,
    before: int | None = None,
    actor: str | None = None,
    target: str | None = None,
    size: int = PAGE_SIZE,
) -> AuditPage:
    """One page of the trail, newest first, older than row id ``before``."""
    query = select(UiAudit).order_by(UiAudit.id.desc()).limit(size + 1)
    if before is not None:
        query = query.where(UiAudit.id < before)
    if actor:
        query = query.where(UiAudit.actor == actor)
    if target:
        query = query.where(UiAudit.target == target)
    with sessions() as db:
        rows = list(db.scalars(query))
    more = len(rows) > size
    rows = rows[:size]
    return AuditPage(rows, rows[-1].id if more and rows else None)
