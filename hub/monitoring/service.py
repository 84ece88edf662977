"""Running monitoring inside a hub process.

Two parts, started in this order by the application (``hub.embedded_services`` for
``srhub run``; ``hub.assembly`` for ``srhub worker``; the tests' fixtures):

1. ``monitoring_middleware(settings, runtime)``: the message-log writer and the metrics as one
   ``MonitoringMiddleware``, handed to the ingest worker and the connector host before they
   start (they import no monitoring).
2. ``start_monitoring(settings, runtime, host, workers, middleware=..., jobs=...)``: one thread
   that, every ``interval_seconds`` (default 5), samples the connectors' counters into the
   metrics recorder, builds the health snapshot, evaluates the alert rules (and sends their
   webhooks), and every ``message_log_retention_interval_seconds`` (default 600) runs the
   retention jobs it was given (each package's own, see ``hub.workers.retention``).
   ``init_app(app)`` makes the API's health views read this context; ``stop()`` ends it.

Settings (``settings.monitoring``, ``hub/settings/monitoring.py``): ``interval_seconds``,
``message_log_bodies`` (connector/subscription names whose bodies are kept sealed, ``"*"`` for
all; default none), ``message_log_flush_seconds``, ``message_log_max_age_days`` (30),
``message_log_max_rows`` (1,000,000), ``message_log_max_bytes`` (1 GiB),
``message_log_retention_interval_seconds``, ``alert_webhook_url``, ``alert_webhook_secret`` and
the rule thresholds of ``alerts.AlertRules``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.monitoring import health, message_log
from hub.monitoring.alerts import AlertEvaluator, AlertRules, WebhookNotifier
from hub.monitoring.message_log import MessageLogWriter, RetentionPolicy
from hub.monitoring.metrics import RECORDER, CounterSampler, sample_connector_statuses
from hub.monitoring.middleware import MonitoringMiddleware
from hub.settings import Settings
from hub.workers.egress import EgressPolicy
from hub.workers.retention import RetentionJob, run_retention

log = logging.getLogger(__name__)


def monitoring_middleware(settings: Settings, runtime: Any) -> MonitoringMiddleware:
    """The message log and metrics of this process (not started: call ``.start()``)."""
    config = settings.monitoring
    writer = MessageLogWriter(
        runtime.sessions,
        runtime.cipher,
        body_connectors=list(config.message_log_bodies),
        flush_interval=config.message_log_flush_seconds,
    )
    return MonitoringMiddleware(writer, RECORDER)


def message_log_retention(settings: Settings) -> RetentionJob:
    """Monitoring's own retention job: the message log, within ``message_log_max_*``."""
    return message_log.retention_job(RetentionPolicy.from_settings(settings.monitoring))


@dataclass
class Monitoring:
    settings: Any
    runtime: Any
    context: health.MonitoringContext
    middleware: MonitoringMiddleware
    evaluator: AlertEvaluator
    jobs: Sequence[RetentionJob] = ()
    interval: float = 5.0
    retention_interval: float = 600.0
    owns_middleware: bool = False
    last_snapshot: dict[str, Any] | None = None
    last_retention: dict[str, Any] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sampler: CounterSampler = field(default_factory=lambda: CounterSampler(RECORDER))

    @property
    def writer(self) -> MessageLogWriter | None:
        return self.middleware.writer

    def init_app(self, app: Any) -> None:
        """Let the app's health, metrics and dashboard views read this context."""
        app.extensions[health.EXTENSION_KEY] = self.context

    def tick(self) -> dict[str, Any]:
        """One round: sample, snapshot, alerts. Public so tests and the CLI can drive it."""
        host = self.context.host
        if host is not None:
            sample_connector_statuses(self._sampler, host.statuses().values())
        snapshot = health.health_snapshot(self.context)
        self.last_snapshot = snapshot
        self.evaluator.evaluate(snapshot)
        return snapshot

    def prune(self) -> dict[str, Any]:
        """Run every retention job, each in its own transaction; results by job name."""
        self.last_retention = run_retention(self.runtime.sessions, self.jobs, keep_going=True)
        return self.last_retention

    def _run(self) -> None:
        next_prune = 0.0
        elapsed = 0.0
        while not self._stop.wait(self.interval if elapsed else 0.0):
            elapsed += self.interval
            try:
                self.tick()
            except Exception:  # a broken round is logged; the next one runs anyway
                log.exception("monitoring round failed")
            if elapsed >= next_prune and self.jobs:
                next_prune = elapsed + self.retention_interval
                self.prune()

    def start(self) -> Monitoring:
        if self.owns_middleware:
            self.middleware.start()
        self._thread = threading.Thread(target=self._run, name="srhub-monitoring", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if self.owns_middleware:
            self.middleware.stop()
        if self.context.probe is not None:
            self.context.probe.close()


def start_monitoring(
    settings: Settings,
    runtime: Any,
    host: Any = None,
    workers: Any = None,
    *,
    middleware: MonitoringMiddleware | None = None,
    jobs: Sequence[RetentionJob] | None = None,
) -> Monitoring:
    """Start monitoring for this process; call ``.stop()`` on the result at shutdown.

    ``middleware`` is the one the workers and connectors of this process were given (started
    and stopped by whoever made it); without one, a new one is made, started and stopped here.
    ``jobs`` are the retention jobs to run on schedule (default: the message log's alone)."""
    config = settings.monitoring
    owns = middleware is None
    middleware = middleware or monitoring_middleware(settings, runtime)
    context = health.MonitoringContext(settings, runtime, host, workers, writer=middleware.writer)
    url = config.alert_webhook_url
    notifier = (
        WebhookNotifier(
            url, config.alert_webhook_secret, egress=EgressPolicy.from_settings(settings)
        )
        if url
        else None
    )
    if url and not config.alert_webhook_secret:
        log.warning("alert_webhook_url is set without alert_webhook_secret: alerts go unsigned")
    evaluator = AlertEvaluator(runtime.sessions, AlertRules.from_settings(config), notifier)
    return Monitoring(
        settings,
        runtime,
        context,
        middleware,
        evaluator,
        list(jobs) if jobs is not None else [message_log_retention(settings)],
        interval=config.interval_seconds,
        retention_interval=config.message_log_retention_interval_seconds,
        owns_middleware=owns,
    ).start()
