"""How the hub's workers are put together: the generic runtime given the pipeline's handlers
and the monitoring middleware.

``hub.workers`` is a runtime that knows no pipeline; ``hub.pipeline`` offers handler factories
(``ingest_handlers``, ``dispatch_handlers``) and the relay worker; ``hub.monitoring`` offers one
middleware. This module is where they meet, for every way the hub runs:

- ``srhub worker relay|ingest|dispatch|crosscheck|quality|scoring`` (``run_worker_process``): one
  worker in this process, with its own ``HubRuntime`` and, for ingest, the message log and metrics;
- ``srhub run`` (``hub.embedded_services``): all of them as threads (``start_workers``), sharing
  the API's runtime, its monitoring middleware and its connector host;
- ``srhub monitoring prune`` and the monitoring thread: every package's retention job
  (``retention_jobs``).

A missing module fails here, at start, with Python's own error: nothing is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hub.auth import revocations
from hub.crosscheck.handlers import crosscheck_handlers
from hub.dci import retention as dci_retention
from hub.monitoring.message_log import RetentionPolicy
from hub.monitoring.message_log import retention_job as message_log_job
from hub.monitoring.service import monitoring_middleware
from hub.pipeline.dispatch import dispatch_handlers
from hub.pipeline.ingest import ingest_handlers
from hub.pipeline.relay_worker import RelayWorker
from hub.pipeline.routes import Route, connector_tables, routes_for
from hub.pipeline.verification import ConnectorLookup, no_connector
from hub.quality.handlers import quality_handlers
from hub.readaudit import retention as read_audit_retention
from hub.runtime import HubRuntime, recertification_policy
from hub.scoring.handlers import scoring_handlers
from hub.settings import Settings
from hub.subscriptions import retention as delivery_retention
from hub.workers import idempotency
from hub.workers.middleware import Middleware
from hub.workers.retention import RetentionJob
from hub.workers.runtime import ConsumerRuntime
from hub.workers.service import Worker, WorkerGroup, broker_factory, run_until_signalled
from hub.workers.status import WorkerStatus
from hub.workers.topology import (
    CROSSCHECK_QUEUE,
    DISPATCH_QUEUE,
    INGEST_QUEUE,
    QUALITY_QUEUE,
    SCORING_QUEUE,
)
from registry_core.crypto import IdentifierCipher
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

# crosscheck: registrations -> national ID verification requests, by policy (hub.crosscheck)
# quality: household and person changes -> data-quality issues re-checked (hub.quality)
# scoring: household events -> its scores and program eligibility again (hub.scoring)
WORKER_KINDS = ("relay", "ingest", "dispatch", "crosscheck", "quality", "scoring")


def build_worker(
    kind: str,
    runtime: HubRuntime,
    *,
    middleware: Iterable[Middleware] = (),
    connectors: ConnectorLookup = no_connector,
    routes: Mapping[str, Route] | None = None,
    batch_size: int | None = None,
    prefetch: int | None = None,
) -> Worker:
    """One worker of ``kind`` (relay, ingest, dispatch, crosscheck, quality, scoring), not yet
    running. ``middleware`` watches the consumers' handlings; ``connectors`` finds a running
    connector by name (the ingest worker's verification requests); ``routes`` are the ingest
    routes."""
    factory = broker_factory(runtime.settings, kind)
    if kind == "relay":
        return RelayWorker(factory, runtime.sessions, batch_size=batch_size or 500)
    options: dict[str, Any] = {}
    if batch_size:
        options["batch_size"] = batch_size
    if prefetch:
        options["prefetch"] = prefetch
    if kind == "ingest":
        if routes is None:  # a worker of its own: the instances of the connectors file
            routes = routes_for(connector_tables(runtime.settings.connectors_file))
        from hub.intake.queueing import ROUTING_KEY as INTAKE_KEY
        from hub.intake.setup import submission_handler
        from hub.review.service import ReviewQueue

        # Every applied field submission opens its review item (hub.review) in the same
        # transaction; the intake core cannot import the review queue (it imports the core).
        intake = submission_handler(runtime, ReviewQueue())
        handlers = ingest_handlers(
            runtime, routes, connectors=connectors, extra={INTAKE_KEY: intake}
        )
        queue = INGEST_QUEUE
    elif kind == "dispatch":
        handlers = dispatch_handlers(runtime)
        queue = DISPATCH_QUEUE
    elif kind == "crosscheck":
        handlers = crosscheck_handlers(runtime)
        queue = CROSSCHECK_QUEUE
    elif kind == "quality":
        handlers = quality_handlers(runtime)
        queue = QUALITY_QUEUE
    elif kind == "scoring":
        handlers = scoring_handlers(runtime)
        queue = SCORING_QUEUE
    else:
        raise ValueError(f"unknown worker kind {kind!r}; use one of {', '.join(WORKER_KINDS)}")
    return ConsumerRuntime(
        kind, queue, factory, runtime.sessions, handlers, middleware=middleware, **options
    )


def start_workers(
    runtime: HubRuntime,
    kinds: Iterable[str] = WORKER_KINDS,
    *,
    middleware: Iterable[Middleware] = (),
    connectors: ConnectorLookup = no_connector,
    routes: Mapping[str, Route] | None = None,
) -> WorkerGroup:
    """Start the given workers as threads; call ``stop()`` on the result to shut them down.
    The middleware watches the ingest worker (the stage monitoring reports on); ``routes`` are
    the ingest routes (default: those of the connectors file)."""
    watchers = tuple(middleware)
    workers = {
        kind: build_worker(
            kind,
            runtime,
            middleware=watchers if kind == "ingest" else (),
            connectors=connectors,
            routes=routes,
        )
        for kind in kinds
    }
    return WorkerGroup(workers).start()


def run_worker_process(
    kind: str,
    settings: Settings,
    *,
    batch_size: int | None = None,
    prefetch: int | None = None,
) -> WorkerStatus:
    """Run one worker in this process until SIGTERM/SIGINT; return its final status. An
    ingest worker records its outcomes in the message log and metrics, as in ``srhub run``."""
    if kind not in WORKER_KINDS:
        raise ValueError(f"unknown worker kind {kind!r}; use one of {', '.join(WORKER_KINDS)}")
    runtime = HubRuntime(settings)
    watcher = monitoring_middleware(settings, runtime) if kind == "ingest" else None
    host = outbound_connectors(settings, runtime) if kind == "ingest" else None
    try:
        worker = build_worker(
            kind,
            runtime,
            middleware=[watcher] if watcher is not None else (),
            connectors=host.connector if host is not None else no_connector,
            batch_size=batch_size,
            prefetch=prefetch,
        )
        if watcher is not None:
            watcher.start()
        return run_until_signalled(worker, kind)
    finally:
        if watcher is not None:
            watcher.stop()
        if host is not None:
            host.stop()
        runtime.close()


def outbound_connectors(settings: Settings, runtime: HubRuntime) -> Any | None:
    """The connectors of the connectors file, built but not started, for a separate ingest
    worker: its verification requests (staff's and the registration cross-check's) call the
    national ID authority through them. Nothing polls, listens or subscribes here: that stays
    with the process that runs the connectors (``srhub run``). None without a connectors
    file."""
    from hub.connectors_host import ConnectorHost

    configs = connector_tables(settings.connectors_file)
    if not configs:
        return None
    host = ConnectorHost(settings, runtime.engine).build(configs)
    for name, problem in sorted(host.problems.items()):
        log.warning("ingest worker: connector %s not available for look-ups: %s", name, problem)
    return host


def retention_jobs(
    settings: Settings,
    *,
    message_log: RetentionPolicy | None = None,
    connector_configs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RetentionJob]:
    """Every package's retention job, built (and their settings checked) now: the message
    log, the DCI transactions, the delivery log and the processed-message store; the intake
    core's re-queue of stored submissions no worker has taken yet; the recertification
    round (it deletes nothing: it flags households due or overdue and writes their events);
    the daily snapshot of the policy headline counts; and the data-quality scan's share (it
    starts a full scan when one is due and checks a few batches of the running one,
    ``hub.quality.scan``); and the purge of the read audit past its retention, which
    leaves an anchor so the rest still verifies (``hub.readaudit``)."""
    from hub.intake.setup import requeue

    config = settings.monitoring
    return [
        message_log_job(message_log or RetentionPolicy.from_settings(config)),
        dci_retention.retention_job(config.dci_transaction_max_age_days),
        delivery_retention.retention_job(config.delivery_log_max_age_days),
        idempotency.retention_job(),
        requeue(settings),
        recertification_job(settings),
        quality_scan_job(settings),
        revocations.retention_job(),
        policy_snapshot_job(settings),
        partner_archive_job(settings, connector_configs),
        identifier_rekey_job(settings),
        read_audit_retention.retention_job(settings.read_audit.retention_days),
    ]


def identifier_rekey_job(settings: Settings) -> RetentionJob:
    """The background share of an identifier key rotation (``hub.keyrotation.rekey``): rows
    still under an older key version move to the active one a few batches per round."""
    from hub.keyrotation.rekey import rekey_job
    from hub.settings import identifier_cipher, load_identifier_profile, load_keys

    def cipher() -> IdentifierCipher:
        return identifier_cipher(settings, load_keys(settings), load_identifier_profile(settings))

    return rekey_job(cipher, settings.openrosa.realm)


def policy_snapshot_job(
    settings: Settings, today: Callable[[], date] | None = None
) -> RetentionJob:
    """Today's snapshot of the policy headline counts (``registry_core.reports.snapshots``):
    the retention runner runs every few minutes, and today's row is retaken once it is an
    hour old, so a past day keeps its figures as of its last hour. Its result is the rows
    written (0 when today's row is recent); it deletes nothing."""
    from registry_core.reports.snapshots import take_snapshot

    reports = settings.reports
    clock = today or (lambda: utcnow().date())

    def snapshot(session: Session) -> int:
        return take_snapshot(
            session,
            day=clock(),
            min_cell=reports.min_cell,
            facts=reports.facts(),
            refresh_after=timedelta(hours=1),
        )

    return RetentionJob("policy_snapshot", snapshot)


def drop_folders(configs: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """The drop folders of the connector instances in ``configs`` (a ``drop.folder`` or a
    ``drop_folder`` setting), each once."""
    found: list[Path] = []
    for table in configs.values():
        drop = table.get("drop")
        folder = drop.get("folder") if isinstance(drop, Mapping) else None
        folder = folder or table.get("drop_folder")
        if isinstance(folder, str | Path) and str(folder) and Path(folder) not in found:
            found.append(Path(folder))
    return found


def partner_archive_job(
    settings: Settings, connector_configs: Mapping[str, Mapping[str, Any]] | None = None
) -> RetentionJob:
    """Deletes archived partner files (``processed/`` and ``rejected/`` of every connector's
    drop folder) older than ``partner_file_archive_max_age_days``: they hold the partners'
    extracts, national IDs in clear (docs/security.md). ``connector_configs`` default: the
    tables of ``SRHUB_CONNECTORS_FILE``. Its result is the number of files deleted."""
    from connectors.base.filedrop import prune_archives

    if connector_configs is None:
        try:
            connector_configs = connector_tables(settings.connectors_file)
        except (OSError, ValueError):  # unreadable: the connector host reports it
            connector_configs = {}
    folders = drop_folders(connector_configs)
    max_age = settings.monitoring.partner_file_archive_max_age_days * 86_400

    def prune(_session: Session) -> int:
        now = time.time()
        return sum(prune_archives(folder, max_age, now) for folder in folders)

    return RetentionJob("partner_file_archives", prune)


def quality_scan_job(settings: Settings) -> RetentionJob:
    """The scheduled data-quality scan in the retention runner's transaction; its result is
    the number of households and persons it checked (it deletes nothing)."""
    from hub.quality.scan import scheduled_job

    return RetentionJob("quality_scan", scheduled_job(settings.quality))


def recertification_job(
    settings: Settings, today: Callable[[], date] | None = None
) -> RetentionJob:
    """The recertification round as of ``today()`` (default: the current UTC day; tests inject
    a clock), in the retention runner's transaction. Its result is the number of events it
    wrote (reminders and overdue flags), like the intake re-queue's count: it deletes nothing."""
    from registry_core.services.recertification import run_round

    policy = recertification_policy(settings)
    clock = today or (lambda: utcnow().date())

    def round_(session: Session) -> int:
        result = run_round(session, policy, clock())
        return len(result.reminded) + len(result.overdue)

    return RetentionJob("recertification", round_)
