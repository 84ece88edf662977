"""The national ID connector with zeep against the live SOAP mock: verification, eKYC, faults
mapped to the error tree, retries and the circuit breaker, and the raw records it publishes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from connectors.base import (
    CircuitOpenError,
    ConnectorContext,
    FakeClock,
    PermanentPartnerError,
    TransientPartnerError,
    raw_event,
    routing_key,
)
from connectors.base.errors import PartnerProtocolError, PartnerTimeout
from connectors.base.testing import CollectingPublisher
from connectors.national_id import (
    CredentialsRejected,
    InvalidRequest,
    NationalIdConnector,
    NotFoundError,
)
from connectors.national_id.ids import verhoeff_digit
from mappings.engine import map_record
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.national_id import SOAP_PATH, NationalIdConfig, create_app
from sandbox_mocks.national_id.store import IdentityRecord
from sandbox_mocks.population.ids import sandbox_profile
from standards.identifiers import IdentifierProfile, default_profile

USER, PASSWORD = "hub-test", "pw-national-id-test"


class CountingSession(requests.Session):
    """Counts what goes over the wire, to prove the WSDL is fetched once."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(f"{method!s} {url!s}")
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="module")
def mock() -> Iterator[tuple[MockServer, list[IdentityRecord]]]:
    config = NationalIdConfig(seed=42, people=300, noise_rate=0.0, username=USER, password=PASSWORD)
    with MockServer(create_app(config)) as server:
        yield server, server.app.extensions["national_id"].store.records()


@pytest.fixture(autouse=True)
def _clear_faults(mock: tuple[MockServer, list[IdentityRecord]]) -> Iterator[None]:
    yield
    requests.delete(mock[0].url + "/_admin/faults", timeout=5)


def make(
    server: MockServer,
    *,
    password: str = PASSWORD,
    publisher: CollectingPublisher | None = None,
    session: requests.Session | None = None,
    clock: FakeClock | None = None,
    identifiers: IdentifierProfile | None = None,
    **resilience: Any,
) -> tuple[NationalIdConnector, CollectingPublisher]:
    publisher = publisher or CollectingPublisher()
    settings = {
        "kind": "national_id",
        "url": server.url,
        "wsdl_url": server.url + SOAP_PATH + "?wsdl",
        "endpoint_url": server.url + SOAP_PATH,
        "username": USER,
        "password": password,
        "resilience": {
            "timeout_seconds": 3,
            "initial_backoff_seconds": 0.2,
            "jitter_seconds": 0,
            **resilience,
        },
    }
    context = ConnectorContext(
        "national_id",
        publisher,
        clock=clock or FakeClock(),
        identifiers=identifiers or sandbox_profile(),  # what `srhub run` gives it with the sandbox
    )
    return NationalIdConnector(settings, context, session=session), publisher


def alive(records: list[IdentityRecord]) -> list[IdentityRecord]:
    return [r for r in records if not r.deceased]


def unknown_id(records: list[IdentityRecord]) -> str:
    known = {r.uin for r in records}
    for body in range(123456780, 123456999):
        candidate = str(body) + verhoeff_digit(str(body))
        if candidate not in known:
            return candidate
    raise AssertionError("no free ID")


def set_faults(server: MockServer, **faults: Any) -> None:
    response = requests.put(server.url + "/_admin/faults", json=faults, timeout=5)
    assert response.status_code == 200, response.text


def requests_seen(server: MockServer) -> int:
    return int(requests.get(server.url + "/_admin/faults", timeout=5).json()["stats"]["requests"])


def test_verify_match_is_published_for_the_ingest(mock) -> None:
    server, records = mock
    connector, publisher = make(server)
    record = alive(records)[0]
    answer = connector.verify(
        record.uin,
        {
            "given_name": record.given_name,
            "family_name": record.family_name,
            "birth_date": record.birth_date.isoformat(),
            "sex": record.sex,
        },
        consent=True,
        person_id="7b0c8a52-3f7e-4b8e-9a55-0d6a2c1f4e11",
    )
    assert answer.verified is True and answer.person_status == "alive"
    [raw] = publisher.records()
    assert routing_key("national_id", raw.record_type) == "national_id.verification"
    assert raw.payload == answer.payload and answer.message_id is not None
    assert raw.headers["person_id"] == "7b0c8a52-3f7e-4b8e-9a55-0d6a2c1f4e11"
    assert raw.headers["national_id"] == record.uin
    event = raw_event("national_id", raw, time=FakeClock().now())
    assert event["type"].endswith("national_id.verification") and event["id"] == answer.message_id
    assert map_record("national_id_verification", raw.payload) == {
        "transaction_id": answer.transaction_id,
        "verified": True,
        "person_status": "alive",
        "matched_fields": ["name", "birth_date", "sex"],
    }


