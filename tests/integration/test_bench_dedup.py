"""bench.dedup runs every set and ends with its one machine-readable line; the held-out
generator is deterministic and its truth is what its ids say."""

from __future__ import annotations

import re

import pytest

from bench.census import census_style
from bench.dedup import DataMissing, febrl_dir, main, truth_from_ids


@pytest.mark.slow
def test_bench_prints_the_summary_line_last(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        febrl_dir()
    except DataMissing as exc:
        pytest.skip(f"FEBRL data not available: {exc}")
    assert main(["--records", "3000", "--no-splink"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    last = lines[-1]
    assert last.startswith("dedup ") and sum(line.startswith("dedup ") for line in lines) == 1
    figures = dict(item.split("=") for item in last.split()[1:])
    for key in ("febrl4_f1", "febrl4_seconds", "heldout_f1", "heldout_seconds", "febrl3_f1",
                "records_100k_seconds", "baseline_exact_f1"):  # fmt: skip
        assert re.fullmatch(r"[\d.]+", figures[key]), key
    assert "febrl4_splink_f1" not in figures  # --no-splink
    assert float(figures["febrl4_f1"]) >= 0.99
    assert float(figures["heldout_f1"]) > float(figures["baseline_exact_f1"])
    assert any(line.startswith("heldout rules") for line in lines)


def test_census_style_is_reproducible_and_its_truth_follows_the_ids() -> None:
    records, truth = census_style(people=300, seed=1)
    again, _ = census_style(people=300, seed=1)
    other, _ = census_style(people=300, seed=2)
    assert [r.id for r in records] == [r.id for r in again]
    assert [r.given for r in records] != [r.given for r in other]
    assert truth == truth_from_ids(r.id for r in records)
    people = {r.id.split("-")[1] for r in records}
    assert len(people) <= 300 and len(records) > len(people)  # several sources per person
    assert {r.id.rsplit("-", 1)[1] for r in records} == {"census", "health", "school"}
