"""The purpose a program reads for when its request names none: its subscriptions' purpose.

A program's system subscribes for one declared purpose (``subscriptions.purpose``); when all
of its active subscriptions name the same one, that is the purpose of its reads too. With
none, or with several different ones, the read is ``unspecified`` rather than guessed.
Used by the read audit (``hub.api.audit_reads``, and the DCI server through the function
``hub.api.dci`` gives it: ``hub.dci`` may not import this package).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.subscriptions.tables import STATUS_ACTIVE, Subscription


def subscription_purpose(session: Session, program: str | None) -> str | None:
    if not program:
        return None
    purposes = session.scalars(
        select(Subscription.purpose)
        .where(Subscription.program_code == program, Subscription.status == STATUS_ACTIVE)
        .distinct()
        .limit(2)
    ).all()
    return purposes[0] if len(purposes) == 1 else None