def test_verify_mismatch_says_which_field(mock) -> None:
    server, records = mock
    connector, publisher = make(server)
    record = alive(records)[1]
    wrong_day = record.birth_date + timedelta(days=3)
    answer = connector.verify(
        record.uin,
        {"name": f"{record.given_name} {record.family_name}", "birth_date": wrong_day},
        consent=True,
    )
    assert answer.verified is False
    mapped = map_record("national_id_verification", publisher.records()[0].payload)
    assert mapped["verified"] is False
    assert mapped["matched_fields"] == ["name"] and mapped["mismatched_fields"] == ["birth_date"]
    assert mapped["error_codes"] == ["IDA-DEA-001"] and "dob" in mapped["reason"]


def test_verify_of_a_deceased_holder_fails_with_the_reason(mock) -> None:
    server, records = mock
    dead = next((r for r in records if r.deceased), None)
    if dead is None:
        pytest.skip("no deceased identity in this population")
    connector, publisher = make(server)
    answer = connector.verify(dead.uin, {"birth_date": dead.birth_date}, consent=True)
    assert answer.verified is False and answer.person_status == "deceased"
    assert "IDA-MLC-003" in answer.error_codes
    mapped = map_record("national_id_verification", publisher.records()[0].payload)
    assert mapped["person_status"] == "deceased"
    assert mapped["death_date"] == dead.death_date.isoformat()


def test_get_person_returns_and_publishes_the_identity(mock) -> None:
    server, records = mock
    connector, publisher = make(server)
    record = alive(records)[2]
    answer = connector.get_person(record.uin)
    assert answer.kyc_status is True and answer.identity is not None
    assert answer.identity["givenName"] == record.given_name
    [raw] = publisher.records("person")
    assert routing_key("national_id", raw.record_type) == "national_id.person"
    mapped = map_record("national_id_person", raw.payload)
    assert mapped["person"]["identifiers"] == [
        {"system": "national_id", "value": record.uin, "verified": True}
    ]
    assert mapped["admin_area_code"] == record.locality_code


def test_the_wsdl_is_fetched_once_per_connector(mock) -> None:
    server, records = mock
    session = CountingSession()
    connector, _ = make(server, session=session)
    assert not connector.loaded
    for record in alive(records)[:3]:
        connector.get_person(record.uin)
    gets = [s for s in session.sent if s.startswith("GET")]
    posts = [s for s in session.sent if s.startswith("POST")]
    assert len(gets) == 2  # the WSDL and the schema it imports, nothing more
    assert any("wsdl" in g for g in gets) and any(g.endswith(".xsd") for g in gets)
    assert len(posts) == 3


def test_unknown_id_is_not_found_and_not_retried(mock) -> None:
    server, records = mock
    connector, publisher = make(server)
    connector.get_person(alive(records)[0].uin)  # load the WSDL first
    calls = connector.status.snapshot()["counts"]["calls"]
    with pytest.raises(NotFoundError) as caught:
        connector.get_person(unknown_id(records))
    assert isinstance(caught.value, PermanentPartnerError)
    assert caught.value.reason == "not_found" and "IDA-MLC-018" in caught.value.detail
    assert connector.status.snapshot()["counts"]["calls"] == calls + 1
    assert connector.resilience.breaker.state == "closed"
    assert len(publisher.records()) == 1  # only the successful look-up


def test_invalid_ids_are_refused_before_any_call(mock) -> None:
    server, records = mock
    session = CountingSession()
    connector, _ = make(server, session=session)
    good = alive(records)[0].uin
    swapped = good[:3] + good[4] + good[3] + good[5:] if good[3] != good[4] else "12345"
    for bad in (swapped, "0123456789", "12345", good + "1"):
        with pytest.raises(InvalidRequest):
            connector.get_person(bad)
    with pytest.raises(InvalidRequest, match="unknown demographic"):
        connector.verify(good, {"shoe_size": "44"}, consent=True)
    assert session.sent == []


def test_the_connector_checks_by_its_profile_and_the_mock_by_the_sandbox_one(mock) -> None:
    """Under the built-in profile (no check digit) a mistyped number is well-formed for the
    hub, so it is sent, and the authority (the mock, on the sandbox profile) refuses it."""
    server, records = mock
    good = alive(records)[0].uin
    mistyped = good[:-1] + str((int(good[-1]) + 1) % 10)
    strict, _ = make(server)
    with pytest.raises(InvalidRequest, match=r"national_id .*Verhoeff"):
        strict.get_person(mistyped)
    lenient, _ = make(server, identifiers=default_profile())
    with pytest.raises(PermanentPartnerError) as caught:
        lenient.get_person(mistyped)
    assert caught.value.reason == "invalid_id"
    # Separators are the profile's business: the number is sent as the profile writes it.
    answer = lenient.get_person(f"{good[:3]}-{good[3:6]} {good[6:]}")
    assert answer.kyc_status and answer.identity is not None


