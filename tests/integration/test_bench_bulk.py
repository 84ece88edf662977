"""bench.bulk runs its three phases and the database floor on PostgreSQL and ends with its
one machine-readable line, the floor between the import and COPY."""

from __future__ import annotations

import re

import pytest

from bench.bulk import main
from tests.services import postgres_url_or_skip


@pytest.mark.slow
def test_bench_bulk_prints_the_floor_and_the_summary_line_last(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SRHUB_BENCH_DATABASE_URL", postgres_url_or_skip())
    assert main(["--rows", "400", "--batch-size", "150", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    last = lines[-1]
    assert last.startswith("bulk ") and sum(line.startswith("bulk ") for line in lines) == 1
    figures = dict(item.split("=") for item in last.split()[1:])
    for key in ("import_rows_per_s", "tax_rows_per_s", "import_floor_rows_per_s",
                "copy_rows_per_s", "peak_rss_mb"):  # fmt: skip
        assert re.fullmatch(r"\d+", figures[key]), key
    assert figures["rows"] == "400"
    floor = next(line for line in lines if line.startswith("floor:"))
    # Every input row became a person, a membership, provenance and match keys at least.
    table_rows = int(re.search(r"the import's (\d+) table rows", floor).group(1))  # type: ignore[union-attr]
    assert table_rows > 4 * 400
    assert "rejected import=0 tax=0" in lines[-2]
