"""Turkey's ISAS (Integrated Social Assistance System): real-time counts of potentially
eligible households per program, and a policymaker raising the poverty line in a simulation.

A live hub on a real HTTP port with its relay and scoring worker running (the event
pipeline on the embedded broker in the test's database, SQLite and PostgreSQL): households
already registered are scored by a full run; new ones arrive one at a time through the
households API, and the scoring worker scores and decides each from its events — the
eligible counts the coverage API gives move with each, without any batch run. Then a
policymaker simulates a higher poverty line for the cash program and reads the households
and people added and the budget by province, with small counts suppressed (staff read them
whole); every registry table hashes the same before and after. Expected figures are worked
out here, in plain Python, from the households the test registers."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text
from werkzeug.serving import make_server

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.broker import connect
from hub.pipeline.relay_worker import RelayWorker
from hub.runtime import HubRuntime
from hub.scoring.handlers import scoring_handlers
from hub.settings import load_settings
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import SCORING_QUEUE
from registry_core.service import Source

MIN_CELL = 3
PROVINCES = ("TR06", "TR21", "TR34", "TR65")  # Ankara, Diyarbakir, Istanbul, Van
MODEL = {
    "description": "ISAS household score (simplified)",
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 17},
        {
            "name": "income",
            "source": "household_attribute",
            "domain": "income",
            "attribute": "monthly_income",
            "missing": {"rule": "default", "value": 0},
        },
    ],
    "intercept": 40.0,
    "weights": {"size": -4.0, "children": -3.0, "income": 0.01},
}
CASH_LINE, RAISED_LINE = 20.0, 26.0
CASH = {"model_code": "isas", "threshold": {"max_score": CASH_LINE}}
EDUCATION = {"model_code": "isas", "threshold": {"max_score": 25.0}, "condition": "children >= 1.0"}
CASH_SCHEDULE = {"amount": 1500.0, "per": "household", "period": "month", "periods": 12}
REGISTRY_TABLES = (
    "households",
    "persons",
    "memberships",
    "socio_economic_attributes",
    "household_scores",
    "household_eligibility",
    "eligibility_rules",
    "scoring_models",
    "outbox",
)
SURVEY = Source("field_survey", "isas-survey")


@dataclass
class Hane:
    """A household as the test knows it: where, who (adults, children), monthly income."""

    area: str
    adults: int
    children: int
    income: int

    @property
    def size(self) -> int:
        return self.adults + self.children

    def score(self) -> float:
        return 40.0 - 4.0 * self.size - 3.0 * self.children + 0.01 * self.income

    def cash(self, line: float = CASH_LINE) -> bool:
        return self.score() <= line

    def education(self) -> bool:
        return self.score() <= 25.0 and self.children >= 1

    def body(self, number: int) -> dict[str, Any]:
        members = [
            {
                "given_name": f"Yetişkin{k}",
                "family_name": f"Hane{number}",
                "sex": "female" if k % 2 else "male",
                "birth_date": "1980-04-04",
                "relationship": "head" if k == 0 else "spouse",
            }
            for k in range(self.adults)
        ] + [
            {
                "given_name": f"Çocuk{k}",
                "family_name": f"Hane{number}",
                "sex": "male" if k % 2 else "female",
                "birth_date": "2016-09-09",
                "relationship": "child",
            }
            for k in range(self.children)
        ]
        return {
            "admin_area_code": self.area,
            "members": members,
            "attributes": [{"domain": "income", "name": "monthly_income", "value": self.income}],
        }


def hanes() -> list[Hane]:
    """Per province: very poor households (cash at today's line), near-poor ones (cash only
    at the raised line) and better-off ones; Van has a single near-poor household, so its
    gain is a small count the policymaker must not see."""
    mix = {"TR06": (4, 4, 3), "TR21": (4, 4, 3), "TR34": (4, 4, 3), "TR65": (4, 1, 2)}
    found = []
    for province, (very_poor, near_poor, better_off) in mix.items():
        kinds = [(2, 3, 0)] * very_poor + [(2, 2, 500)] * near_poor + [(2, 0, 3000)] * better_off
        for index, (adults, children, income) in enumerate(kinds):
            found.append(Hane(f"{province}-D0{1 + index % 3}", adults, children, income))
    random.Random(90).shuffle(found)
    return found


@dataclass
class Hub:
    url: str
    runtime: HubRuntime
    settings: Any

    def auth(self, role: str) -> dict[str, str]:
        token = issue_token(self.settings, subject=f"isas-{role}", roles=[role])
        return {"Authorization": f"Bearer {token}"}

    def get(self, path: str, role: str) -> Any:
        answer = requests.get(f"{self.url}{path}", headers=self.auth(role), timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: dict[str, Any], role: str) -> Any:
        answer = requests.post(f"{self.url}{path}", json=body, headers=self.auth(role), timeout=60)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()


@pytest.fixture
def hub(db_url: str, tmp_path: Path) -> Iterator[Hub]:
    """The API on a real port, the relay and the scoring worker running."""
    settings = load_settings(
        env={"SRHUB_REPORTS__MIN_CELL": str(MIN_CELL)},
        database_url=db_url,
        data_dir=tmp_path / "var",
    )
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    app = create_app(settings, runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def factory() -> Any:
        return connect(settings, wait_for=0)

    scoring = ConsumerRuntime(
        "scoring",
        SCORING_QUEUE,
        factory,
        runtime.sessions,
        scoring_handlers(runtime),
        retry=RetryPolicy(attempts=3, initial_delay=0.05, max_delay=0.2, jitter=0.05),
        receive_timeout=0.1,
    )
    relay = RelayWorker(factory, runtime.sessions, poll_interval=0.05)
    workers = (scoring, relay)
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield Hub(f"http://127.0.0.1:{server.server_port}", runtime, settings)
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(20)
        server.shutdown()
        runtime.close()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout}s"
        time.sleep(0.1)


def national_counts(hub: Hub) -> dict[str, Any]:
    """The whole country's row of the coverage report, as a policymaker reads it."""
    report = hub.get("/api/v1/reports/coverage?level=1&program=cash,edu", "policymaker")
    (row,) = [r for r in report["rows"] if r["area"] == "*"]
    return row


