"""The learnt matcher: comparison levels, u sampling, EM, term frequencies, scoring, decisions,
and the splink settings format (the splink round trip itself is an integration test)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bench.census import census_style
from registry_core.matching import (
    Outcome,
    TrainedMatcher,
    TrainedModel,
    TrainingOptions,
    make_person,
    train,
)
from registry_core.matching.levels import (
    COMPARISONS,
    birth_level,
    comparison_vector,
    family_level,
    formal_names,
    given_level,
    identifier_level,
    residence_level,
)
from registry_core.matching.splink_format import (
    BLOCKING_COLUMNS,
    ModelFormatError,
    from_splink_settings,
    side_file,
    splink_rows,
    to_splink_settings,
)
from registry_core.matching.trained import PairScorer
from registry_core.matching.training import EmLimits, estimate_u, expectation_maximisation
from registry_core.matching.training import term_frequencies as tf_tables


def person(record_id: str, **fields: str):
    base = {
        "given_name": "Amelia",
        "family_name": "Okonkwo",
        "birth_date": "1984-06-21",
        "sex": "f",
        "address": "14 Baobab Road",
        "locality": "Riverside",
        "postcode": "4410",
        "national_id": "NI-5521-0098",
    }
    base.update(fields)
    return make_person(record_id, **base)


def level_label(comparison: str, level: int) -> str:
    spec = next(s for s in COMPARISONS if s.name == comparison)
    return spec.levels[level].label


@pytest.fixture(scope="module")
def census() -> tuple[list, set]:
    return census_style(people=1200, seed=11)


@pytest.fixture(scope="module")
def model(census) -> TrainedModel:
    records, _ = census
    return train(records, TrainingOptions(u_samples=50_000))


# -- comparison levels ------------------------------------------------------------------------


def test_given_name_levels_cover_typos_nicknames_swaps_and_initials() -> None:
    a = person("a", given_name="Robert")
    assert level_label("given_name", given_level(a, person("b", given_name="Robert"))) == "exact"
    assert given_level(a, person("b", given_name="Robret")) == 2  # JW >= 0.92
    assert level_label("given_name", given_level(a, person("b", given_name="Bob"))) == "nickname"
    swapped = person("b", given_name="Okonkwo", family_name="Robert")
    assert level_label("given_name", given_level(a, swapped)) == "equals the other's family name"
    assert level_label("family_name", family_level(a, swapped)) == "equals the other's given name"
    assert level_label("given_name", given_level(a, person("b", given_name="R"))) == "an initial"
    assert level_label("given_name", given_level(a, person("b", given_name="Zeno"))) == "different"
    assert given_level(a, person("b", given_name="")) == 0  # no evidence


def test_birth_date_levels_distinguish_transposition_typo_and_partial_agreement() -> None:
    a = person("a", birth_date="1984-06-11")
    assert birth_level(a, person("b", birth_date="1984-11-06")) == 2
    assert birth_level(a, person("b", birth_date="1984-06-12")) == 3
    assert birth_level(a, person("b", birth_date="1984-09-14")) == 5
    assert birth_level(a, person("b", birth_date="1985-06-19")) == 5
    assert birth_level(a, person("b", birth_date="1989-06-11")) == 3  # one digit differs
    assert birth_level(a, person("b", birth_date="1979-06-11")) == 4  # year differs twice


def test_identifier_levels_count_edits_and_transpositions() -> None:
    a = person("a", national_id="NI-5521-0098")
    assert identifier_level(a, person("b", national_id="NI-5521-0089")) == 2  # transposition
    assert identifier_level(a, person("b", national_id="NI-5521-0198")) == 2
    assert identifier_level(a, person("b", national_id="NI-5522-0198")) == 3
    assert identifier_level(a, person("b", national_id="NI-1111-2222")) == 4


def test_residence_is_one_comparison_so_a_household_is_not_counted_three_times() -> None:
    a = person("a")
    assert residence_level(a, person("b")) == 1
    assert residence_level(a, person("b", address="14 Baobab Rd")) == 2
    assert residence_level(a, person("b", address="2 Mopani Close")) == 3  # same town
    assert residence_level(a, person("b", address="2 Mopani Close", locality="Hilltop")) == 4
    moved = person("b", address="", locality="", postcode="")
    assert residence_level(a, moved) == 0
    far = person("b", address="9 Acacia Way", locality="Lakeside", postcode="7781")
    assert residence_level(a, far) == 7


def test_formal_names_give_the_nickname_column_splink_reads() -> None:
    assert formal_names("bob") == ["robert"]
    assert formal_names("zeno") is None


# -- estimation -------------------------------------------------------------------------------


def test_u_of_an_exact_level_is_the_value_collision_probability() -> None:
    records = [person(str(i), given_name="Ann" if i < 4 else f"Name{i}") for i in range(10)]
    u = estimate_u(records, samples=2000, seed=1)
    given = [s.name for s in COMPARISONS].index("given_name")
    # 4 "ann" among 10 records: 4 * 3 ordered pairs of 10 * 9.
    assert u[given][1] == pytest.approx(12 / 90)
    assert sum(u[given][1:]) == pytest.approx(1.0)


def test_em_recovers_the_parameters_of_a_known_mixture() -> None:
    """Draw comparison vectors from a two-class model with known m, u and share; EM must find
    them again (three comparisons of three levels each, index 0 the null level)."""
    rng = random.Random(3)
    m = ((1.0, 0.85, 0.1, 0.05), (1.0, 0.8, 0.15, 0.05), (1.0, 0.9, 0.05, 0.05))
    u = ((1.0, 0.02, 0.08, 0.9), (1.0, 0.05, 0.1, 0.85), (1.0, 0.01, 0.04, 0.95))
    share = 0.2
    patterns: Counter[tuple[int, ...]] = Counter()
    for _ in range(60_000):
        table = m if rng.random() < share else u
        patterns[tuple(rng.choices((1, 2, 3), weights=row[1:])[0] for row in table)] += 1
    start_u = ((1.0, 0.2, 0.3, 0.5),) * 3
    found_m, found_u, found_share = expectation_maximisation(
        patterns, start_u, m_start=((1.0, 0.5, 0.3, 0.2),) * 3, limits=EmLimits(500, 1e-9)
    )
    assert found_share == pytest.approx(share, abs=0.01)
    for expected, found in ((m, found_m), (u, found_u)):
        for row_expected, row_found in zip(expected, found, strict=True):
            assert row_found[1:] == pytest.approx(row_expected[1:], abs=0.02)


def test_training_learns_that_agreement_is_evidence_and_estimates_the_prior(census, model) -> None:
    records, truth = census
    weights = dict(zip((s.name for s in COMPARISONS), model.level_weights(), strict=True))
    for name in ("given_name", "family_name", "birth_date"):
        assert weights[name][1] > 4  # exact agreement: strong evidence
        assert weights[name][-1] < 0  # disagreement: evidence against
    n = len(records)
    true_share = len(truth) / (n * (n - 1) / 2)
    assert 0.5 < model.probability_two_random_records_match / true_share < 2


def test_term_frequencies_are_shares_of_the_named_records() -> None:
    records = [person("1"), person("2"), person("3", given_name="Zola"), person("4", given_name="")]
    tables = tf_tables(records)
    assert tables["given_name"] == {"amelia": pytest.approx(2 / 3), "zola": pytest.approx(1 / 3)}


# -- scoring ----------------------------------------------------------------------------------


def test_weight_is_splinks_sum_with_term_frequency_adjustment(model) -> None:
    scorer = PairScorer(model)
    a, b = person("a"), person("b", address="", national_id="")
    vector = comparison_vector(a, b)
    weights = model.level_weights()
    expected = model.prior_weight() + sum(row[lv] for row, lv in zip(weights, vector, strict=True))
    # Neither name is in the model's tables: no adjustment.
    assert scorer.weight(a, b, vector) == pytest.approx(expected, abs=1e-12)
    given = [s.name for s in COMPARISONS].index("given_name")
    tf = {**model.tf, "given_name": {"amelia": 0.001}}
    adjusted = PairScorer(replace(model, tf=tf))
    bonus = math.log2(model.u[given][1]) - math.log2(0.001)
    assert adjusted.weight(a, b, vector) == pytest.approx(expected + bonus, abs=1e-12)


def test_a_rare_shared_name_weighs_more_than_a_common_one(model) -> None:
    tf = {"given_name": {"amelia": 0.2, "zola": 0.0005}, "family_name": {}}
    scorer = PairScorer(replace(model, tf=tf))
    common = scorer.match_weight(person("a"), person("b"))
    rare = scorer.match_weight(person("a", given_name="Zola"), person("b", given_name="Zola"))
    assert rare - common == pytest.approx(math.log2(0.2 / 0.0005))


def test_trained_matcher_finds_the_census_duplicates(census, model) -> None:
    records, truth = census
    found = {(p.id_a, p.id_b) for p in TrainedMatcher(model).pairs(records, include_review=False)}
    hits = len(found & truth)
    assert hits / len(found) >= 0.9 and hits / len(truth) >= 0.9


def test_match_one_takes_a_clear_winner_and_reviews_an_ambiguous_block(model) -> None:
    matcher = TrainedMatcher(model)
    incoming = person("in", given_name="Amelia", national_id="")
    other = person("x", given_name="Chipo", family_name="Banda", birth_date="1990-01-02",
                   address="3 Mopani Close", national_id="NI-0000-1111")  # fmt: skip
    decision = matcher.match_one(incoming, [person("p1"), other])
    assert decision.outcome is Outcome.MATCH and decision.person_id == "p1"
    twice = matcher.match_one(incoming, [person("p1"), person("p2")])
    assert twice.outcome is Outcome.REVIEW and twice.person_id is None
    assert matcher.match_one(incoming, [other]).outcome is Outcome.NO_MATCH
    assert matcher.match_one(incoming, []).reason == "no candidates"


# -- splink settings format -------------------------------------------------------------------


def test_settings_round_trip_keeps_every_parameter(model) -> None:
    settings = json.loads(json.dumps(to_splink_settings(model)))
    assert settings["link_type"] == "dedupe_only"
    assert settings["unique_id_column_name"] == "unique_id"
    given = settings["comparisons"][0]
    assert given["comparison_levels"][0]["is_null_level"] is True
    assert given["comparison_levels"][1]["tf_adjustment_column"] == "given_name"
    back = from_splink_settings(settings, tf=model.tf)
    assert back.level_weights() == model.level_weights()
    assert back.prior_weight() == model.prior_weight()


def test_save_and_load_keep_thresholds_and_frequencies(model, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    replace(model, threshold=0.7).save(path)
    assert side_file(path).is_file()
    loaded = TrainedModel.load(path)
    assert loaded.threshold == 0.7 and loaded.tf == model.tf
    assert loaded.level_weights() == model.level_weights()


def test_a_model_with_other_comparison_levels_is_refused(model) -> None:
    settings = to_splink_settings(model)
    settings["comparisons"][2]["comparison_levels"][1]["sql_condition"] = '"dob_l" = "dob_r"'
    with pytest.raises(ModelFormatError, match="birth_date"):
        from_splink_settings(settings)
    settings["comparisons"].pop()
    with pytest.raises(ModelFormatError, match="comparisons are not the hub's"):
        from_splink_settings(settings)


def test_splink_rows_carry_one_column_per_blocking_pass() -> None:
    row = splink_rows([person("a", national_id="NI-5521-0098")])[0]
    assert row["given_formal"] is None and row["sex"] == "f"
    assert row["block_identifier"] == "i:NI55210098"
    assert row["block_identifier_head"].startswith("ih:10a")
    assert row["block_identifier_tail"].startswith("ih:10b")
    assert set(BLOCKING_COLUMNS.values()) <= row.keys()
    empty = splink_rows([person("b", address="", national_id="")])[0]
    assert empty["address"] is None and empty["block_identifier"] is None
