"""What a household record shows of each member's national ID cross-check.

``identity_check`` per member: ``verified``, ``failed`` (with the authority's reason),
``pending`` (asked, since when) or ``not_checked`` (with why). It combines this package's row
with the registry's own verification (``persons.verification_status`` and ``verified_at``): a
check answered with the same result as before changes no status and emits no event, but moves
``verified_at``, which settles a pending row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.crosscheck.tables import IdentityCheck
from standards.timeutil import iso

NEVER_ASKED = "no check has been asked for (yet)"


def shown(row: IdentityCheck | None, verification: dict[str, Any] | None) -> dict[str, Any]:
    """One member's ``identity_check`` from the row and the person record's ``verification``."""
    registry_status = (verification or {}).get("status")
    registry_at = _parse((verification or {}).get("verified_at"))
    if row is None:
        if registry_status in ("verified", "failed"):
            return {"status": registry_status, "reason": None, "at": iso(registry_at)}
        return {"status": "not_checked", "reason": NEVER_ASKED, "at": None}
    if row.status == "pending":
        asked = row.requested_at
        if (
            registry_status in ("verified", "failed")
            and registry_at
            and asked
            and registry_at >= asked
        ):
            return {"status": registry_status, "reason": row.reason, "at": iso(registry_at)}
        return {"status": "pending", "reason": None, "at": iso(asked)}
    if row.status in ("verified", "failed"):
        return {
            "status": row.status,
            "reason": row.reason,
            "at": iso(registry_at or row.updated_at),
        }
    if registry_status in ("verified", "failed"):  # checked since, by other means
        return {"status": registry_status, "reason": None, "at": iso(registry_at)}
    return {"status": "not_checked", "reason": row.reason, "at": iso(row.updated_at)}


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def rows_for(session: Session, person_ids: Iterable[str]) -> dict[str, IdentityCheck]:
    ids = [uuid.UUID(p) for p in person_ids]
    if not ids:
        return {}
    found = session.scalars(select(IdentityCheck).where(IdentityCheck.person_id.in_(ids)))
    return {str(r.person_id): r for r in found}


def annotate_households(session: Session, records: Iterable[dict[str, Any]]) -> None:
    """Add ``identity_check`` to every member of ``records`` (in place), one query in all."""
    records = list(records)
    members = [m for r in records for m in r.get("members", [])]
    rows = rows_for(session, [str(m["id"]) for m in members])
    for member in members:
        member["identity_check"] = shown(rows.get(str(member["id"])), member.get("verification"))