def snapshot(hub: Hub) -> dict[str, str]:
    digests = {}
    with hub.runtime.sessions() as session:
        for table in REGISTRY_TABLES:
            rows = session.execute(text(f"SELECT * FROM {table}")).fetchall()  # noqa: S608
            body = json.dumps(sorted(repr(tuple(r)) for r in rows))
            digests[table] = hashlib.sha256(body.encode()).hexdigest()
    return digests


def settled(hub: Hub) -> bool:
    """Every event relayed and every scoring message handled (acknowledged: deleted)."""
    with hub.runtime.sessions() as session:
        unsent = session.execute(text("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"))
        queued = session.execute(
            text("SELECT COUNT(*) FROM sr_broker_messages WHERE queue = :q"),
            {"q": SCORING_QUEUE.name},
        )
        return unsent.scalar_one() == 0 and queued.scalar_one() == 0


def test_real_time_counts_and_a_higher_poverty_line(hub):
    registered = hanes()
    for number, hane in enumerate(registered):
        hub.runtime.registry.register_household(hane.body(number), SURVEY)
    # The administrator sets up the model and the two programs: one full scoring run.
    for path, body in (
        ("/api/v1/scoring/models/isas/versions", MODEL),
        ("/api/v1/programs/cash/eligibility-rules", CASH),
        ("/api/v1/programs/edu/eligibility-rules", EDUCATION),
        ("/api/v1/programs/cash/benefit-schedules", CASH_SCHEDULE),
    ):
        hub.post(path, body, "admin")
    assert hub.post("/api/v1/scoring/models/isas/versions/1/activate", {}, "admin")["rescore"][
        "scored"
    ] == {"isas": len(registered)}
    hub.post("/api/v1/programs/cash/eligibility-rules/1/activate", {}, "admin")
    hub.post("/api/v1/programs/edu/eligibility-rules/1/activate", {}, "admin")
    wait_for(lambda: settled(hub), "the setup's events relayed")

    def expected(households: list[Hane]) -> tuple[int, int, int]:
        return (
            len(households),
            sum(1 for h in households if h.cash()),
            sum(1 for h in households if h.education()),
        )

    def counts() -> tuple[int, int, int]:
        row = national_counts(hub)
        return (
            row["scored"],
            row["programs"]["CASH"]["eligible"],
            row["programs"]["EDU"]["eligible"],
        )

    assert counts() == expected(registered)
    assert expected(registered)[1] >= MIN_CELL  # the national count is shown, not hidden

    # New households arrive through the API, one at a time; each is scored by the worker
    # from its own event and the counts move with it, no batch run in between.
    arrivals = [
        Hane("TR21-D01", 2, 3, 0),  # poor, with children: cash and education
        Hane("TR34-D02", 1, 0, 2000),  # neither
        Hane("TR06-D03", 2, 2, 200),  # cash and education
        Hane("TR34-D01", 1, 3, 400),  # cash and education
    ]
    moved = []
    for number, hane in enumerate(arrivals, start=len(registered)):
        hub.post("/api/v1/households", hane.body(number), "registry_staff")
        registered.append(hane)
        want = expected(registered)
        assert wait_for(lambda want=want: counts() == want, f"counts after household {number}")
        moved.append(want)
    assert len({m[1] for m in moved}) == 3  # three of the four arrivals moved the cash count

    # The policymaker raises the poverty line in a simulation, by province (area level 1).
    wait_for(lambda: settled(hub), "the arrivals' events relayed")
    before = snapshot(hub)
    ran = hub.post(
        "/api/v1/simulations",
        {
            "name": "poverty line 20 -> 26",
            "rules": {"cash": {"threshold": {"max_score": RAISED_LINE}}},
            "area_level": 1,
        },
        "policymaker",
    )
    assert snapshot(hub) == before  # the registry is unchanged

    gaining = [h for h in registered if h.cash(RAISED_LINE) and not h.cash()]
    assert len(gaining) >= MIN_CELL  # the fixture raises the line for real
    (cash,) = ran["result"]["programs"]
    assert cash["program"] == "cash"
    assert cash["gainers"] == {"households": len(gaining), "people": sum(h.size for h in gaining)}
    assert cash["losers"] == {"households": 0, "people": 0}
    simulated = [h for h in registered if h.cash(RAISED_LINE)]
    assert cash["simulated"]["households"] == len(simulated)
    assert cash["simulated"]["budget"]["total"] == 1500.0 * 12 * len(simulated)
    assert cash["current"]["budget"]["total"] == 1500.0 * 12 * expected(registered)[1]

    # By province: what the policymaker sees is true, and a small count is never shown: Van
    # gains one household, hidden, and so is another province's gain (else the national
    # total would give Van's back) with the simulated counts beside them (else the two sides
    # would); the national figures stay visible.
    shown = {row["area"]: row for row in cash["by_area"]}
    assert set(shown) == set(PROVINCES)
    for area, row in shown.items():
        province = [h for h in gaining if h.area.startswith(area)]
        sim = [h for h in simulated if h.area.startswith(area)]
        for name, truth in (
            ("gaining_households", len(province)),
            ("gaining_people", sum(h.size for h in province)),
            ("simulated_households", len(sim)),
        ):
            assert row[name] in (truth, None), (area, name)
            if 0 < truth < MIN_CELL:
                assert row[name] is None, (area, name)
        if row["simulated_households"] is not None:
            assert row["simulated_budget"] == 1500.0 * 12 * len(sim)
        else:
            assert row["simulated_budget"] is None
    assert shown["TR65"]["gaining_households"] is None and shown["TR65"]["suppressed"]
    hidden_gains = [a for a, row in shown.items() if row["gaining_households"] is None]
    assert len(hidden_gains) == 2  # Van and one complement, not more
    assert cash["suppression"]["suppressed_cells"] > 0
    # Staff read the same saved simulation whole: every province's figures.
    whole = hub.get(f"/api/v1/simulations/{ran['id']}", "admin")["result"]["programs"][0]
    assert {row["area"] for row in whole["by_area"]} == set(PROVINCES)
    for row in whole["by_area"]:
        province = [h for h in gaining if h.area.startswith(row["area"])]
        sim = [h for h in simulated if h.area.startswith(row["area"])]
        assert row["gaining_households"] == len(province)
        assert row["gaining_people"] == sum(h.size for h in province)
        assert row["simulated_budget"] == 1500.0 * 12 * len(sim)
    assert snapshot(hub) == before
