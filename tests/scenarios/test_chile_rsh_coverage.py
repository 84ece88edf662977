"""Chile's Registro Social de Hogares: a policymaker reads coverage by municipality (comuna)
and finds one with many households eligible for the family subsidy but not enrolled; an
administrator tightens the program's threshold by activating a new rule version, and the next
report reflects it. Expected figures are worked out here from the households the test
registers, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.settings import load_settings
from registry_core.service import Source

SURVEY = Source("field_survey", "rsh-form")
MIS = Source("programs", "sus-mis")
COMUNAS = {"R13-P01-C01": (50, 0.7), "R13-P01-C02": (50, 0.6), "R13-P01-C03": (90, 0.2)}
MIN_CELL = 5
MODEL = {
    "description": "RSH calificación socioeconómica (simplified)",
    "variables": [
        {"name": "size", "source": "members"},
        {
            "name": "rooms",
            "source": "household_attribute",
            "domain": "dwelling",
            "attribute": "rooms",
            "missing": {"rule": "default", "value": 1},
        },
    ],
    "intercept": 50.0,
    "weights": {"size": -5.0, "rooms": 2.0},
}


def rule(max_score: float) -> dict:
    return {"model_code": "cse", "threshold": {"max_score": max_score}}


@dataclass
class Hogar:
    comuna: str
    size: int
    rooms: int
    enrolled: bool

    def score(self) -> float:
        return 50.0 - 5.0 * self.size + 2.0 * self.rooms

    def eligible(self, max_score: float) -> bool:
        return self.score() <= max_score


def hogares() -> list[Hogar]:
    rng = random.Random(2026)
    found = []
    for comuna, (count, enrolled_share) in COMUNAS.items():
        for _ in range(count):
            found.append(
                Hogar(comuna, rng.randint(1, 6), rng.randint(1, 4), rng.random() < enrolled_share)
            )
    return found


@pytest.fixture
def hub(db_url: str, tmp_path: Path):
    settings = load_settings(
        env={"SRHUB_REPORTS__MIN_CELL": str(MIN_CELL)}, database_url=db_url, data_dir=tmp_path
    )
    app = create_app(settings)
    app.extensions["srhub_runtime"].registry.ensure_identifier_systems()

    def auth(role: str) -> dict:
        return {"Authorization": f"Bearer {issue_token(settings, subject=role, roles=[role])}"}

    client = app.test_client()
    client.auth = auth  # type: ignore[attr-defined]
    client.registry = app.extensions["srhub_runtime"].registry  # type: ignore[attr-defined]
    yield client
    app.extensions["srhub_runtime"].close()


def register(hub, households: list[Hogar]) -> None:
    for number, hogar in enumerate(households):
        created = hub.registry.register_household(
            {
                "admin_area_code": hogar.comuna,
                "members": [
                    {
                        "given_name": f"Persona{i}",
                        "family_name": f"Hogar{number}",
                        "sex": "female" if i % 2 else "male",
                        "birth_date": f"{1960 + i * 7}-03-0{1 + i % 8}",
                        "relationship": "head" if i == 0 else "other_relative",
                    }
                    for i in range(hogar.size)
                ],
                "attributes": [{"domain": "dwelling", "name": "rooms", "value": hogar.rooms}],
            },
            SURVEY,
        ).record
        if hogar.enrolled:  # as the programs connector records a beneficiary list item
            head = created["members"][0]["id"]
            hub.registry.record_enrolment(head, "SUF", f"SUF-{number:05d}", "active", MIS)


def gaps_by_comuna(hub) -> dict[str, dict]:
    answer = hub.get(
        "/api/v1/reports/coverage/gaps?level=3&program=SUF", headers=hub.auth("policymaker")
    )
    assert answer.status_code == 200, answer.json
    return {item["area"]: item for item in answer.json["items"]}


def test_a_comuna_with_many_eligible_not_enrolled_and_a_tighter_threshold(hub):
    households = hogares()
    register(hub, households)
    admin = hub.auth("admin")
    assert hub.post("/api/v1/scoring/models/cse/versions", json=MODEL, headers=admin).status_code
    assert hub.post("/api/v1/scoring/models/cse/versions/1/activate", headers=admin).json[
        "rescore"
    ]["scored"] == {"cse": len(households)}
    uploaded = hub.post("/api/v1/programs/SUF/eligibility-rules", json=rule(40.0), headers=admin)
    assert uploaded.status_code == 201, uploaded.json
    activated = hub.post("/api/v1/programs/SUF/eligibility-rules/1/activate", headers=admin)
    assert activated.status_code == 200, activated.json

    def gap(max_score: float) -> Counter:
        return Counter(h.comuna for h in households if h.eligible(max_score) and not h.enrolled)

    def eligible(max_score: float) -> Counter:
        return Counter(h.comuna for h in households if h.eligible(max_score))

    # The policymaker's view: the comuna with the largest gap comes first, with its figures.
    before = gaps_by_comuna(hub)
    worst = max(COMUNAS, key=lambda c: gap(40.0)[c])
    assert worst == "R13-P01-C03"
    first = next(iter(before.values()))
    assert first["area"] == worst
    assert first["eligible_not_enrolled"] == gap(40.0)[worst] >= MIN_CELL
    assert first["eligible"] == eligible(40.0)[worst]
    assert first["gap_rate"] == pytest.approx(gap(40.0)[worst] / eligible(40.0)[worst], abs=1e-4)

    # The administrator tightens the threshold: a new rule version, activated.
    tighter = hub.post("/api/v1/programs/SUF/eligibility-rules", json=rule(30.0), headers=admin)
    assert tighter.status_code == 201, tighter.json
    decided = hub.post("/api/v1/programs/SUF/eligibility-rules/2/activate", headers=admin)
    assert decided.status_code == 200, decided.json
    after = gaps_by_comuna(hub)
    assert eligible(30.0)[worst] < eligible(40.0)[worst]  # the fixture tightens for real
    for comuna, item in after.items():
        for name, truth in (("eligible", eligible(30.0)), ("eligible_not_enrolled", gap(30.0))):
            shown = item[name]
            if shown is not None:
                assert shown == truth[comuna], (comuna, name)
            if 0 < truth[comuna] < MIN_CELL:
                assert shown is None, (comuna, name)
    assert after[worst]["eligible"] == eligible(30.0)[worst]

    # The CSV a ministry analyst downloads carries the same, new figures.
    exported = hub.get(
        "/api/v1/reports/coverage?level=3&program=SUF&format=csv", headers=hub.auth("policymaker")
    ).get_data(as_text=True)
    line = next(row for row in exported.splitlines() if row.startswith(f"{worst},all,"))
    assert f",SUF,{eligible(30.0)[worst]}," in line
