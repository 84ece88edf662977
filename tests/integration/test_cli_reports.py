"""``srhub reports coverage`` through the real entry group: the same suppressed table as the
API, as JSON and CSV, with the operator's min_cell."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from hub.cli import main
from hub.runtime import HubRuntime
from hub.settings import load_settings
from registry_core.service import Source

AREAS = {"R01-D01": 7, "R01-D02": 2}  # households per district


def srhub(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def test_the_cli_prints_the_suppressed_table(tmp_path: Path):
    env = {
        "SRHUB_DATA_DIR": str(tmp_path / "var"),
        "SRHUB_DATABASE_URL": "",
        "SRHUB_REPORTS__MIN_CELL": "3",
    }
    assert srhub(env, "db", "upgrade").exit_code == 0
    runtime = HubRuntime(load_settings(env=env))
    try:
        runtime.registry.ensure_identifier_systems()
        for area, count in AREAS.items():
            for number in range(count):
                member = {
                    "given_name": f"H{number}",
                    "family_name": area,
                    "sex": "female",
                    "birth_date": "1980-01-01",
                    "relationship": "head",
                }
                runtime.registry.register_household(
                    {"admin_area_code": area, "members": [member]}, Source("field_survey")
                )
    finally:
        runtime.close()
    shown = srhub(env, "reports", "coverage", "--level", "2")
    assert shown.exit_code == 0, shown.output
    rows = {row["area"]: row for row in json.loads(shown.output)["rows"]}
    assert rows["R01-D02"]["registered"] is None  # 2 < 3
    # ... and a second count of the column, else R01-D02 = total - R01-D01: the inner one,
    # so the total stays shown
    assert rows["R01-D01"]["registered"] is None
    assert rows["*"]["registered"] == sum(AREAS.values())
    assert rows["*"]["scored"] == 0  # zero names no one: shown
    exported = srhub(env, "reports", "coverage", "--level", "1", "--format", "csv")
    assert exported.exit_code == 0, exported.output
    lines = list(csv.DictReader(io.StringIO(exported.output)))
    assert [(line["area"], line["registered"]) for line in lines] == [
        ("R01", str(sum(AREAS.values()))),
        ("*", str(sum(AREAS.values()))),
    ]
    refused = srhub(env, "reports", "coverage", "--segment", "religion")
    assert refused.exit_code != 0 and "religion" in refused.output


def test_the_segments_read_the_facts_the_settings_name(tmp_path: Path):
    env = {
        "SRHUB_DATA_DIR": str(tmp_path / "var"),
        "SRHUB_DATABASE_URL": "",
        "SRHUB_REPORTS__MIN_CELL": "2",
        "SRHUB_REPORTS__SETTLEMENT_LAYER": "zone",
    }
    assert srhub(env, "db", "upgrade").exit_code == 0
    runtime = HubRuntime(load_settings(env=env))
    kinds = ["urban"] * 3 + ["rural"] * 4
    try:
        runtime.registry.ensure_identifier_systems()
        for number, kind in enumerate(kinds):
            member = {
                "given_name": f"H{number}",
                "family_name": "Z",
                "sex": "male",
                "birth_date": "1970-05-05",
                "relationship": "head",
            }
            runtime.registry.register_household(
                {
                    "admin_area_code": "R01-D01",
                    "members": [member],
                    # the layer the settings name, and the default one saying the opposite
                    "attributes": [
                        {"domain": "other", "name": "zone", "value": kind},
                        {"domain": "other", "name": "urban_rural", "value": "urban"},
                    ],
                },
                Source("gis"),
            )
    finally:
        runtime.close()
    shown = srhub(env, "reports", "coverage", "--segment", "urban_rural")
    assert shown.exit_code == 0, shown.output
    rows = {(r["area"], r["segment"]): r for r in json.loads(shown.output)["rows"]}
    assert rows[("R01", "urban")]["registered"] == kinds.count("urban")
    assert rows[("R01", "rural")]["registered"] == kinds.count("rural")
