"""The programs connector against the live program MIS mock.

Every beneficiary of every program must arrive exactly once per sweep; new enrolments on the
next run; exits on the next full sweep. With the MIS down mid-import the connector retries,
opens its circuit, shows it, and after recovery resumes at the page where it stopped: nothing
lost, nothing published twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine

from connectors.base import (
    ConnectorContext,
    FakeClock,
    InMemoryCheckpointStore,
    PullRunner,
    raw_record_id,
)
from connectors.base.testing import BatchCollectingPublisher
from connectors.programs import ProgramsConnector
from hub.checkpoints import SqlCheckpointStore
from mappings.engine import map_record
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.population import DEFAULT_AS_OF, iter_households
from sandbox_mocks.programs import ProgramMisConfig, create_app
from standards.identifiers import verhoeff_check_digit

RESILIENCE = {
    "timeout_seconds": 5,
    "max_attempts": 3,
    "initial_backoff_seconds": 0.5,
    "jitter_seconds": 0,
    "failure_threshold": 4,
    "cooldown_seconds": 60,
}
PAGE = 25


@pytest.fixture(scope="module")
def households() -> list[Any]:
    return list(iter_households(42, 1500))


class ProgramsSandbox:
    def __init__(self, server: MockServer, checkpoints: Any = None) -> None:
        self.server = server
        self.store = server.app.extensions["program_mis"].store
        self.clock = FakeClock()
        self.publisher = BatchCollectingPublisher()
        self.checkpoints = checkpoints or InMemoryCheckpointStore()
        self.connector = self.new_connector()

    def new_connector(self, **extra: Any) -> ProgramsConnector:
        context = ConnectorContext(
            "programs", self.publisher, checkpoints=self.checkpoints, clock=self.clock
        )
        url = self.server.url
        settings = {  # the launcher's [connectors.programs] section, passed whole
            "kind": "programs",
            "url": url,
            "base_url": url,
            "webhook_url": url + "/notifications/webhook",
            "webhook_secret": "s3cret-for-the-dispatcher",
            "webhook_signature_header": "X-Hub-Signature-256",
            "dci_notify_url": url + "/registry/notify",
            "notifications_url": url + "/notifications",
        }
        return ProgramsConnector(
            {**settings, "page_size": PAGE, "resilience": RESILIENCE, **extra}, context
        )

    def everyone(self) -> dict[str, dict[str, Any]]:
        """beneficiaryNo -> record, straight from the MIS's own store."""
        found: dict[str, dict[str, Any]] = {}
        for program in self.store.programs():
            page = self.store.page(program["code"], 1, 100_000)
            found.update({item["beneficiaryNo"]: item for item in page["items"]})
        return found

    def published_numbers(self) -> list[str]:
        return [r.payload["beneficiaryNo"] for r in self.publisher.records("enrollment")]

    def faults(self, **config: Any) -> None:
        answer = requests.put(self.server.url + "/_admin/faults", json=config, timeout=10)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def mis(households: list[Any]) -> Iterator[ProgramsSandbox]:
    config = ProgramMisConfig(households=households, seed=42, as_of=DEFAULT_AS_OF)
    with MockServer(create_app(config)) as server:
        sandbox = ProgramsSandbox(server)
        yield sandbox
        sandbox.connector.close()


def test_every_beneficiary_of_every_program_imported_page_by_page(mis: ProgramsSandbox) -> None:
    everyone = mis.everyone()
    assert len(everyone) > 3 * PAGE  # several pages per program
    outcome = PullRunner(mis.connector).run_once()
    assert outcome.error is None
    numbers = mis.published_numbers()
    assert sorted(numbers) == sorted(everyone)  # each exactly once
    records = {r.payload["beneficiaryNo"]: r for r in mis.publisher.records("enrollment")}
    assert all(records[n].payload == everyone[n] for n in everyone)  # raw, unchanged
    assert max(mis.publisher.batches) <= PAGE
    counts = {
        p["code"]: len(mis.store.page(p["code"], 1, 100_000)["items"]) for p in mis.store.programs()
    }
    assert mis.checkpoints.load("programs")["offsets"] == counts
    mapped = map_record("program_enrollment", next(iter(records.values())).payload)
    assert mapped["status"] == "active" and mapped["program_code"] in counts


