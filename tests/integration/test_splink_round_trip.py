"""A model trained here, loaded into splink 5 (DuckDB), scores every pair with our weight; and a
model splink trains on our comparison levels comes back and scores as splink does.

splink is a dev dependency (benchmark and this test only); the hub never imports it.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from bench.census import census_style
from registry_core.matching import (
    TrainedMatcher,
    TrainedModel,
    TrainingOptions,
    make_person,
    train,
)
from registry_core.matching.blocking import candidate_pairs
from registry_core.matching.levels import COMPARISONS, comparison_vector
from registry_core.matching.splink_format import INPUT_COLUMNS, splink_rows
from registry_core.matching.training import term_frequencies

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

TOLERANCE = 1e-6
_GIVEN = [s.name for s in COMPARISONS].index("given_name")
_FAMILY = [s.name for s in COMPARISONS].index("family_name")


@pytest.fixture(scope="module")
def records() -> list:
    found, _truth = census_style(people=1500, seed=5)
    return found


@pytest.fixture(scope="module")
def model(records) -> TrainedModel:
    return train(records, TrainingOptions(u_samples=50_000, seed=2))


def splink_linker(records, settings):
    """A splink linker over our normalised columns, with a model given as a path or dict."""
    db_api = splink.DuckDBAPI()
    frame = pd.DataFrame(splink_rows(records), columns=list(INPUT_COLUMNS))
    return splink.Linker(db_api.register(frame), settings, log_level=logging.ERROR)


def predicted(linker) -> dict[tuple[str, str], float]:
    frame = linker.inference.predict().as_pandas_dataframe()
    weights = {}
    for left, right, weight in zip(
        frame["unique_id_l"], frame["unique_id_r"], frame["match_weight"], strict=True
    ):
        key = (left, right) if left < right else (right, left)
        weights[key] = float(weight)
    return weights


def assert_same_weights(records, matcher: TrainedMatcher, splink_weights) -> int:
    """Every pair splink scored has our weight; returns how many were name-frequency adjusted."""
    by_id = {r.id: r for r in records}
    adjusted = 0
    for (id_a, id_b), theirs in splink_weights.items():
        a, b = by_id[id_a], by_id[id_b]
        ours = matcher.match_weight(a, b)
        assert abs(ours - theirs) <= TOLERANCE, (id_a, id_b, ours, theirs)
        vector = comparison_vector(a, b)
        adjusted += vector[_GIVEN] == 1 or vector[_FAMILY] == 1
    return adjusted


def test_our_model_scores_the_same_in_splink(records, model, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    model.save(path)
    linker = splink_linker(records, str(path))  # splink reads the file as it would its own
    weights = predicted(linker)
    adjusted = assert_same_weights(records, TrainedMatcher(model), weights)
    assert len(weights) > 5_000 and adjusted > 1_000
    # splink's blocking rules (one per pass) find at least every pair our blocking finds.
    ours = {
        (records[i].id, records[j].id) if records[i].id < records[j].id else
        (records[j].id, records[i].id)
        for i, j in candidate_pairs(records)
    }  # fmt: skip
    assert ours <= weights.keys()

    # splink's own export of the loaded model comes back to the same weights.
    exported = tmp_path / "from_splink.json"
    linker.misc.save_model_to_json(str(exported), overwrite=True)
    back = TrainedModel.load(exported)  # no side file: splink wrote only its settings
    back = TrainedModel(
        m=back.m,
        u=back.u,
        probability_two_random_records_match=back.probability_two_random_records_match,
        tf=model.tf,
    )
    flat_back = [w for row in back.level_weights() for w in row]
    flat_ours = [w for row in model.level_weights() for w in row]
    assert flat_back == pytest.approx(flat_ours, abs=1e-12)
    assert back.prior_weight() == pytest.approx(model.prior_weight(), abs=1e-12)


def test_a_model_splink_trains_on_our_levels_loads_here(records, model, tmp_path: Path) -> None:
    linker = splink_linker(records, json.loads(model.to_json()))
    linker.training.estimate_u_using_random_sampling(max_pairs=2e5, seed=3)
    linker.training.estimate_parameters_using_expectation_maximisation(
        splink.block_on("birth_date")
    )
    exported = tmp_path / "splink_trained.json"
    linker.misc.save_model_to_json(str(exported), overwrite=True)
    settings = json.loads(exported.read_text())
    imported = TrainedModel.load(exported)
    assert imported.u != model.u  # splink's own estimates, not ours
    imported = TrainedModel(
        m=imported.m,
        u=imported.u,
        probability_two_random_records_match=imported.probability_two_random_records_match,
        tf=term_frequencies(records),  # what splink computes from the same data
    )
    weights = predicted(splink_linker(records, settings))
    adjusted = assert_same_weights(records, TrainedMatcher(imported), weights)
    assert adjusted > 1_000


def test_every_level_condition_evaluates_in_duckdb_as_in_python(records) -> None:
    """Each comparison's SQL, run by DuckDB as one CASE over left/right columns, picks the level
    our Python picks: for random pairs, blocked pairs and edge cases (a Jaro-Winkler score of
    exactly 0.8, missing values, swaps, transposed dates)."""
    duckdb = pytest.importorskip("duckdb")
    rng = random.Random(8)
    pairs = [(rng.choice(records), rng.choice(records)) for _ in range(3000)]
    pairs += [(records[i], records[j]) for i, j in list(candidate_pairs(records))[:3000]]
    edge = [
        (dict(given_name="abcdefghij"), dict(given_name="xbcdefghyz")),  # JW exactly 0.8
        (dict(family_name="abcdefghij"), dict(family_name="xbcdefghyz")),
        (dict(address="abcdefghij"), dict(address="xbcdefghyz")),
        (dict(given_name="Ann", family_name="Lee"), dict(given_name="Lee", family_name="Ann")),
        (dict(birth_date="1984-06-11"), dict(birth_date="1984-11-06")),
        (dict(given_name="", postcode=""), dict(locality="")),
        (dict(given_name="Bob"), dict(given_name="Robert")),
        (dict(given_name="J"), dict(given_name="John")),
    ]
    for n, (left, right) in enumerate(edge):
        pairs.append((make_person(f"e{n}a", **left), make_person(f"e{n}b", **right)))
    columns = [c for c in INPUT_COLUMNS if not c.startswith("block_")]
    rows = []
    for a, b in pairs:
        left, right = splink_rows([a, b])
        rows.append([left[c] for c in columns] + [right[c] for c in columns])
    connection = duckdb.connect()
    frame = pd.DataFrame(rows, columns=[f"{c}_l" for c in columns] + [f"{c}_r" for c in columns])
    connection.register("pairs", frame)
    cases = []
    for spec in COMPARISONS:
        whens = " ".join(
            f"WHEN {level.sql} THEN {index}"
            for index, level in enumerate(spec.levels)
            if level.sql != "ELSE"
        )
        cases.append(f"CASE {whens} ELSE {len(spec.levels) - 1} END AS {spec.name}")
    query = f"SELECT {', '.join(cases)} FROM pairs"  # noqa: S608 - our own level SQL, no input
    found = connection.execute(query).fetchall()
    for (a, b), levels in zip(pairs, found, strict=True):
        assert tuple(levels) == comparison_vector(a, b), (a.id, b.id)
    assert comparison_vector(*pairs[-8])[0] == 5  # "Jaro-Winkler >= 0.8" on both sides
