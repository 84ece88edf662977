"""``srhub matcher train`` / ``show`` and ``srhub dedup --model`` / ``--train`` end to end, as
real processes over a census-style CSV written here; and the hub's setting that loads a model."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.census import census_style
from bench.dedup import quality
from hub.settings import SettingsError, load_person_matcher, load_settings
from registry_core.matching import Matcher, TrainedMatcher, TrainedModel
from registry_core.matching.splink_format import side_file

COLUMNS = ("id", "given_name", "family_name", "birth_date", "sex", "national_id", "address",
           "locality", "postcode")  # fmt: skip


def srhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def census_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[tuple[str, str]]]:
    """A census-style population as a person CSV (values already normalised, dates ISO)."""
    records, truth = census_style(people=800, seed=9)
    path = tmp_path_factory.mktemp("matcher") / "persons.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in records:
            birth = f"{r.birth[:4]}-{r.birth[4:6]}-{r.birth[6:]}" if r.birth else ""
            writer.writerow([r.id, r.given, r.family, birth, r.sex or "", r.national_id,
                             r.address, r.locality, r.postcode])  # fmt: skip
    return path, truth


def read_pairs(path: Path) -> set[tuple[str, str]]:
    with path.open(newline="") as handle:
        return {(row[0], row[1]) for row in list(csv.reader(handle))[1:]}


def test_train_writes_a_splink_model_that_dedup_uses(census_csv, tmp_path: Path) -> None:
    source, truth = census_csv
    model = tmp_path / "model.json"
    result = srhub("matcher", "train", "--input", str(source), "--output", str(model),
                   "--lenient-dates")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "trained on" in result.stderr
    settings = json.loads(model.read_text())
    assert settings["link_type"] == "dedupe_only" and len(settings["comparisons"]) == 6
    assert side_file(model).is_file()
    # No value from the data is printed.
    some_name = next(iter(TrainedModel.load(model).tf["family_name"]))
    assert some_name not in result.stderr

    shown = srhub("matcher", "show", str(model))
    assert shown.returncode == 0, shown.stderr
    assert "given_name" in json.loads(shown.stdout)["comparisons"]

    with_model, trained_here = tmp_path / "a.csv", tmp_path / "b.csv"
    result = srhub("dedup", "--input", str(source), "--output", str(with_model), "--model",
                   str(model), "--lenient-dates")  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = srhub("dedup", "--input", str(source), "--output", str(trained_here), "--train",
                   "--lenient-dates")  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = read_pairs(with_model)
    assert found == read_pairs(trained_here)  # same data, same seed: same model
    precision, recall, _ = quality(found, truth)
    assert precision >= 0.9 and recall >= 0.9


def test_model_and_train_together_are_refused(census_csv, tmp_path: Path) -> None:
    source, _ = census_csv
    result = srhub("dedup", "--input", str(source), "--output", str(tmp_path / "o.csv"),
                   "--train", "--model", str(source))  # fmt: skip
    assert result.returncode != 0
    assert "not both" in result.stderr


def test_the_hub_setting_loads_the_model_or_names_what_is_wrong(census_csv, tmp_path) -> None:
    source, _ = census_csv
    model = tmp_path / "model.json"
    assert srhub("matcher", "train", "--input", str(source), "--output", str(model),
                 "--lenient-dates").returncode == 0  # fmt: skip
    assert isinstance(load_person_matcher(load_settings(env={})), Matcher)
    loaded = load_person_matcher(load_settings(env={"SRHUB_MATCHER_MODEL": str(model)}))
    assert isinstance(loaded, TrainedMatcher)
    broken = tmp_path / "broken.json"
    broken.write_text('{"comparisons": []}', encoding="utf-8")
    with pytest.raises(SettingsError, match="SRHUB_MATCHER_MODEL"):
        load_person_matcher(load_settings(env={"SRHUB_MATCHER_MODEL": str(broken)}))