def test_new_enrolment_arrives_on_the_next_run_alone(mis: ProgramsSandbox) -> None:
    runner = PullRunner(mis.connector)
    runner.run_once()
    before = len(mis.published_numbers())
    taken = {n for b in mis.everyone().values() for n in [b["nationalId"], *b["memberNationalIds"]]}
    body = next(
        f"{n:09d}" + verhoeff_check_digit(f"{n:09d}")
        for n in range(123_456_789, 123_460_000)
        if f"{n:09d}" + verhoeff_check_digit(f"{n:09d}") not in taken
    )
    answer = requests.post(
        mis.server.url + "/programs/OAP/enrollments",
        json={"nationalId": body, "fullName": "Test Person"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    new_number = answer.json()["beneficiaryNo"]
    outcome = runner.run_once()
    assert outcome.error is None and outcome.published == 1
    assert mis.published_numbers()[before:] == [new_number]


def test_exit_is_seen_on_the_next_full_sweep(mis: ProgramsSandbox) -> None:
    mis.connector = mis.new_connector(full_sweep_seconds=3600)
    runner = PullRunner(mis.connector)
    runner.run_once()
    first_ids = {
        r.payload["beneficiaryNo"]: raw_record_id("programs", r)
        for r in mis.publisher.records("enrollment")
    }
    number = sorted(first_ids)[3]
    code = number.split("-")[0]
    answer = requests.post(
        f"{mis.server.url}/programs/{code}/beneficiaries/{number}/exit",
        json={"reason": "moved away"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert runner.run_once().published == 0  # an in-place change: not seen between sweeps

    mis.clock.advance(3601)
    outcome = runner.run_once()
    assert outcome.published == len(first_ids)  # the sweep reads every list again
    resent = mis.publisher.records("enrollment")[-len(first_ids) :]
    changed = {
        r.payload["beneficiaryNo"]
        for r in resent
        if raw_record_id("programs", r) != first_ids[r.payload["beneficiaryNo"]]
    }
    assert changed == {number}  # the rest keep their message id: the ingest drops them
    exited = next(r for r in resent if r.payload["beneficiaryNo"] == number)
    assert map_record("program_enrollment", exited.payload)["status"] == "exited"


def test_partner_down_mid_import_retried_circuit_opens_resumes_nothing_lost(
    households: list[Any], db_engine: Engine
) -> None:
    config = ProgramMisConfig(households=households, seed=42, as_of=DEFAULT_AS_OF)
    with MockServer(create_app(config)) as server:
        mis = ProgramsSandbox(server, SqlCheckpointStore(db_engine))
        everyone = mis.everyone()
        first = PullRunner(mis.connector, max_pages_per_run=3).run_once()
        assert first.error is None and first.pages == 3
        imported = mis.published_numbers()
        assert len(imported) == 3 * PAGE
        saved = mis.checkpoints.load("programs")

        mis.faults(down=True)
        runner = PullRunner(mis.connector)
        outcome = runner.run_once()
        assert outcome.error and "http_503" in outcome.error
        status = mis.connector.status.snapshot()
        assert status["counts"]["retries"] == 2  # three attempts, two retries
        assert runner.run_once().error  # one more failure: the circuit opens
        status = mis.connector.status.snapshot()
        assert status["circuit"] == "open" and status["state"] == "down"
        assert status["last_error"]
        calls = status["counts"]["calls"]
        outcome = runner.run_once()
        assert outcome.error and "circuit_open" in outcome.error
        assert mis.connector.status.snapshot()["counts"]["calls"] == calls  # left alone
        assert mis.checkpoints.load("programs") == saved  # never moved past a failure
        assert mis.published_numbers() == imported

        mis.faults(down=False)
        mis.clock.advance(61)
        # the hub restarts meanwhile: a new connector resumes from the database checkpoint
        mis.connector = mis.new_connector()
        outcome = PullRunner(mis.connector).run_once()
        assert outcome.error is None
        numbers = mis.published_numbers()
        assert sorted(numbers) == sorted(everyone)  # nothing lost, nothing twice
        assert numbers[: len(imported)] == imported
        assert mis.connector.status.snapshot()["state"] == "up"
        mis.connector.close()


def test_garbled_page_reported_and_checkpoint_kept(mis: ProgramsSandbox) -> None:
    runner = PullRunner(mis.connector, max_pages_per_run=1)
    runner.run_once()
    saved = mis.checkpoints.load("programs")
    mis.faults(malformed_rate=1.0, malformed_mode="truncate")
    outcome = runner.run_once()
    assert outcome.error and "bad_json" in outcome.error
    assert mis.checkpoints.load("programs") == saved
    assert len(mis.published_numbers()) == PAGE
    assert "bad_json" in (mis.connector.status.snapshot()["last_error"] or "")


def test_settings_accept_the_sandbox_launchers_section(tmp_path: Any) -> None:
    from sandbox_mocks.launcher import SandboxConfig, start_sandbox

    config = SandboxConfig(
        people=300,
        only=["programs"],
        ports={"programs": 0},
        work_dir=tmp_path,
        write_connectors=False,
    )
    with start_sandbox(config) as running:
        publisher = BatchCollectingPublisher()
        connector = ProgramsConnector(
            running.connectors()["programs"], ConnectorContext("programs", publisher)
        )
        outcome = PullRunner(connector).run_once()
        connector.close()
    assert outcome.error is None and publisher.records("enrollment")
