"""The dashboard's pure parts, without a server: password hashes, the per-minute chart series
computed from the monitoring recorder, the dead-letter grouping and the time filter.

(They sit with the dashboard's integration tests because that is the dashboard's test area.)
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.deadletters import DeadLetter
from hub.monitoring.metrics import Recorder
from hub.ui.charts import errors_svg, per_minute, throughput_svg
from hub.ui.deadletter_view import group
from hub.ui.passwords import PasswordPolicyError, hash_password, verify_password
from hub.ui.views import _when

FAST = {"n": 2**10, "r": 8, "p": 1}  # cheap parameters: these tests check logic, not cost


def test_password_hashes_verify_only_the_right_password() -> None:
    stored = hash_password("a long enough passphrase", **FAST)
    assert stored.startswith("scrypt$1024$8$1$")
    assert verify_password("a long enough passphrase", stored)
    assert not verify_password("a long enough passphrasE", stored)
    assert hash_password("a long enough passphrase", **FAST) != stored  # salted
    for broken in ("", "scrypt$x$8$1$AA==$AA==", "bcrypt$1$2$3$4$5", stored[:-4]):
        assert not verify_password("a long enough passphrase", broken)
    with pytest.raises(PasswordPolicyError, match="at least 12"):
        hash_password("short", **FAST)


def test_chart_series_give_each_minute_its_own_count() -> None:
    now = [datetime(2026, 11, 26, 10, 30, 20, tzinfo=UTC).timestamp()]
    recorder = Recorder(clock=lambda: now[0])
    recorder.observe("inbound:tax", n=5)
    recorder.observe("ingest:tax", ok=False, error="SchemaViolation", n=2)
    now[0] += 120  # two minutes later
    recorder.observe("inbound:tax", n=7)
    recorder.observe("inbound:gis", n=1)
    series = per_minute(recorder, minutes=5, now=datetime.fromtimestamp(now[0], UTC))
    assert [m.strftime("%H:%M") for m in series.minutes] == [
        "10:28",
        "10:29",
        "10:30",
        "10:31",
        "10:32",
    ]
    assert series.counts["inbound"] == [0, 0, 5, 0, 8]
    assert series.counts["ingest"] == [0, 0, 2, 0, 0]
    assert series.errors["ingest"] == [0, 0, 2, 0, 0]
    assert series.errors["inbound"] == [0, 0, 0, 0, 0]
    svg = throughput_svg(series)
    assert svg.startswith("<svg") and "<script" not in svg and "10:28" in svg
    assert "Errors per minute" in errors_svg(series)


def _letter(message_id: str, error_class: str, last: str, reason: str = "r") -> DeadLetter:
    return DeadLetter(
        message_id, "tax.person", error_class, reason, "sr.inbound", "sr.ingest", 3, last, last, 0
    )


def test_dead_letters_group_by_error_class_with_first_and_last_failure() -> None:
    groups = group(
        [
            _letter("a", "SchemaViolation", "2026-11-26T10:00:00+00:00", "old"),
            _letter("b", "MappingError", "2026-11-26T09:00:00+00:00"),
            _letter("c", "SchemaViolation", "2026-11-26T11:00:00+00:00", "newest"),
            _letter("d", "", "2026-11-26T08:00:00+00:00"),
        ]
    )
    assert [(g.error_class, g.count) for g in groups] == [
        ("SchemaViolation", 2),
        ("(none)", 1),
        ("MappingError", 1),
    ]
    first = groups[0]
    assert first.first_failure == "2026-11-26T10:00:00+00:00"
    assert first.last_failure == "2026-11-26T11:00:00+00:00"
    assert first.example_reason == "newest"


def test_times_are_shown_in_utc_to_the_second() -> None:
    assert _when("2026-11-26T12:30:05.123456+02:00") == "2026-11-26 10:30:05"
    assert _when(datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC)) == "2026-01-02 03:04:05"
    assert _when(None) == "" and _when("not a time") == "not a time"
