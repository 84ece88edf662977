"""The sandbox field team's revisit must land on a household no partner feed moves while the
two visits go in. The hub predicts which households the program MIS enrols someone of
(``households_in_programs``); this checks the prediction against the MIS itself, started as
the launcher starts it and read over its REST API, as the programs connector reads it."""

from __future__ import annotations

from pathlib import Path

import requests

from hub.sandbox_field_team import households_in_programs
from sandbox_mocks.launcher import SandboxConfig, start_sandbox


def _enrolled_national_ids(base_url: str) -> set[str]:
    found: set[str] = set()
    programs = requests.get(f"{base_url}/programs", timeout=10).json()["programs"]
    assert programs, "the sandbox MIS runs no program"
    for program in programs:
        page = 1
        while True:
            body = requests.get(
                f"{base_url}/programs/{program['code']}/beneficiaries",
                params={"page": page, "page_size": 500},
                timeout=10,
            ).json()
            for item in body["items"]:
                found.update(item.get("memberNationalIds") or [])
                if item.get("nationalId"):
                    found.add(item["nationalId"])
            if not body["hasNext"]:
                break
            page += 1
    return found


def test_the_predicted_program_households_are_the_ones_the_mis_enrols(tmp_path: Path) -> None:
    config = SandboxConfig(
        people=600,
        seed=42,
        ports={"programs": 0},
        only=["programs"],
        work_dir=tmp_path,
        write_connectors=False,
    )
    sandbox = start_sandbox(config)
    try:
        enrolled = _enrolled_national_ids(sandbox.url("programs"))
        households = list(sandbox.households)
    finally:
        sandbox.stop()
    expected = {
        h.household_key for h in households if any(p.national_id in enrolled for p in h.members)
    }
    predicted = households_in_programs(config, households)
    assert expected  # the MIS enrols someone, so the comparison means something
    assert predicted == expected
    assert len(predicted) < len(households)  # some households are left to revisit
