"""The metrics recorder: per-minute windows, error rates, percentiles, bounded memory, and
counter sampling that survives a connector restart."""

from __future__ import annotations

from hub.monitoring.metrics import (
    DAY_MINUTES,
    SAMPLE_SIZE,
    CounterSampler,
    Recorder,
    percentile,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0


def test_windows_count_errors_and_latency_per_period() -> None:
    clock = FakeClock()
    recorder = Recorder(clock)
    for i in range(10):
        recorder.observe("ingest:tax", ok=i % 5 != 0, latency=(i + 1) / 10, error="MappingError")
    clock.now += 30 * 60  # half an hour later
    recorder.observe("ingest:tax", ok=True, latency=2.0, n=5)

    minute = recorder.window("ingest:tax", 60)
    assert (minute["count"], minute["errors"]) == (5, 0)
    assert minute["p50_ms"] == 2000.0
    hour = recorder.window("ingest:tax", 3600)
    assert (hour["count"], hour["errors"], hour["error_rate"]) == (15, 2, round(2 / 15, 4))
    assert hour["p50_ms"] == 600.0 and hour["p95_ms"] == 2000.0
    summary = recorder.summary("ingest:tax")
    assert summary["last_error"] == "MappingError"
    assert summary["last_ok_at"] > summary["last_error_at"]
    clock.now += 2 * 3600
    assert recorder.window("ingest:tax", 3600)["count"] == 0
    assert recorder.window("ingest:tax", 86400)["count"] == 15
    assert recorder.components("ingest") == ["ingest:tax"]
    assert recorder.names("ingest") == ["tax"]


def test_memory_stays_bounded() -> None:
    clock = FakeClock()
    recorder = Recorder(clock)
    for _ in range(DAY_MINUTES + 100):
        for _ in range(3):
            recorder.observe("inbound:gis", latency=0.01)
        clock.now += 60
    for value in range(SAMPLE_SIZE * 4):
        recorder.observe("inbound:gis", latency=value / 1000)
    series = recorder._series["inbound:gis"]
    assert len(series.buckets) <= DAY_MINUTES + 1
    assert len(series.buckets[-1].latencies) == SAMPLE_SIZE
    assert recorder.window("inbound:gis", 86400)["count"] <= 3 * DAY_MINUTES + SAMPLE_SIZE * 4


def test_counter_sampler_turns_totals_into_events_and_survives_restarts() -> None:
    recorder = Recorder(FakeClock())
    sampler = CounterSampler(recorder)
    sampler.sample("partner:gis", total=10, failures=2, error="gis.poll: HTTP 503")
    sampler.sample("partner:gis", total=15, failures=5)
    window = recorder.window("partner:gis", 60)
    assert (window["count"], window["errors"]) == (15, 5)
    sampler.sample("partner:gis", total=4, failures=1)  # the connector restarted at zero
    window = recorder.window("partner:gis", 60)
    assert (window["count"], window["errors"]) == (19, 6)


def test_prometheus_gets_one_dimension_per_label() -> None:
    """``stage`` and ``connector`` (or ``subscription``) are labels of their own, so
    ``sum by (connector)`` adds up one connector's traffic across stages."""
    from prometheus_client import generate_latest

    from hub.monitoring.metrics import PROMETHEUS, component_labels

    assert component_labels("inbound:gis") == ("inbound", "gis", "")
    assert component_labels("partner:national_id") == ("partner", "national_id", "")
    assert component_labels("outbound:program-mis") == ("outbound", "", "program-mis")
    recorder = Recorder()
    recorder.observe("ingest:labelled-gis", ok=False, latency=0.2, error="MappingError")
    recorder.observe("outbound:labelled-mis", latency=0.1)
    text = generate_latest(PROMETHEUS).decode()
    assert (
        'srhub_messages_total{connector="labelled-gis",outcome="error",stage="ingest",'
        'subscription=""} 1.0' in text
    )
    assert (
        'srhub_latency_seconds_count{connector="",stage="outbound",'
        'subscription="labelled-mis"} 1.0' in text
    )
    assert "component=" not in text
