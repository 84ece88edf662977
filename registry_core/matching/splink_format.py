"""Our trained model in splink's JSON settings format, both ways.

Why: a registry that outgrows one machine can hand the model to splink (DuckDB, Spark) and get
the same match weight for every pair, and a model trained with splink on our comparison levels
can come back. The file is exactly what splink 5's ``linker.misc.save_model_to_json`` writes and
``Linker(table, "model.json")`` reads: ``link_type``, ``unique_id_column_name``,
``probability_two_random_records_match``, ``comparisons[].comparison_levels[]`` with
``sql_condition``, ``label_for_charts``, ``m_probability``, ``u_probability``,
``is_null_level``, ``tf_adjustment_column`` / ``tf_adjustment_weight`` / ``tf_minimum_u_value``,
and ``blocking_rules_to_generate_predictions``.

splink evaluates the SQL over the columns :func:`splink_rows` produces from our normalised
records (so both sides read the same folded names, ``YYYYMMDD`` dates and upper-case codes),
including one column per blocking pass so its blocking rules find the pairs ours find.

What splink's format has no place for goes to a side file ``<name>.srhub.json``: the match
and review thresholds and the name frequencies (splink computes these from the data it is
given; the hub needs them for one incoming record at a time). Without the side file a model
loads with no frequency tables (no adjustment) and the default thresholds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from registry_core.matching.blocking import blocking_keys
from registry_core.matching.levels import COMPARISONS, formal_names
from registry_core.matching.normalise import PersonRecord
from registry_core.matching.trained import TrainedModel

SIDE_FILE_SUFFIX = ".srhub.json"
FORMAT_VERSION = 1

#: Blocking passes (key prefixes of :func:`blocking_keys`) and the column each goes to.
BLOCKING_COLUMNS: dict[str, str] = {
    "fy": "block_family_year",
    "d": "block_birth",
    "n": "block_names",
    "i": "block_identifier",
    "iha": "block_identifier_head",
    "ihb": "block_identifier_tail",
    "pf": "block_postcode_family",
    "pg": "block_postcode_given",
}

INPUT_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "national_id",
    "address",
    "locality",
    "postcode",
    "given_formal",
    *BLOCKING_COLUMNS.values(),
)


class ModelFormatError(ValueError):
    """A settings file the hub cannot evaluate (names what is wrong, never a data value)."""


def _blocking_column(key: str) -> str:
    prefix, _, rest = key.partition(":")
    if prefix == "ih":  # ih:<length>a<head> or ih:<length>b<tail>
        prefix += rest.lstrip("0123456789")[:1]
    return BLOCKING_COLUMNS[prefix]


def splink_rows(records: Sequence[PersonRecord]) -> list[dict[str, Any]]:
    """splink input rows for ``records``: normalised values (empty as NULL) and blocking keys."""
    rows = []
    for r in records:
        row: dict[str, Any] = {
            "unique_id": r.id,
            "given_name": r.given or None,
            "family_name": r.family or None,
            "birth_date": r.birth or None,
            "sex": r.sex or None,
            "national_id": r.national_id or None,
            "address": r.address or None,
            "locality": r.locality or None,
            "postcode": r.postcode or None,
            "given_formal": formal_names(r.given) if r.given else None,
        }
        row.update(dict.fromkeys(BLOCKING_COLUMNS.values()))
        for key in blocking_keys(r):
            row[_blocking_column(key)] = key
        rows.append(row)
    return rows


def to_splink_settings(model: TrainedModel) -> dict[str, Any]:
    """The model as a splink 5 settings dictionary (JSON-serialisable)."""
    comparisons = []
    for spec, m_row, u_row in zip(model.comparisons, model.m, model.u, strict=True):
        levels = []
        for level, m, u in zip(spec.levels, m_row, u_row, strict=True):
            item: dict[str, Any] = {
                "sql_condition": level.sql,
                "label_for_charts": level.label,
            }
            if level.is_null:
                item["is_null_level"] = True
            else:
                item["m_probability"] = m
                item["u_probability"] = u
            if level.tf_column is not None:
                item["tf_adjustment_column"] = level.tf_column
                item["tf_adjustment_weight"] = model.tf_adjustment_weight
                if model.tf_minimum_u_value:
                    item["tf_minimum_u_value"] = model.tf_minimum_u_value
            levels.append(item)
        comparisons.append(
            {
                "output_column_name": spec.name,
                "comparison_description": spec.description,
                "comparison_levels": levels,
            }
        )
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": model.probability_two_random_records_match,
        "sql_dialect": "duckdb",
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": False,
        "additional_columns_to_retain": [],
        "em_convergence": 0.0001,
        "max_iterations": 25,
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": f'l."{column}" = r."{column}"', "sql_dialect": "duckdb"}
            for column in BLOCKING_COLUMNS.values()
        ],
    }


def _same_sql(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip().lower() == re.sub(r"\s+", " ", b).strip().lower()


def from_splink_settings(
    settings: Mapping[str, Any],
    *,
    tf: Mapping[str, Mapping[str, float]] | None = None,
    threshold: float = 0.5,
    review_threshold: float = 0.1,
) -> TrainedModel:
    """Read a splink settings dictionary written for our comparison levels.

    Every comparison and level must be ours, in order, with the same SQL: the hub evaluates
    levels in Python and cannot run arbitrary SQL. A model trained by splink on these levels
    (e.g. on Spark over a whole country) loads; a model with other levels is refused.
    """
    by_name = {c.get("output_column_name"): c for c in settings.get("comparisons") or ()}
    if set(by_name) != {spec.name for spec in COMPARISONS}:
        raise ModelFormatError(
            "the model's comparisons are not the hub's: expected "
            + ", ".join(spec.name for spec in COMPARISONS)
        )
    m_table, u_table = [], []
    tf_weight: float | None = None
    tf_minimum = 0.0
    for spec in COMPARISONS:
        levels = by_name[spec.name].get("comparison_levels") or []
        if len(levels) != len(spec.levels):
            raise ModelFormatError(f"comparison {spec.name}: expected {len(spec.levels)} levels")
        m_row, u_row = [], []
        for ours, theirs in zip(spec.levels, levels, strict=True):
            if not _same_sql(ours.sql, str(theirs.get("sql_condition", ""))):
                raise ModelFormatError(
                    f"comparison {spec.name}, level '{ours.label}': its SQL differs from the hub's"
                )
            if ours.is_null:
                m_row.append(1.0)
                u_row.append(1.0)
                continue
            try:
                m_row.append(float(theirs["m_probability"]))
                u_row.append(float(theirs["u_probability"]))
            except (KeyError, TypeError, ValueError):
                raise ModelFormatError(
                    f"comparison {spec.name}, level '{ours.label}': m or u probability missing"
                ) from None
            if theirs.get("tf_adjustment_column"):
                tf_weight = float(theirs.get("tf_adjustment_weight", 1.0))
                tf_minimum = float(theirs.get("tf_minimum_u_value", 0.0))
        m_table.append(tuple(m_row))
        u_table.append(tuple(u_row))
    prior = settings.get("probability_two_random_records_match")
    if not isinstance(prior, int | float) or not 0 < prior < 1:
        raise ModelFormatError("probability_two_random_records_match must be a number in (0, 1)")
    return TrainedModel(
        m=tuple(m_table),
        u=tuple(u_table),
        probability_two_random_records_match=float(prior),
        tf={k: dict(v) for k, v in (tf or {}).items()},
        tf_adjustment_weight=1.0 if tf_weight is None else tf_weight,
        tf_minimum_u_value=tf_minimum,
        threshold=threshold,
        review_threshold=review_threshold,
    )


def side_file(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + SIDE_FILE_SUFFIX)


def save_model(model: TrainedModel, path: str | Path) -> None:
    """Write ``path`` (splink settings JSON) and its side file (thresholds, frequencies)."""
    Path(path).write_text(json.dumps(to_splink_settings(model), indent=2), encoding="utf-8")
    extras = {
        "format": FORMAT_VERSION,
        "threshold": model.threshold,
        "review_threshold": model.review_threshold,
        "term_frequencies": model.tf,
    }
    side_file(path).write_text(json.dumps(extras, sort_keys=True), encoding="utf-8")


def load_model(path: str | Path) -> TrainedModel:
    """Read a model written by :func:`save_model` (or by splink, without the side file)."""
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"cannot read the model file: {exc}") from None
    extras: dict[str, Any] = {}
    extra_path = side_file(path)
    if extra_path.is_file():
        extras = json.loads(extra_path.read_text(encoding="utf-8"))
        if extras.get("format") != FORMAT_VERSION:
            raise ModelFormatError(f"{extra_path.name}: unknown format {extras.get('format')}")
    return from_splink_settings(
        settings,
        tf=extras.get("term_frequencies"),
        threshold=float(extras.get("threshold", 0.5)),
        review_threshold=float(extras.get("review_threshold", 0.1)),
    )
