"""splink, configured the way its documentation recommends, as the benchmark's yardstick.

Why here and not in registry_core: splink (and its DuckDB, pandas, sqlglot stack) is a
benchmark and test dependency only (the ``dev`` extra). The hub never imports it.

splink gets the same records the hub's matcher gets, after the hub's normalisation (folded
names, ``YYYYMMDD`` dates, upper-case codes), so the two are compared on the same input, not
on who cleans text better. The model follows splink's FEBRL tutorial: the out-of-the-box name
comparisons with term-frequency adjustments, a date-of-birth comparison, Damerau-Levenshtein on
the identifier, u by random sampling (10 million pairs, seeded), m by two EM sessions blocked
on different fields, the prior from deterministic rules, and match probability >= 0.5.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from registry_core.matching import PersonRecord

Pairs = set[tuple[str, str]]

COLUMNS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "national_id",
    "address",
    "locality",
    "postcode",
)


def record_rows(records: Sequence[PersonRecord]) -> list[dict[str, Any]]:
    """The records as splink input rows (empty values as NULL, as splink expects)."""
    return [
        {
            "unique_id": r.id,
            "given_name": r.given or None,
            "family_name": r.family or None,
            "birth_date": r.birth or None,
            "sex": r.sex or None,
            "national_id": r.national_id or None,
            "address": r.address or None,
            "locality": r.locality or None,
            "postcode": r.postcode or None,
        }
        for r in records
    ]


def run_splink(records: Sequence[PersonRecord], *, threshold: float = 0.5) -> tuple[Pairs, float]:
    """Train and predict with splink on ``records``; pairs at ``threshold`` and seconds taken.

    The clock starts before the data is handed to DuckDB and stops when the pairs are in a
    Python set, as it does for the hub's matcher.
    """
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    started = time.perf_counter()
    frame = pd.DataFrame(record_rows(records), columns=["unique_id", *COLUMNS])
    db_api = DuckDBAPI()
    table = db_api.register(frame)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("sex"),
            cl.DamerauLevenshteinAtThresholds("national_id", [1, 2]),
            cl.JaroWinklerAtThresholds("address", [0.95, 0.88]),
            cl.ExactMatch("locality").configure(term_frequency_adjustments=True),
            cl.PostcodeComparison("postcode"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("family_name", "substr(birth_date, 1, 4)"),
            block_on("birth_date"),
            block_on("given_name", "family_name"),
            block_on("national_id"),
            block_on("postcode", "family_name"),
            block_on("postcode", "given_name"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    linker = Linker(table, settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("national_id"),
            block_on("given_name", "family_name", "birth_date"),
        ],
        recall=0.8,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_name", "family_name")
    )
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    frame_out = predictions.as_pandas_dataframe()
    found: Pairs = set()
    for left, right in zip(frame_out["unique_id_l"], frame_out["unique_id_r"], strict=True):
        a, b = str(left), str(right)
        found.add((a, b) if a < b else (b, a))
    return found, time.perf_counter() - started


def run_splink_hub_levels(
    records: Sequence[PersonRecord], *, threshold: float = 0.5
) -> tuple[Pairs, float]:
    """splink trained by its own EM, but on the hub's comparison levels and blocking.

    Separates the two things the comparison with :func:`run_splink` mixes: the comparison
    design (e.g. address, locality and postcode judged as one residence comparison) and the
    engine (splink's estimation in SQL against ours in Python). The parameters start from
    splink's defaults, not from a model of ours.
    """
    import pandas as pd
    from splink import DuckDBAPI, Linker, block_on

    from registry_core.matching.levels import COMPARISONS
    from registry_core.matching.splink_format import INPUT_COLUMNS, splink_rows, to_splink_settings
    from registry_core.matching.trained import TrainedModel

    logging.getLogger("splink").setLevel(logging.ERROR)
    started = time.perf_counter()
    frame = pd.DataFrame(splink_rows(records), columns=list(INPUT_COLUMNS))
    db_api = DuckDBAPI()
    table = db_api.register(frame)
    flat = tuple(tuple(1 / len(spec.levels) for _ in spec.levels) for spec in COMPARISONS)
    settings = to_splink_settings(
        TrainedModel(m=flat, u=flat, probability_two_random_records_match=1e-4)
    )
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.pop("m_probability", None)
            level.pop("u_probability", None)
    linker = Linker(table, settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("national_id"), block_on("given_name", "family_name", "birth_date")],
        recall=0.8,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_name", "family_name")
    )
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    frame_out = predictions.as_pandas_dataframe()
    found: Pairs = set()
    for left, right in zip(frame_out["unique_id_l"], frame_out["unique_id_r"], strict=True):
        a, b = str(left), str(right)
        found.add((a, b) if a < b else (b, a))
    return found, time.perf_counter() - started
