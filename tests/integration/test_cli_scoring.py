"""``srhub scoring`` through the real entry group: upload, activate, re-score, rules, and
refusals printed as ``Error: <reason>`` with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.cli import main
from hub.runtime import HubRuntime
from hub.settings import load_settings
from registry_core.service import Source

MODEL = {
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
    ],
    "intercept": 10.0,
    "weights": {"size": -1.0, "children": -2.0},
}


def srhub(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def hub(tmp_path: Path) -> dict[str, str]:
    env = {"SRHUB_DATA_DIR": str(tmp_path / "var"), "SRHUB_DATABASE_URL": ""}
    assert srhub(env, "db", "upgrade").exit_code == 0
    runtime = HubRuntime(load_settings(env=env))
    try:
        runtime.registry.ensure_identifier_systems()
        for children in (0, 2):
            members = [
                {
                    "given_name": "Head",
                    "family_name": "T",
                    "sex": "female",
                    "birth_date": "1980-01-01",
                    "relationship": "head",
                }
            ] + [
                {
                    "given_name": f"C{i}",
                    "family_name": "T",
                    "sex": "male",
                    "birth_date": "2020-01-01",
                    "relationship": "child",
                }
                for i in range(children)
            ]
            runtime.registry.register_household(
                {"admin_area_code": "R01", "members": members}, Source("field_survey")
            )
    finally:
        runtime.close()
    return env


def test_upload_activate_rescore_and_decide(hub: dict[str, str], tmp_path: Path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps(MODEL))
    uploaded = srhub(hub, "scoring", "upload", "pmt", str(model), "--activate")
    assert uploaded.exit_code == 0, uploaded.output
    assert "stored pmt version 1" in uploaded.output
    report = json.loads(uploaded.output[uploaded.output.index("{") :])
    assert report["scored"] == {"pmt": 2}
    listed = srhub(hub, "scoring", "models")
    assert listed.output.split() == ["pmt", "v1", "active", "linear"]

    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps({"model_code": "pmt", "threshold": {"max_score": 5.0}}))
    decided = srhub(hub, "scoring", "rule-upload", "cct", str(rule), "--activate")
    assert decided.exit_code == 0, decided.output
    outcome = json.loads(decided.output[decided.output.index("{") :])
    assert outcome["eligible"] == 1 and outcome["changed"] == 1  # 10 - 3 - 4 = 3 <= 5

    again = srhub(hub, "scoring", "rescore", "--as-of", "2026-06-01")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["eligibility"][0]["changed"] == 0


def test_refusals_are_errors_with_the_reason(hub: dict[str, str], tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"variables": MODEL["variables"], "formula": "size *"}))
    result = srhub(hub, "scoring", "upload", "pmt", str(bad))
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert "$.formula" in result.stderr and "line 1, column" in result.stderr
    missing = srhub(hub, "scoring", "activate", "pmt", "4")
    assert missing.exit_code == 1 and "pmt v4" in missing.stderr
    dates = srhub(hub, "scoring", "rescore", "--as-of", "June")
    assert dates.exit_code == 2 and "YYYY-MM-DD" in dates.stderr
