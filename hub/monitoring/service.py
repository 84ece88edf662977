"""Running monitoring inside a hub process: ``start_monitoring(settings, runtime, host, workers)``.

It starts the message-log writer and one thread that, every ``interval_seconds`` (default
5), samples the connectors' counters into the metrics recorder, builds the health
snapshot, evaluates the alert rules (and sends their webhooks), and every
``message_log_retention_interval_seconds`` (default 600) enforces the message-log retention.
``stop()`` ends both and uninstalls them.

Settings (``settings.monitoring``, ``hub/settings/monitoring.py``): ``interval_seconds``,
``message_log_bodies`` (connector/subscription names whose
bodies are kept sealed, ``"*"`` for all; default none), ``message_log_max_age_days`` (30),
``message_log_max_rows`` (1,000,000), ``message_log_max_bytes`` (1 GiB),
``message_log_retention_interval_seconds``, ``alert_webhook_url``, ``alert_webhook_secret`` and
the rule thresholds of ``alerts.AlertRules``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from hub.monitoring import health, message_log
from hub.monitoring.alerts import AlertEvaluator, AlertRules, WebhookNotifier
from hub.monitoring.log_retention import LogAges, prune_logs
from hub.monitoring.message_log import MessageLogWriter, RetentionPolicy, enforce_retention
from hub.monitoring.metrics import RECORDER, CounterSampler, sample_connector_statuses

log = logging.getLogger(__name__)


@dataclass
class Monitoring:
    settings: Any
    runtime: Any
    context: health.MonitoringContext
    writer: MessageLogWriter
    evaluator: AlertEvaluator
    policy: RetentionPolicy
    ages: LogAges = field(default_factory=LogAges)
    interval: float = 5.0
    retention_interval: float = 600.0
    last_snapshot: dict[str, Any] | None = None
    last_retention: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sampler: CounterSampler = field(default_factory=lambda: CounterSampler(RECORDER))

    def tick(self) -> dict[str, Any]:
        """One round: sample, snapshot, alerts. Public so tests and the CLI can drive it."""
        host = self.context.host
        if host is not None:
            sample_connector_statuses(self._sampler, host.statuses().values())
        snapshot = health.health_snapshot(self.context)
        self.last_snapshot = snapshot
        self.evaluator.evaluate(snapshot)
        return snapshot

    def prune(self) -> Any:
        """Retention of the message log, then of the DCI transactions and the delivery log
        (``log_retention``), each in its own transaction."""
        with self.runtime.sessions.begin() as session:
            self.last_retention = enforce_retention(session, self.policy)
        if self.last_retention.deleted:
            log.info("message log retention: %s", self.last_retention)
        with self.runtime.sessions.begin() as session:
            pruned = prune_logs(session, self.ages)
        if any(pruned.values()):
            log.info("log retention: deleted %s", pruned)
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
            if elapsed >= next_prune:
                next_prune = elapsed + self.retention_interval
                try:
                    self.prune()
                except Exception:
                    log.exception("message log retention failed")

    def start(self) -> Monitoring:
        self.writer.start()
        message_log.install_writer(self.writer)
        health.install_context(self.context)
        self._thread = threading.Thread(target=self._run, name="srhub-monitoring", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        if message_log.active_writer() is self.writer:
            message_log.install_writer(None)
        self.writer.stop()
        if health.active_context() is self.context:
            health.install_context(None)
        if self.context.probe is not None:
            self.context.probe.close()


def start_monitoring(
    settings: Any, runtime: Any, host: Any = None, workers: Any = None
) -> Monitoring:
    """Start monitoring for this process; call ``.stop()`` on the result at shutdown."""
    config = settings.monitoring
    context = health.MonitoringContext(settings, runtime, host, workers)
    writer = MessageLogWriter(
        runtime.sessions,
        runtime.cipher,
        body_connectors=list(config.message_log_bodies),
        flush_interval=config.message_log_flush_seconds,
    )
    url = config.alert_webhook_url
    notifier = WebhookNotifier(url, config.alert_webhook_secret) if url else None
    if url and not config.alert_webhook_secret:
        log.warning("alert_webhook_url is set without alert_webhook_secret: alerts go unsigned")
    evaluator = AlertEvaluator(runtime.sessions, AlertRules.from_settings(config), notifier)
    return Monitoring(
        settings,
        runtime,
        context,
        writer,
        evaluator,
        RetentionPolicy.from_settings(config),
        ages=LogAges.from_settings(config),
        interval=config.interval_seconds,
        retention_interval=config.message_log_retention_interval_seconds,
    ).start()
