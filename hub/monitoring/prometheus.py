"""``/metrics`` in the Prometheus text format: the recorder's counters and histograms, plus
gauges taken from a health snapshot at scrape time (queue depths, states, lag, alerts), so
Prometheus and the dashboard never disagree about the same moment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hub.monitoring.metrics import PROMETHEUS

STATES = ("up", "degraded", "down", "paused")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


class SnapshotCollector:
    """Yields gauges for one health snapshot (a fresh registry per scrape holds it)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        up = GaugeMetricFamily("srhub_check_up", "1 when the check passes.", labels=["check"])
        up.add_metric(["database"], 1.0 if snap["database"].get("ok") else 0.0)
        up.add_metric(["broker"], 1.0 if snap["broker"].get("ok") else 0.0)
        yield up

        depth = GaugeMetricFamily(
            "srhub_queue_depth", "Messages ready in each queue.", labels=["queue"]
        )
        for queue, value in (snap["broker"].get("queues") or {}).items():
            if value is not None:
                depth.add_metric([queue], float(value))
        yield depth

        state = GaugeMetricFamily(
            "srhub_component_state",
            "1 for the current state of each connector and subscription.",
            labels=["kind", "name", "state"],
        )
        circuit = GaugeMetricFamily(
            "srhub_connector_circuit_open", "1 when the circuit is open.", labels=["connector"]
        )
        backlog = GaugeMetricFamily(
            "srhub_connector_backlog", "Inbound messages not yet processed.", labels=["connector"]
        )
        lag = GaugeMetricFamily(
            "srhub_connector_lag_seconds",
            "Age of the oldest unprocessed inbound message.",
            labels=["connector"],
        )
        success = GaugeMetricFamily(
            "srhub_last_success_timestamp_seconds",
            "When each component last worked.",
            labels=["kind", "name"],
        )
        for name, entry in snap["connectors"].items():
            for value in STATES:
                current = 1.0 if entry["state"] == value else 0.0
                state.add_metric(["connector", name, value], current)
            circuit.add_metric([name], 1.0 if entry.get("circuit") == "open" else 0.0)
            backlog.add_metric([name], float(entry.get("backlog", 0)))
            lag.add_metric([name], float(entry.get("lag_seconds") or 0.0))
            moment = _epoch(entry.get("last_success_at"))
            if moment is not None:
                success.add_metric(["connector", name], moment)
        for name, entry in snap["subscriptions"].items():
            for value in STATES:
                state.add_metric(
                    ["subscription", name, value], 1.0 if entry["state"] == value else 0.0
                )
            moment = _epoch(entry.get("last_success_at"))
            if moment is not None:
                success.add_metric(["subscription", name], moment)
        yield from (state, circuit, backlog, lag, success)

        worker = CounterMetricFamily(
            "srhub_worker_messages",
            "Messages handled by each worker, by outcome.",
            labels=["worker", "outcome"],
        )
        for name, entry in snap["workers"].items():
            for outcome in ("processed", "duplicates", "failed", "dead_lettered", "requeued"):
                worker.add_metric([name, outcome], float(entry.get(outcome, 0)))
        yield worker

        alerts = GaugeMetricFamily("srhub_alerts_firing", "Alerts firing now.")
        alerts.add_metric([], float(snap["alerts"]["firing"]))
        yield alerts
        dropped = CounterMetricFamily(
            "srhub_message_log_dropped", "Message log records that could not be written."
        )
        dropped.add_metric([], float(snap["message_log"]["dropped"]))
        yield dropped


def render(snapshot: dict[str, Any]) -> bytes:
    """The whole exposition: live counters first, then the snapshot's gauges."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(SnapshotCollector(snapshot))
    return generate_latest(PROMETHEUS) + generate_latest(scrape)
