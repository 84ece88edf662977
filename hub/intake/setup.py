"""Building the intake core for a process: the service the API and OpenRosa server use, the
ingest worker's handler, the re-queue job, and the sample form ``srhub run`` loads.

One place decides which review sink and which publisher the intake core gets, so the API,
the workers and the CLI agree. The review queue is passed in as ``review`` by the app and the
ingest worker (see ``review_sink``).
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from hub.intake.apply import NoReviewSink, SubmissionApplier
from hub.intake.contract import ReviewSink
from hub.intake.errors import FormVersionExists
from hub.intake.queueing import MessagePublisher, requeue_job
from hub.intake.service import IntakeService
from hub.intake.worker import IntakeSubmissionHandler
from hub.workers.retention import RetentionJob

log = logging.getLogger(__name__)

SAMPLE_FORMS = "hub.intake.sample_forms"
SAMPLE_FORM = "household_registration.xlsx"


def review_sink(runtime: Any) -> ReviewSink:
    """The sink used when the caller names none: a no-op. ``hub.review`` imports this package,
    so it cannot be named here; the hub's app (``hub.api``) and ingest worker
    (``hub.assembly``) pass ``hub.review.service.ReviewQueue()`` as ``review``."""
    del runtime
    return NoReviewSink()


def broker_publisher(settings: Any, on_publish: Any = None) -> MessagePublisher:
    """The hub's raw publisher to ``sr.inbound`` (one broker connection per thread, opened
    at the first publish)."""
    from hub.connectors_host import BrokerRawPublisher

    if on_publish is None:
        return BrokerRawPublisher(settings)
    return BrokerRawPublisher(settings, on_publish)


def applier(runtime: Any, review: ReviewSink | None = None) -> SubmissionApplier:
    return SubmissionApplier(runtime.cipher, review or review_sink(runtime))


def intake_service(
    runtime: Any,
    *,
    publisher: MessagePublisher | None = None,
    review: ReviewSink | None = None,
    audit: Any = None,
) -> IntakeService:
    """The ``IntakeBackend`` of this process over ``runtime`` (a ``HubRuntime``)."""
    return IntakeService(
        runtime.sessions,
        runtime.registry,
        applier(runtime, review),
        publisher=publisher,
        max_submission_bytes=runtime.settings.intake.max_submission_bytes,
        audit=audit,
    )


def submission_handler(runtime: Any, review: ReviewSink | None = None) -> IntakeSubmissionHandler:
    """The ingest worker's handler of ``intake.submission``."""
    return IntakeSubmissionHandler(applier(runtime, review))


def requeue(settings: Any) -> RetentionJob:
    """The periodic re-queue of stored but unhandled submissions."""
    return requeue_job(broker_publisher(settings))


def sample_form_bytes() -> bytes:
    return resources.files(SAMPLE_FORMS).joinpath(SAMPLE_FORM).read_bytes()


def load_sample_form(service: IntakeService) -> bool:
    """Upload the sample household form when the hub has no form yet; True if it did.
    Idempotent: a hub with any form (or this one already) is left as it is."""
    if service.has_forms():
        return False
    try:
        service.upload_form(sample_form_bytes(), SAMPLE_FORM, "srhub")
    except FormVersionExists:
        return False
    log.info("intake: loaded the sample form %s", SAMPLE_FORM)
    return True
