"""Throughput, errors and latency per component, over the last minute, hour and day.

Prometheus counters say how much happened since the process started; an operator looking at a
screen wants "how is it doing *now*". So each observation also lands in a per-minute bucket of
a small ring (one day of minutes per component), from which any window's count, error rate and
latency percentiles (p50, p95, from a bounded sample per minute) are computed on demand.

Inside the process a component is named ``<stage>:<name>``: ``inbound:<connector>`` (raw
records published), ``ingest:<connector>`` (records applied to the registry; latency is
publish-to-applied), ``partner:<connector>`` (calls to the partner, sampled from the
connector's status counters), ``outbound:<subscription>`` (deliveries). Memory stays bounded: at
most 1,440 buckets per component, each with at most ``SAMPLE_SIZE`` latency values.

Prometheus gets each dimension in a label of its own (``component_labels``): ``stage``, and
``connector`` or ``subscription``, so ``sum by (connector) (...)`` adds up a connector's
inbound, ingest and partner traffic, and ``sum by (stage)`` every connector's.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

SAMPLE_SIZE = 128  # latency values kept per minute bucket (reservoir sample)
DAY_MINUTES = 24 * 60
WINDOWS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}

# The hub's own Prometheus registry (not the global default: tests build many apps).
PROMETHEUS = CollectorRegistry(auto_describe=True)
LABELS = ("stage", "connector", "subscription")
MESSAGES = Counter(
    "srhub_messages",
    "Messages handled per stage, connector or subscription, and outcome (ok or error).",
    [*LABELS, "outcome"],
    registry=PROMETHEUS,
)
LATENCY = Histogram(
    "srhub_latency_seconds",
    "Handling latency per stage and connector or subscription (ingest: publish to applied).",
    list(LABELS),
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=PROMETHEUS,
)
SUBSCRIPTION_STAGES = frozenset({"outbound"})  # their name is a subscription, not a connector


def component_labels(component: str) -> tuple[str, str, str]:
    """``(stage, connector, subscription)`` of a ``<stage>:<name>`` component; the label that
    does not apply is empty (Prometheus reads an empty label as absent)."""
    stage, _, name = component.partition(":")
    if stage in SUBSCRIPTION_STAGES:
        return stage, "", name
    return stage, name, ""


@dataclass
class _Bucket:
    minute: int
    count: int = 0
    errors: int = 0
    seen_latencies: int = 0
    latencies: list[float] = field(default_factory=list)

    def add_latency(self, value: float, rng: random.Random) -> None:
        # Reservoir sampling: every value has the same chance to be kept, memory stays fixed.
        self.seen_latencies += 1
        if len(self.latencies) < SAMPLE_SIZE:
            self.latencies.append(value)
            return
        slot = rng.randrange(self.seen_latencies)
        if slot < SAMPLE_SIZE:
            self.latencies[slot] = value


@dataclass
class _Series:
    buckets: deque[_Bucket] = field(default_factory=lambda: deque(maxlen=DAY_MINUTES + 1))
    last_event_at: float | None = None
    last_ok_at: float | None = None
    last_error_at: float | None = None
    last_error: str | None = None


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None


class Recorder:
    """Thread-safe store of observations; ``clock`` returns epoch seconds (tests pass their own)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()  # sampling, not security

    def observe(
        self,
        component: str,
        *,
        ok: bool = True,
        latency: float | None = None,
        error: str | None = None,
        n: int = 1,
    ) -> None:
        """Record ``n`` events of ``component``; ``error`` is a short reason, never a payload."""
        if n <= 0:
            return
        now = self._clock()
        minute = int(now // 60)
        with self._lock:
            series = self._series.setdefault(component, _Series())
            if not series.buckets or series.buckets[-1].minute != minute:
                series.buckets.append(_Bucket(minute))
            bucket = series.buckets[-1]
            bucket.count += n
            series.last_event_at = now
            if ok:
                series.last_ok_at = now
            else:
                bucket.errors += n
                series.last_error_at = now
                if error:
                    series.last_error = error[:300]
            if latency is not None and latency >= 0:
                bucket.add_latency(latency, self._rng)
        labels = component_labels(component)
        MESSAGES.labels(*labels, "ok" if ok else "error").inc(n)
        if latency is not None and latency >= 0:
            LATENCY.labels(*labels).observe(latency)

    def window(self, component: str, seconds: int) -> dict[str, Any]:
        """Counts, error rate, rate per minute and latency p50/p95 (ms) over the last
        ``seconds`` (whole minutes, the current one included)."""
        now_minute = int(self._clock() // 60)
        first = now_minute - max(1, seconds // 60) + 1
        count = errors = 0
        latencies: list[float] = []
        with self._lock:
            series = self._series.get(component)
            buckets = [b for b in series.buckets if b.minute >= first] if series else []
            for bucket in buckets:
                count += bucket.count
                errors += bucket.errors
                latencies.extend(bucket.latencies)
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        return {
            "count": count,
            "errors": errors,
            "error_rate": round(errors / count, 4) if count else 0.0,
            "per_minute": round(count / max(1, seconds // 60), 3),
            "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
            "p95_ms": round(p95 * 1000, 1) if p95 is not None else None,
        }

    def summary(self, component: str) -> dict[str, Any]:
        """The three standard windows plus the last event, success and error."""
        with self._lock:
            series = self._series.get(component)
            last = (
                (series.last_event_at, series.last_ok_at, series.last_error_at, series.last_error)
                if series
                else (None, None, None, None)
            )
        found: dict[str, Any] = {name: self.window(component, s) for name, s in WINDOWS.items()}
        found.update(
            last_event_at=_iso(last[0]),
            last_ok_at=_iso(last[1]),
            last_error_at=_iso(last[2]),
            last_error=last[3],
        )
        return found

    def components(self, kind: str | None = None) -> list[str]:
        with self._lock:
            names = sorted(self._series)
        return [n for n in names if kind is None or n.startswith(f"{kind}:")]

    def names(self, kind: str) -> list[str]:
        """The names after ``<kind>:`` (e.g. every connector seen by ingest)."""
        return [c.split(":", 1)[1] for c in self.components(kind)]

    def reset(self) -> None:
        with self._lock:
            self._series.clear()


# The process's recorder: the hooks write here, health and /metrics read it.
RECORDER = Recorder()


class CounterSampler:
    """Turns monotonically growing counters (a connector status's ``calls``/``failures``)
    into recorder events, by difference from the previous sample; a counter that went down
    (the connector restarted) starts over."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._previous: dict[str, tuple[int, int]] = {}

    def sample(self, component: str, total: int, failures: int, error: str | None = None) -> None:
        before_total, before_failures = self._previous.get(component, (0, 0))
        if total < before_total or failures < before_failures:
            before_total = before_failures = 0
        self._previous[component] = (total, failures)
        new_failures = failures - before_failures
        new_ok = max(0, (total - before_total) - new_failures)
        self._recorder.observe(component, ok=True, n=new_ok)
        self._recorder.observe(component, ok=False, n=new_failures, error=error)


def sample_connector_statuses(sampler: CounterSampler, statuses: Iterable[dict[str, Any]]) -> None:
    """Feed ``partner:<name>`` from each connector status snapshot's counters."""
    for status in statuses:
        counts = status.get("counts") or {}
        sampler.sample(
            f"partner:{status.get('name')}",
            int(counts.get("calls", 0)),
            int(counts.get("failures", 0)),
            status.get("last_error"),
        )