def test_bad_credentials_are_permanent_with_an_operator_reason(mock) -> None:
    server, records = mock
    connector, _ = make(server, password="not-the-password")
    with pytest.raises(CredentialsRejected) as caught:
        connector.get_person(alive(records)[0].uin)
    error = caught.value
    assert isinstance(error, PermanentPartnerError) and error.reason == "bad_credentials"
    assert "[connectors.national_id]" in error.detail
    assert "not-the-password" not in str(error)
    snapshot = connector.status.snapshot()
    assert snapshot["counts"]["retries"] == 0 and snapshot["circuit"] == "closed"
    assert "bad_credentials" in snapshot["last_error"]


def test_server_faults_are_retried_then_the_circuit_opens_and_recovers(mock) -> None:
    server, records = mock
    clock = FakeClock()
    connector, publisher = make(
        server, clock=clock, max_attempts=3, failure_threshold=5, cooldown_seconds=30
    )
    person = alive(records)[3]
    connector.get_person(person.uin)
    set_faults(server, error_rate=1.0, error_status=503)
    before = requests_seen(server)
    with pytest.raises(TransientPartnerError) as caught:
        connector.get_person(person.uin)
    assert caught.value.reason == "soap_server"
    assert requests_seen(server) - before == 3  # the first call and two retries
    assert connector.status.snapshot()["counts"]["retries"] == 2
    with pytest.raises((TransientPartnerError, CircuitOpenError)):
        connector.get_person(person.uin)
    assert connector.resilience.breaker.state == "open"
    seen = requests_seen(server)
    with pytest.raises(CircuitOpenError):
        connector.get_person(person.uin)
    assert requests_seen(server) == seen  # refused locally: the partner is spared
    snapshot = connector.status.snapshot()
    assert snapshot["state"] == "down" and snapshot["circuit"] == "open"
    assert len(publisher.records()) == 1
    requests.delete(server.url + "/_admin/faults", timeout=5)
    clock.advance(31)
    answer = connector.get_person(person.uin)  # the half-open trial succeeds
    assert answer.kyc_status and connector.resilience.breaker.state == "closed"
    assert connector.status.snapshot()["state"] == "up"
    assert len(publisher.records()) == 2


def test_a_slow_authority_costs_one_timeout_not_a_stuck_thread(mock) -> None:
    server, records = mock
    connector, _ = make(server, timeout_seconds=0.3, max_attempts=1)
    person = alive(records)[4]
    connector.get_person(person.uin)
    set_faults(server, latency_ms=1500)
    clock_start = time.monotonic()
    with pytest.raises(PartnerTimeout):
        connector.get_person(person.uin)
    assert time.monotonic() - clock_start < 1.2


def test_an_unreadable_answer_is_reported_not_crashed(mock) -> None:
    server, records = mock
    connector, publisher = make(server)
    person = alive(records)[5]
    connector.get_person(person.uin)
    set_faults(server, malformed_rate=1.0, malformed_mode="garbage")
    with pytest.raises(PartnerProtocolError) as caught:
        connector.get_person(person.uin)
    assert caught.value.reason in ("bad_answer", "bad_xml")
    assert connector.status.snapshot()["counts"]["retries"] == 0
    assert len(publisher.records()) == 1


def test_authority_down_at_start_then_up(mock) -> None:
    server, records = mock
    set_faults(server, down=True)
    connector, _ = make(server, max_attempts=2)
    with pytest.raises(TransientPartnerError):
        connector.get_person(alive(records)[6].uin)
    assert not connector.loaded
    requests.delete(server.url + "/_admin/faults", timeout=5)
    assert connector.get_person(alive(records)[6].uin).kyc_status


def test_a_failed_publish_still_answers_the_caller(mock) -> None:
    server, records = mock
    publisher = CollectingPublisher()
    publisher.fail_at = 1
    connector, _ = make(server, publisher=publisher)
    answer = connector.get_person(alive(records)[7].uin)
    assert answer.kyc_status and answer.message_id is None
    assert answer.publish_error and "publishing" in answer.publish_error
    assert connector.lookup_within(
        {"operation": "get_person", "national_id": alive(records)[7].uin}, 5
    ).message_id
