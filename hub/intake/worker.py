"""The ingest worker's handler of ``intake.submission``: apply one stored submission.

Registered by ``hub.assembly`` beside the partner routes (``ingest_handlers(...,
intake=...)``). The message names the instanceID only; the row is read in the worker's
transaction, so applying it, its new status and the processed-message record commit together.
A row no longer ``received`` (a re-queued copy, a redelivery) changes nothing. Whatever the
submission's answers, the worker keeps going: a refused one is marked ``invalid`` with the
reason, an unexpected failure ``failed``, and the batch's other submissions are applied.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.intake.apply import SubmissionApplier
from hub.intake.queueing import ROUTING_KEY
from hub.intake.tables import IntakeSubmission
from hub.workers.handlers import HandlerContext, HandlerResult

log = logging.getLogger(__name__)

__all__ = ["ROUTING_KEY", "IntakeSubmissionHandler"]


class IntakeSubmissionHandler:
    """``(event, ctx) -> HandlerResult`` for ``intake.submission`` (``ctx.services`` holds
    the registry: the ingest worker's ``IngestServices``)."""

    def __init__(self, applier: SubmissionApplier) -> None:
        self.applier = applier

    def __call__(self, event: dict[str, Any], ctx: HandlerContext) -> HandlerResult:
        session = ctx.session
        if session is None:
            raise RuntimeError("intake.submission is handled inside a transaction")
        payload = (event.get("data") or {}).get("payload") or {}
        instance_id = payload.get("instance_id")
        if not isinstance(instance_id, str) or not instance_id:
            return HandlerResult("invalid_message", ("no instance_id in the message",))
        row = session.scalar(
            select(IntakeSubmission).where(IntakeSubmission.instance_id == instance_id)
        )
        if row is None:
            return HandlerResult("unknown_submission")
        if row.status != "received":
            return HandlerResult("already_applied")
        try:
            outcome = self.applier.apply(session, row, ctx.services.registry)
        except Exception as exc:  # never lose the batch for one submission
            log.exception("intake: applying submission %s failed", row.id)
            row.status = "failed"
            row.reason = f"applying failed unexpectedly ({type(exc).__name__}); see the hub log"
            return HandlerResult("failed", (row.reason,))
        notes = (outcome.reason[:300],) if outcome.reason else ()
        return HandlerResult(outcome.status, notes)
