"""The calls other modules make to report into monitoring: one line each at the place where a
message is published or its outcome is known. They are cheap (an in-memory counter and a queue
put) and never raise, so monitoring can never break the traffic it watches."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from hub.monitoring import message_log
from hub.monitoring.message_log import INBOUND, RECEIVED, LogRecord
from hub.monitoring.metrics import RECORDER
from registry_core.db import utcnow

log = logging.getLogger(__name__)


def _short(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


def inbound_published(
    connector: str, messages: Sequence[Any], started: float, error: BaseException | None = None
) -> None:
    """The connector host published (or failed to publish) raw records to ``sr.inbound``."""
    try:
        latency = time.monotonic() - started
        reason = _short(error) if error is not None else None
        RECORDER.observe(
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
            message_log.submit(
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
        log.exception("monitoring hook inbound_published failed")


def _event_time(event: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(event.get("time")).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


class IngestNote:
    """What the ingest handler found; ``outcome`` is set by the handler on success, ``notes``
    (data-quality notes, review reasons; never values) as it goes."""

    def __init__(self) -> None:
        self.outcome = "applied"
        self.notes: list[str] = []


@contextlib.contextmanager
def observe_ingest(event: dict[str, Any], routing_key: str) -> Iterator[IngestNote]:
    """Wrap one ingest handling: success records the outcome, an exception records
    ``failed`` (permanent) or ``retrying`` (transient) with its class, then propagates."""
    connector = routing_key.split(".", 1)[0]
    note = IngestNote()
    error: BaseException | None = None
    try:
        yield note
    except BaseException as exc:
        error = exc
        raise
    finally:
        with contextlib.suppress(Exception):
            _ingest_done(event, routing_key, connector, note, error)


def _ingest_done(
    event: dict[str, Any],
    routing_key: str,
    connector: str,
    note: IngestNote,
    error: BaseException | None,
) -> None:
    from hub.workers.errors import TransientError

    now = utcnow()
    published = _event_time(event)
    latency = (now - published).total_seconds() if published else None
    if error is None:
        status, reason = note.outcome, None
    else:
        status = "retrying" if isinstance(error, TransientError) else "failed"
        reason = getattr(error, "error_class", None) or type(error).__name__
    RECORDER.observe(f"ingest:{connector}", ok=error is None, latency=latency, error=reason)
    message_log.submit(
        LogRecord(
            direction=INBOUND,
            connector=connector,
            partner=connector,
            message_id=str(event.get("id")),
            routing_key=routing_key,
            status=status,
            error=reason,
            notes="; ".join(note.notes) or None,
            started_at=published or now,
            finished_at=now,
            update=True,
        )
    )
