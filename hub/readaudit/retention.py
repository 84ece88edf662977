"""Retention of the read audit: this package's retention job.

Rows older than ``[srhub.read_audit] retention_days`` are purged oldest first, and the purge
leaves an anchor so the rest still verifies (``hub.readaudit.log.purge_in``). A chain that
does not verify is not purged: the job fails (the retention round logs it and carries on
with the other jobs) until an auditor has looked.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from hub.readaudit.log import purge_in
from hub.workers.retention import RetentionJob
from standards.timeutil import utcnow

NAME = "read_audit"


def retention_job(retention_days: float) -> RetentionJob:
    keep = timedelta(days=retention_days)

    def prune(session: Session) -> int:
        return purge_in(session, utcnow() - keep)

    return RetentionJob(NAME, prune)
