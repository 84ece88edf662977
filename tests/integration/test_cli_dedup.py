"""``srhub dedup`` end to end: a real process over a CSV written here."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

HEADER = "id,given_name,family_name,birth_date,sex,address,locality,postcode,national_id"
ROWS = [
    # p1, p2 (nickname, typo, short address) and p3 (swapped names, FEBRL date) are one person.
    "p1,Robert,Tembo,1979-04-18,m,12 Jacaranda Street,Riverside,4410,NI-1234-5678",
    "p2,Bob,Tembo,1979-04-18,M,12 Jacaranda St,Riverside,4410,NI-1234-5678",
    "p3,Tembo,Robert,19790418,m,12 jacaranda street,riverside,4410,",
    # p4 is a different person sharing the town.
    "p4,Grace,Banda,1990-11-02,f,3 Mopani Close,Riverside,4410,NI-9999-0000",
    # p5 has an impossible date: skipped with a reason, the rest still processed.
    "p5,Grace,Banda,1990-02-30,f,3 Mopani Close,Riverside,4410,",
    # p6 and p7 are twins: same family, date and address, different given names.
    "p6,Alinafe,Phiri,2001-07-07,f,8 Baobab Road,Hilltop,5520,",
    "p7,Chikondi,Phiri,2001-07-07,f,8 Baobab Road,Hilltop,5520,",
]


def run_dedup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "dedup", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_pairs(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_dedup_writes_sorted_pairs_and_skips_bad_rows(tmp_path: Path) -> None:
    source = tmp_path / "persons.csv"
    source.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n", encoding="utf-8")
    output = tmp_path / "pairs.csv"
    review = tmp_path / "review.csv"
    result = run_dedup(
        "--input", str(source), "--output", str(output), "--review-output", str(review)
    )
    assert result.returncode == 0, result.stderr
    rows = read_pairs(output)
    assert rows[0] == ["id_a", "id_b", "score"]
    pairs = [(a, b) for a, b, _ in rows[1:]]
    assert pairs == [("p1", "p2"), ("p1", "p3"), ("p2", "p3")]
    assert all(0.99 <= float(score) <= 1.0 for _, _, score in rows[1:])
    # The bad row is reported by row number and column, without its values.
    assert "skipped row 6: column birth_date" in result.stderr
    assert "1990-02-30" not in result.stderr and "Banda" not in result.stderr
    # The twins are not merged automatically; they wait for a person.
    review_pairs = [(a, b) for a, b, _ in read_pairs(review)[1:]]
    assert ("p6", "p7") in review_pairs


def test_threshold_option_changes_the_output(tmp_path: Path) -> None:
    source = tmp_path / "persons.csv"
    source.write_text(
        "id,given_name,family_name,birth_date\na,Amelia,Okonkwo,1984-06-21\nb,Amelia,Okonkwo,\n",
        encoding="utf-8",
    )
    strict, lax = tmp_path / "strict.csv", tmp_path / "lax.csv"
    assert run_dedup("--input", str(source), "--output", str(strict)).returncode == 0
    result = run_dedup("--input", str(source), "--output", str(lax), "--threshold", "0.5")
    assert result.returncode == 0, result.stderr
    assert read_pairs(strict)[1:] == []  # names alone are not proof by default
    assert [row[:2] for row in read_pairs(lax)[1:]] == [["a", "b"]]


def test_unknown_header_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "persons.csv"
    source.write_text("id,first_name,family_name\n1,Ann,Lee\n", encoding="utf-8")
    result = run_dedup("--input", str(source), "--output", str(tmp_path / "out.csv"))
    assert result.returncode != 0
    assert not (tmp_path / "out.csv").exists()  # nothing written on a rejected input
    assert "first_name" in result.stderr
    assert "accepted columns are: id, given_name, family_name" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_cell_count_and_duplicate_ids_are_skipped(tmp_path: Path) -> None:
    source = tmp_path / "persons.csv"
    source.write_text(
        "id,given_name,family_name\n1,Ann,Lee\n2,Ann\n1,Ann,Lee\n3,Ann,Lee\n", encoding="utf-8"
    )
    output = tmp_path / "out.csv"
    result = run_dedup("--input", str(source), "--output", str(output), "--threshold", "0.5")
    assert result.returncode == 0, result.stderr
    assert "skipped row 3: column -: has 2 cells, the header has 3" in result.stderr
    assert "skipped row 4: column id: repeats the id of an earlier row" in result.stderr
    assert [row[:2] for row in read_pairs(output)[1:]] == [["1", "3"]]


def test_lenient_dates_keep_the_row(tmp_path: Path) -> None:
    source = tmp_path / "persons.csv"
    source.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n", encoding="utf-8")
    output = tmp_path / "pairs.csv"
    result = run_dedup("--input", str(source), "--output", str(output), "--lenient-dates")
    assert result.returncode == 0, result.stderr
    assert "row 6: column birth_date: not a real calendar date; kept as typed" in result.stderr
    assert "skipped" not in result.stderr
    pairs = [(a, b) for a, b, _ in read_pairs(output)[1:]]
    # p5 (date typed 30 February) is now compared, and is p4 with a mistyped date.
    assert ("p4", "p5") in pairs
