"""Incremental re-scoring through the event pipeline, on SQLite and PostgreSQL.

Real parts: the registry writes household events to the outbox, the relay publishes them on
the embedded broker, the scoring worker (queue ``sr.scoring``) re-scores the household in its
transaction and decides the programs again. A household that gains a child becomes eligible:
exactly one ``household.eligibility_changed``, even though the worker handles several events
of that household.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from hub.broker import connect
from hub.pipeline.relay_worker import RelayWorker
from hub.runtime import HubRuntime
from hub.scoring.handlers import scoring_handlers
from hub.settings import load_settings
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import SCORING_QUEUE
from registry_core.models import OutboxEvent
from registry_core.scoring.tables import HouseholdScore
from registry_core.service import Source
from tests.integration.test_scoring_services import explained

SOURCE = Source("field_survey", "form-1")
MODEL = {
    "variables": [
        {"name": "size", "source": "members"},
        {"name": "children", "source": "members", "age_max": 14},
    ],
    "intercept": 10.0,
    "weights": {"size": -1.0, "children": -2.0},
}
RULE = {"model_code": "pmt", "threshold": {"max_score": 8.0}, "condition": "children >= 1.0"}


def member(name: str, born: str, relationship: str) -> dict[str, Any]:
    return {
        "given_name": name,
        "family_name": "Test",
        "sex": "female",
        "birth_date": born,
        "relationship": relationship,
    }


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout}s"
        time.sleep(0.1)


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[HubRuntime]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var")
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()

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
    workers = [scoring, relay]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield runtime
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(20)
        runtime.close()


def current_score(runtime: HubRuntime, household_id: str) -> SimpleNamespace | None:
    with runtime.sessions() as session:
        row = session.scalar(
            select(HouseholdScore).where(HouseholdScore.household_id == household_id)
        )
        return None if row is None else explained(session, row)


def eligibility_events(runtime: HubRuntime) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        return [
            row.data
            for row in session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.routing_key == "household.eligibility_changed"
                )
            )
        ]


def test_a_household_event_rescores_it_and_a_changed_verdict_is_one_event(runtime):
    import uuid

    scoring = runtime.registry.scoring
    scoring.activate_model("pmt", scoring.add_model_version("pmt", MODEL, "t")["version"])
    scoring.activate_rule("cct", scoring.add_rule_version("cct", RULE, "t")["version"])
    body = {
        "admin_area_code": "R01-D01",
        "members": [
            member("Head", "1980-01-01", "head"),
            member("Aunt", "1970-01-01", "other_relative"),
        ],
    }
    household_id = runtime.registry.register_household(body, SOURCE).record["id"]
    key = uuid.UUID(household_id)
    first = wait_for(lambda: current_score(runtime, key), "the new household scored")
    assert first.score == pytest.approx(10.0 - 2.0) and first.inputs["children"] == 0
    assert eligibility_events(runtime) == []  # no child: not eligible, nothing to announce

    runtime.registry.add_member(household_id, member("Baby", "2025-02-02", "child"), SOURCE)
    runtime.registry.record_attributes(
        household_id, [{"domain": "dwelling", "name": "rooms", "value": 2}], SOURCE
    )
    scored = wait_for(
        lambda: (
            (row := current_score(runtime, key)) is not None and row.inputs["children"] == 1 and row
        ),
        "the new member counted",
    )
    assert scored.score == pytest.approx(10.0 - 3.0 - 2.0)
    assert scored.previous_score == pytest.approx(8.0)
    (event,) = wait_for(lambda: eligibility_events(runtime), "the eligibility event")
    assert event["household_id"] == household_id and event["program_code"] == "cct"
    assert event["eligible"] is True and event["previous_eligible"] is False
    assert event["score"] == pytest.approx(5.0) and event["previous_score"] == pytest.approx(8.0)

    # the later household.updated (a fact that is not a variable) is handled, changes no
    # verdict and writes no second event
    barrier = runtime.registry.register_household(
        {"admin_area_code": "R02", "members": [member("B", "1990-01-01", "head")]}, SOURCE
    )
    wait_for(lambda: current_score(runtime, uuid.UUID(barrier.record["id"])), "the barrier")
    assert len(eligibility_events(runtime)) == 1
    policy = runtime.registry.scoring.household_policy(household_id)
    assert policy["eligibility"][0]["eligible"] is True
    assert policy["scores"][0]["moved_by"] == {"children": -2.0, "size": -1.0}
