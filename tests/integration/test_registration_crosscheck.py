"""A registration triggers the national ID cross-check through the broker, by policy.

Real parts end to end: a household registered through the API, the relay publishing its
events, the crosscheck worker queueing ``registry.verification_requested`` on ``sr.inbound``,
the ingest worker calling the national ID connector against the SOAP sandbox mock (zeep), the
answer applied as ``person.verified``, and the household record showing each member's last
outcome. On the embedded queue (SQLite, PostgreSQL) and on RabbitMQ (with PostgreSQL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.broker import connect
from hub.broker.base import EXCHANGE_EVENTS, EXCHANGE_INBOUND
from hub.connectors_host import ConnectorHost
from hub.crosscheck.handlers import crosscheck_handlers, request_message
from hub.crosscheck.status import NEVER_ASKED
from hub.pipeline.ingest import ingest_handlers
from hub.pipeline.relay import message_for
from hub.pipeline.relay_worker import RelayWorker
from hub.pipeline.routes import default_routes
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.settings.model import with_overrides
from hub.workers.idempotency import ProcessedMessage
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import CROSSCHECK_QUEUE, INGEST_QUEUE
from registry_core.models import OutboxEvent
from registry_core.service import Source
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.launcher import SANDBOX_IDENTIFIER_PROFILE
from sandbox_mocks.national_id import SOAP_PATH, NationalIdConfig
from sandbox_mocks.national_id import create_app as national_id_app

USER, PASSWORD = "hub-test", "pw-national-id-test"
AREA = "R01-D02-L003"


@pytest.fixture(scope="module")
def national_id() -> Iterator[tuple[MockServer, list[Any]]]:
    config = NationalIdConfig(seed=42, people=60, noise_rate=0.0, username=USER, password=PASSWORD)
    with MockServer(national_id_app(config)) as server:
        records = server.app.extensions["national_id"].store.records()
        yield server, [r for r in records if not r.deceased]


class CountingConnectors:
    """The ingest worker's connector look-up, counting the national ID checks it makes."""

    def __init__(self, host: ConnectorHost) -> None:
        self.host = host
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, name: str) -> Any:
        connector = self.host.connector(name)
        if connector is None or name != "national_id":
            return connector
        outer = self

        class Counting:
            def verify(self, *args: Any, **kwargs: Any) -> Any:
                with outer.lock:
                    outer.calls += 1
                return connector.verify(*args, **kwargs)

        return Counting()


