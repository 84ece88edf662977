"""The population benchmark runs and ends with its one machine-readable line."""

from __future__ import annotations

import re

import pytest

from bench.population import main


def test_bench_prints_the_summary_line_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--people", "3000", "--days", "200"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    match = re.fullmatch(
        r"population people=(\d+) seconds=([\d.]+) peak_rss_mb=([\d.]+) events=(\d+) "
        r"baseline_seconds=([\d.]+)",
        lines[-1],
    )
    assert match, lines[-1]
    assert int(match.group(1)) == 3000
    assert float(match.group(3)) > 0
    assert int(match.group(4)) > 0
    assert sum(line.startswith("population ") for line in lines) == 1
