"""Queueing stored submissions for the ingest worker, and re-queueing what was not.

A submission is stored first, then published on ``sr.inbound`` as routing key
``intake.submission`` with the instanceID as message id (the ingest consumer's idempotency
store and the row's status both make a second copy harmless). The message carries only the
instanceID: the answers stay sealed in the database, never on the broker.

If the publish fails after the row was stored (broker down), the device has its 201 and the
row waits as ``received``; ``requeue_job`` (a periodic job the monitoring thread runs with the
retention jobs, and ``srhub run`` once at start) publishes every ``received`` row older than a
grace period again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub.broker.base import Message
from hub.intake.tables import IntakeSubmission
from hub.workers.retention import RetentionJob
from standards.cloudevents import build_event, to_json_bytes
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

CONNECTOR = "intake"
RECORD_TYPE = "submission"
ROUTING_KEY = f"{CONNECTOR}.{RECORD_TYPE}"
SOURCE = "urn:srhub:intake"
REQUEUE_AFTER_SECONDS = 120
REQUEUE_BATCH = 500


class MessagePublisher(Protocol):
    """``BrokerRawPublisher`` (``hub.connectors_host``) or a test's fake."""

    def publish_messages(self, connector: str, messages: Sequence[Message]) -> None: ...


def submission_message(instance_id: str) -> Message:
    """The raw record of one stored submission: the instanceID is the message id."""
    event = build_event(
        type=ROUTING_KEY,
        source=SOURCE,
        id=instance_id,
        data={
            "connector": CONNECTOR,
            "record_type": RECORD_TYPE,
            "source_id": instance_id,
            "headers": {},
            "content_type": "application/json",
            "payload": {"instance_id": instance_id},
        },
    )
    return Message(to_json_bytes(event), ROUTING_KEY, instance_id)


def publish_submissions(
    publisher: MessagePublisher, session: Session, instance_ids: Sequence[str]
) -> None:
    """Publish, then mark the rows queued (in ``session``; the caller commits). Publishing
    comes first, before the session touches the database: on SQLite a transaction holds the
    file's write lock, which the embedded broker needs. Raises what the broker raised: the
    rows stay unqueued and the re-queue job takes them."""
    if not instance_ids:
        return
    publisher.publish_messages(CONNECTOR, [submission_message(i) for i in instance_ids])
    session.execute(
        update(IntakeSubmission)
        .where(IntakeSubmission.instance_id.in_(list(instance_ids)))
        .values(queued_at=utcnow())
    )


def requeue_received(bind: Any, publisher: MessagePublisher, older_than_seconds: float) -> int:
    """Publish again the ``received`` rows not handled within ``older_than_seconds`` of their
    last queueing (or never queued); how many. ``bind`` is the hub's engine: the rows are read
    and marked in short transactions of their own, never held open while publishing (on SQLite
    the embedded broker writes to the same file)."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    with Session(bind) as session:
        ids = list(
            session.scalars(
                select(IntakeSubmission.instance_id)
                .where(
                    IntakeSubmission.status == "received",
                    IntakeSubmission.received_at <= cutoff,
                    or_(
                        IntakeSubmission.queued_at.is_(None),
                        IntakeSubmission.queued_at <= cutoff,
                    ),
                )
                .order_by(IntakeSubmission.received_at)
                .limit(REQUEUE_BATCH)
            )
        )
    for start in range(0, len(ids), 100):
        with Session(bind) as session, session.begin():
            publish_submissions(publisher, session, ids[start : start + 100])
    if ids:
        log.info("intake: %d received submission(s) queued again", len(ids))
    return len(ids)


def requeue_job(
    publisher: MessagePublisher | Any, older_than_seconds: float = REQUEUE_AFTER_SECONDS
) -> RetentionJob:
    """The periodic job that re-queues stuck ``received`` submissions (listed with the
    retention jobs in ``hub.assembly.retention_jobs``)."""

    def run(session: Session) -> int:
        # The job's own session is left untouched (no transaction opened on it).
        return requeue_received(session.get_bind(), publisher, older_than_seconds)

    return RetentionJob("intake_requeue", run)