@dataclass
class Hub:
    runtime: HubRuntime
    client: Any
    headers: dict[str, str]
    connectors: CountingConnectors
    crosscheck: ConsumerRuntime
    people: list[Any]

    @property
    def registry(self) -> Any:
        return self.runtime.registry

    def register(self, members: list[dict[str, Any]], *, consent: bool = True) -> dict[str, Any]:
        """Register through the API; ``consent`` is given at registration, in its transaction
        (as a form's consent question is), so ``household.created`` alone decides the check."""
        body: dict[str, Any] = {
            "admin_area_code": AREA,
            "address": "1 Test Road",
            "members": members,
        }
        if consent:
            body["consents"] = [
                {"program": "registry", "purpose": "identity_verification", "channel": "form"}
            ]
        response = self.client.post("/api/v1/households", json=body, headers=self.headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def household(self, household_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/households/{household_id}", headers=self.headers)
        assert response.status_code == 200
        return response.get_json()

    def checks(self, household_id: str) -> dict[str, dict[str, Any]]:
        return {
            m["given_name"]: m["identity_check"] for m in self.household(household_id)["members"]
        }

    def barrier(self) -> None:
        """Register a household nobody can check and wait until the crosscheck worker shows
        it: every event published before it has been handled (one queue, in order)."""
        record = self.register([member_without_id("Barrier")], consent=False)
        wait_for(
            lambda: self.checks(record["id"])["Barrier"]["reason"] != NEVER_ASKED,
            "the barrier household handled",
        )

    def outbox(self, event_type: str) -> list[OutboxEvent]:
        with self.runtime.sessions() as session:
            return list(
                session.scalars(select(OutboxEvent).where(OutboxEvent.routing_key == event_type))
            )


def member_of(record: Any, relationship: str = "head") -> dict[str, Any]:
    return {
        "given_name": record.given_name,
        "family_name": record.family_name,
        "sex": record.sex,
        "birth_date": record.birth_date.isoformat(),
        "relationship": relationship,
        "identifiers": [{"system": "national_id", "value": record.uin}],
    }


def member_without_id(name: str, relationship: str = "head") -> dict[str, Any]:
    return {
        "given_name": name,
        "family_name": "Otieno",
        "sex": "female",
        "birth_date": "2015-03-04",
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


@pytest.fixture(params=["embedded", pytest.param("amqp", marks=pytest.mark.amqp)])
def make_hub(
    request: pytest.FixtureRequest,
    db_url: str,
    tmp_path: Path,
    national_id: tuple[MockServer, list[Any]],
) -> Iterator[Callable[[str], Hub]]:
    if request.param == "amqp" and db_url.startswith("sqlite"):
        pytest.skip("RabbitMQ runs with PostgreSQL here")
    amqp_url = request.getfixturevalue("amqp_url") if request.param == "amqp" else ""
    server, people = national_id
    started: list[tuple[HubRuntime, list[Any], list[threading.Thread]]] = []

    def make(policy: str) -> Hub:
        settings = load_settings(
            env={},
            database_url=db_url,
            data_dir=tmp_path / "var",
            amqp_url=amqp_url,
            identifier_profile=SANDBOX_IDENTIFIER_PROFILE,
        )
        settings = with_overrides(settings, intake={"crosscheck_policy": policy})
        runtime = HubRuntime(settings)
        runtime.registry.ensure_identifier_systems()
        app = create_app(settings, runtime)
        host = ConnectorHost(settings, runtime.engine).build(
            {
                "national_id": {
                    "kind": "national_id",
                    "url": server.url,
                    "wsdl_url": server.url + SOAP_PATH + "?wsdl",
                    "endpoint_url": server.url + SOAP_PATH,
                    "username": USER,
                    "password": PASSWORD,
                    "resilience": {"timeout_seconds": 5, "initial_backoff_seconds": 0.05},
                }
            }
        )
        host.mount(app)
        counting = CountingConnectors(host)
        retry = RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.2, jitter=0.05)

        def factory() -> Any:
            return connect(settings, wait_for=0)

        ingest = ConsumerRuntime(
            "ingest",
            INGEST_QUEUE,
            factory,
            runtime.sessions,
            ingest_handlers(runtime, default_routes(), connectors=counting),
            retry=retry,
            receive_timeout=0.1,
        )
        crosscheck = ConsumerRuntime(
            "crosscheck",
            CROSSCHECK_QUEUE,
            factory,
            runtime.sessions,
            crosscheck_handlers(runtime),
            retry=retry,
            receive_timeout=0.1,
        )
        relay = RelayWorker(factory, runtime.sessions, poll_interval=0.05)
        workers: list[Any] = [ingest, crosscheck, relay]
        threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        started.append((runtime, [*workers, host], threads))
        token = issue_token(settings, subject="officer", roles=["registry_staff"])
        return Hub(
            runtime,
            app.test_client(),
            {"Authorization": f"Bearer {token}"},
            counting,
            crosscheck,
            list(people),
        )

    yield make
    for runtime, workers, threads in started:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(20)
        runtime.close()


def test_a_registration_is_checked_once_and_the_household_shows_the_outcome(make_hub):
    hub = make_hub("first")
    person = hub.people[0]
    household = hub.register([member_of(person), member_without_id("Cleo", "child")])

    def verified() -> bool:
        return hub.checks(household["id"])[person.given_name]["status"] == "verified"

    wait_for(verified, "the head verified through the broker")
    checks = hub.checks(household["id"])
    assert checks["Cleo"] == {
        "status": "not_checked",
        "reason": "no national ID recorded: nothing to check",
        "at": checks["Cleo"]["at"],
    }
    assert checks[person.given_name]["at"]
    assert hub.connectors.calls == 1
    assert len(hub.outbox("person.verified")) == 1

    # Policy first: a re-registration of who the head says they are checks nobody again.
    head_id = next(m["id"] for m in household["members"] if m["relationship"] == "head")
    changed = hub.registry.update_person(
        head_id, {"given_name": person.given_name + "a"}, Source("registry_staff")
    )
    assert changed.events == ["household.updated"]
    hub.barrier()
    assert hub.connectors.calls == 1


def test_without_consent_nobody_is_asked_until_consent_is_recorded(make_hub):
    hub = make_hub("first")
    person = hub.people[1]
    household = hub.register([member_of(person)], consent=False)
    wait_for(
        lambda: (
            hub.checks(household["id"])[person.given_name]["reason"]
            == "no consent to the national ID check recorded"
        ),
        "shown as not checked for want of consent",
    )
    assert hub.connectors.calls == 0
    hub.registry.grant_consent(
        "registry",
        "identity_verification",
        "office",
        Source("registry_staff"),
        person_id=household["members"][0]["id"],
    )
    wait_for(
        lambda: hub.checks(household["id"])[person.given_name]["status"] == "verified",
        "checked once the consent arrived",
    )
    assert hub.connectors.calls == 1


def test_policy_never_queues_nothing_and_says_so(make_hub):
    hub = make_hub("never")
    person = hub.people[2]
    household = hub.register([member_of(person)])
    wait_for(
        lambda: hub.checks(household["id"])[person.given_name]["status"] == "not_checked",
        "shown as not checked",
    )
    hub.barrier()
    assert "cross-check is off" in hub.checks(household["id"])[person.given_name]["reason"]
    assert hub.connectors.calls == 0
    assert hub.outbox("person.verified") == []


def test_a_redelivered_registration_event_queues_one_check(make_hub):
    hub = make_hub("always")
    person = hub.people[3]
    household = hub.register([member_of(person)])
    wait_for(
        lambda: hub.checks(household["id"])[person.given_name]["status"] == "verified",
        "verified",
    )
    assert hub.connectors.calls == 1
    created = next(
        e for e in hub.outbox("household.created") if e.subject == f"household/{household['id']}"
    )
    # The crosscheck worker forgets it handled the event (a crash before its record), and
    # the event comes again: the request it publishes again has the same id.
    with hub.runtime.sessions() as session, session.begin():
        session.execute(
            delete(ProcessedMessage).where(
                ProcessedMessage.consumer == "crosscheck",
                ProcessedMessage.message_id == created.event_id,
            )
        )
    broker = connect(hub.runtime.settings, wait_for=5)
    try:
        broker.publish(EXCHANGE_EVENTS, [message_for(created)])
        # ... and the same request published twice more (a publisher's retry) is one check.
        again = request_message(created.event_id, household["members"][0]["id"])
        broker.publish(EXCHANGE_INBOUND, [again, again])
    finally:
        broker.close()
    hub.barrier()
    wait_for(lambda: hub.crosscheck.status.snapshot()["processed"] >= 3, "handled")
    time.sleep(0.5)  # the ingest worker's copies
    assert hub.connectors.calls == 1
    with hub.runtime.sessions() as session:
        ingest_ids = session.scalar(
            select(func.count())
            .select_from(ProcessedMessage)
            .where(
                ProcessedMessage.consumer == "ingest",
                ProcessedMessage.message_id == again.message_id,
            )
        )
    assert ingest_ids == 1

    # Policy always: a re-registration is checked again. The authority answers as before, so
    # the registry announces nothing new, and the pending check is still settled.
    hub.registry.update_person(
        household["members"][0]["id"],
        {"identifiers": [{"system": "program_beneficiary_id", "value": "B77"}]},
        Source("registry_staff"),
    )
    wait_for(lambda: hub.connectors.calls == 2, "checked again")
    wait_for(
        lambda: hub.checks(household["id"])[person.given_name]["status"] == "verified",
        "the second check settled",
    )
    assert len(hub.outbox("person.verified")) == 1


def test_the_request_id_depends_only_on_the_event_and_the_person():
    first = request_message("event-1", "person-1")
    assert request_message("event-1", "person-1").message_id == first.message_id
    assert request_message("event-2", "person-1").message_id != first.message_id
    assert request_message("event-1", "person-2").message_id != first.message_id
    assert first.routing_key == "registry.verification_requested"
