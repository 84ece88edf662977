"""Monitoring as middleware: the message log and the metrics of every exchange, in one object
the application configures and hands to the parts that exchange messages.

- The ingest worker's runtime calls it around every handling (``hub.workers.middleware``):
  ``after`` records the outcome and the data-quality notes (``HandlerResult``), ``failed``
  records ``retrying`` (transient) or ``failed`` with the error class.
- The connector host's publisher calls ``published`` when raw records reach ``sr.inbound``
  (or fail to).
- ``outbound`` records one delivery attempt's outcome.

Neither the runtime nor the pipeline nor the connector host imports monitoring: ``srhub run``,
``srhub worker`` and the tests' fixtures build one ``MonitoringMiddleware`` (``start``), pass it
in, and stop it at the end. Every method is cheap (an in-memory counter and a queue put) and
never raises, so monitoring can never break the traffic it watches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hub.broker.base import Message
from hub.monitoring.message_log import (
    INBOUND,
    OUTBOUND,
    RECEIVED,
    LogRecord,
    MessageLogWriter,
)
from hub.monitoring.metrics import RECORDER, Recorder
from hub.workers.errors import is_transient
from hub.workers.handlers import CloudEvent, HandlerContext, HandlerResult
from hub.workers.middleware import Middleware
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

FAILED_STATUSES = ("failed", "dead_lettered", "retrying", "refused")


class MonitoringMiddleware(Middleware):
    """Message log and metrics. ``writer`` None records metrics only; ``stage`` names the
    handling stage in the metrics (``ingest``: records applied to the registry)."""

    def __init__(
        self,
        writer: MessageLogWriter | None,
        recorder: Recorder = RECORDER,
        *,
        stage: str = "ingest",
    ) -> None:
        self.writer = writer
        self.recorder = recorder
        self.stage = stage

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> MonitoringMiddleware:
        if self.writer is not None:
            self.writer.start()
        return self

    def stop(self) -> None:
        if self.writer is not None:
            self.writer.stop()

    def _submit(self, record: LogRecord) -> None:
        if self.writer is not None:
            self.writer.submit(record)

    # -- handling (worker middleware) -----------------------------------------------------------

    def after(self, ctx: HandlerContext, event: CloudEvent, result: HandlerResult) -> None:
        self._handled(ctx, event, result.outcome, None, result.notes)

    def failed(self, ctx: HandlerContext, event: CloudEvent, error: BaseException) -> None:
        status = "retrying" if is_transient(error) else "failed"
        reason = getattr(error, "error_class", None) or type(error).__name__
        self._handled(ctx, event, status, reason, tuple(getattr(error, "notes", ()) or ()))

    def _handled(
        self,
        ctx: HandlerContext,
        event: CloudEvent,
        status: str,
        error: str | None,
        notes: Sequence[str],
    ) -> None:
        try:
            routing_key = ctx.delivery.message.routing_key
            connector = routing_key.split(".", 1)[0]
            now = utcnow()
            published = _event_time(event)
            latency = (now - published).total_seconds() if published else None
            self.recorder.observe(
                f"{self.stage}:{connector}", ok=error is None, latency=latency, error=error
            )
            self._submit(
                LogRecord(
                    direction=INBOUND,
                    connector=connector,
                    partner=connector,
                    message_id=str(event.get("id")),
                    routing_key=routing_key,
                    status=status,
                    error=error,
                    notes="; ".join(notes) or None,
                    started_at=published or now,
                    finished_at=now,
                    update=True,
                )
            )
        except Exception:  # monitoring must not break handling
            log.exception("monitoring could not record a handling")

    # -- publishing (connector host) ------------------------------------------------------------

    def published(
        self,
        connector: str,
        messages: Sequence[Message],
        started: float,
        error: BaseException | None = None,
    ) -> None:
        """Raw records of ``connector`` were published to ``sr.inbound`` (or failed to)."""
        try:
            latency = time.monotonic() - started
            reason = _short(error) if error is not None else None
            self.recorder.observe(
                f"inbound:{connector}",
                ok=error is None,
                latency=latency,
                error=reason,
                n=len(messages),
            )
            if error is not None:
                return  # nothing was stored: the connector retries and logs it then
            now = utcnow()
            for message in messages:
                self._submit(
                    LogRecord(
                        direction=INBOUND,
                        connector=connector,
                        partner=connector,
                        message_id=message.message_id,
                        routing_key=message.routing_key,
                        size=len(message.body),
                        status=RECEIVED,
                        started_at=now,
                        body=message.body,
                    )
                )
        except Exception:  # monitoring must not break publishing
            log.exception("monitoring could not record a publish")

    # -- deliveries -----------------------------------------------------------------------------

    def outbound(
        self,
        subscription: str,
        message_id: str,
        *,
        status: str,
        started_at: datetime,
        finished_at: datetime | None = None,
        routing_key: str | None = None,
        size: int = 0,
        error: str | None = None,
        partner: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """One delivery attempt's outcome (``delivered``, ``failed``, ``retrying``,
        ``dead_lettered``...); also feeds the ``outbound`` metrics of the subscription."""
        try:
            ok = error is None and status not in FAILED_STATUSES
            latency = (finished_at - started_at).total_seconds() if finished_at else None
            self.recorder.observe(f"outbound:{subscription}", ok=ok, latency=latency, error=error)
            self._submit(
                LogRecord(
                    direction=OUTBOUND,
                    connector=subscription,
                    subscription=subscription,
                    partner=partner,
                    message_id=message_id,
                    routing_key=routing_key,
                    size=size,
                    status=status,
                    error=error,
                    started_at=started_at,
                    finished_at=finished_at or utcnow(),
                    body=body,
                )
            )
        except Exception:
            log.exception("monitoring could not record a delivery")


def _short(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


def _event_time(event: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(event.get("time")).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
