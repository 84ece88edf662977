"""A tax authority drop with bad rows: the good rows' incomes land on the registered taxpayers'
households, the bad rows are reported by row and column (never by value) and none of them
reaches the registry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import requests

from registry_core.errors import InvalidRecord
from tests.scenarios.conftest import wait_for


def test_good_rows_applied_and_bad_rows_reported(live_hub):
    hub = live_hub
    drop = requests.post(
        f"{hub.mock('tax')}/drops",
        json={
            "format": "csv",
            "rows": 60,
            "bad_rows": {"negative_amount": 2, "bad_check_digit": 1, "bad_date": 1},
        },
        timeout=10,
    )
    assert drop.status_code == 201, drop.text
    injected = {f["row"] for f in drop.json()["faults"]["bad_rows"] if f["row"] is not None}
    assert len(injected) == 4
    folder = Path(hub.sandbox.connectors()["tax"]["drop_folder"])
    for runner in hub.host.runners["tax"]:
        runner.wake()
    report_path = wait_for(
        lambda: next(iter((folder / "processed").glob("*.report.json")), None),
        timeout=60,
        what="the tax file processed",
    )
    report = json.loads(report_path.read_text())
    assert {entry["row"] for entry in report["rejected"]} == injected
    assert report["accepted"] == 60 - len(injected)
    data_file = report_path.with_name(report_path.name.removesuffix(".report.json"))
    rows = list(csv.DictReader(data_file.open(encoding="utf-8"), delimiter=";"))
    text = report_path.read_text()
    for row in rows:
        if int(row["RECORD_NO"]) in injected:
            assert row["GROSS_INCOME"] not in text and (
                not row["NATIONAL_ID"] or row["NATIONAL_ID"] not in text
            )

    good = [r for r in rows if int(r["RECORD_NO"]) not in injected and r["NATIONAL_ID"]]
    bad_only = {
        r["NATIONAL_ID"] for r in rows if int(r["RECORD_NO"]) in injected and r["NATIONAL_ID"]
    } - {r["NATIONAL_ID"] for r in good}

    def household_of(national_id: str) -> dict | None:
        try:
            person = hub.registry.find_person_by_identifier("national_id", national_id)
        except InvalidRecord:  # breaks the identifier profile (a bad check digit): nobody's
            return None
        if not person or person.get("is_deceased"):
            return None
        return hub.registry.get_household(person["memberships"][-1]["household_id"])

    expected = [(r, household_of(r["NATIONAL_ID"])) for r in good]
    expected = [(r, h) for r, h in expected if h is not None]
    assert expected, "some good rows are about registered people"

    def incomes_landed() -> bool:
        for row, household in expected:
            current = hub.registry.get_household(household["id"])
            values = {(a["name"], a["value"], a["period"]) for a in current["attributes"]}
            wanted = ("gross_income", float(row["GROSS_INCOME"]), row["TAX_YEAR"])
            if not any((n, float(v), p) == wanted for n, v, p in values if n == "gross_income"):
                return False
        return True

    wait_for(incomes_landed, timeout=60, what="every good row's income on its household")
    for national_id in bad_only:
        household = household_of(national_id)
        if household is None:
            continue
        assert not [a for a in household["attributes"] if a["name"] == "gross_income"]
