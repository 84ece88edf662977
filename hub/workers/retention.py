"""Retention jobs: each package that keeps a growing log says how to prune it.

The message log (``hub.monitoring.message_log``), the DCI transactions (``hub.dci.retention``),
the delivery log (``hub.subscriptions.retention``) and the processed-message store
(``hub.workers.idempotency``) each offer a ``retention_job(...)`` built from their own
settings (``settings.monitoring``). The application lists the jobs it runs
(``hub.assembly.retention_jobs``) and hands them to whatever runs them: the monitoring thread
of ``srhub run`` on a schedule, ``srhub monitoring prune`` on demand. Nobody else needs to
know which tables exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionJob:
    """``prune(session)`` deletes what is past retention inside the given transaction and
    returns what it did (a count, or a result object with a ``deleted`` count)."""

    name: str
    prune: Callable[[Session], Any]


def deleted_count(result: Any) -> int:
    """How many rows a job's result says it deleted."""
    if isinstance(result, int):
        return result
    return int(getattr(result, "deleted", 0) or 0)


def run_retention(
    sessions: sessionmaker[Session], jobs: Sequence[RetentionJob], *, keep_going: bool = False
) -> dict[str, Any]:
    """Run every job in its own transaction (a long prune of one log never holds another's
    locks); return each job's result by name.

    With ``keep_going`` (the scheduled run) a failing job is logged and the others still run;
    without it (an operator's command) the first failure is raised.
    """
    results: dict[str, Any] = {}
    for job in jobs:
        try:
            with sessions.begin() as session:
                results[job.name] = job.prune(session)
        except Exception:
            if not keep_going:
                raise
            log.exception("retention of %s failed; the next round tries again", job.name)
            continue
        if deleted_count(results[job.name]):
            log.info("retention of %s: %s", job.name, results[job.name])
    return results
