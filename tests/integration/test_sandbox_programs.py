"""Program MIS mock over real HTTP, and its AMQP receiver against the real RabbitMQ."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pika
import pytest
import requests

from sandbox_mocks.common.server import MockServer
from sandbox_mocks.population.ids import national_id_check_digit
from sandbox_mocks.population.model import Household, Person
from sandbox_mocks.programs import ProgramMisConfig, create_app, sign
from tests.services import amqp_url_or_skip, unique_name

AS_OF = date(2025, 6, 1)
SECRET = "test-webhook-secret"


def _nid(n: int) -> str:
    body = f"{300000000 + n * 104729:09d}"
    return body + national_id_check_digit(body)


def _person(n: int, born: date, relationship: str) -> Person:
    return Person(
        person_key=f"p{n}",
        given_name=f"G{n}",
        family_name="F",
        sex="female",
        birth_date=born,
        national_id=_nid(n),
        birth_registration_number=None,
        tax_id=None,
        relationship=relationship,
    )


def make_households() -> list[Household]:
    """h0: toddler; h1: 8-year-old and a grandparent of 70; h2: adults only; h3: toddler."""
    shapes = [
        [date(1990, 1, 1), date(2023, 3, 1)],
        [date(1985, 1, 1), date(2017, 2, 1), date(1955, 5, 5)],
        [date(1980, 1, 1), date(1982, 1, 1)],
        [date(1995, 1, 1), date(2022, 9, 9)],
    ]
    households, n = [], 0
    for h, births in enumerate(shapes):
        members = []
        for i, born in enumerate(births):
            members.append(_person(n, born, "head" if i == 0 else "child"))
            n += 1
        households.append(
            Household(
                household_key=f"hh{h}",
                locality_code="R01-D01-L001",
                address="x",
                latitude=0.0,
                longitude=0.0,
                members=members,
            )
        )
    return households


def _serve(config: ProgramMisConfig) -> MockServer:
    return MockServer(create_app(config)).start()


@pytest.fixture
def mis() -> Iterator[str]:
    config = ProgramMisConfig(
        households=make_households(), as_of=AS_OF, coverage=1.0, webhook_secret=SECRET
    )
    server = _serve(config)
    yield server.url
    server.stop()


def _wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_programs_and_their_initial_beneficiaries(mis: str) -> None:
    programs = {p["code"]: p for p in requests.get(f"{mis}/programs", timeout=5).json()["programs"]}
    assert set(programs) == {"CCG", "OAP", "SFP"}
    # coverage 1.0: every eligible household/person is enrolled
    assert programs["CCG"]["activeBeneficiaries"] == 2  # h0 and h3 have a child under five
    assert programs["SFP"]["activeBeneficiaries"] == 1  # h1 has an 8-year-old
    assert programs["OAP"]["activeBeneficiaries"] == 1  # the 70-year-old in h1
    page = requests.get(f"{mis}/programs/OAP/beneficiaries", timeout=5).json()
    [pensioner] = page["items"]
    assert pensioner["nationalId"] == _nid(4) and pensioner["status"] == "ACTIVE"
    assert pensioner["enrolmentUnit"] == "INDIVIDUAL"
    assert pensioner["householdRef"].startswith("MIS-HH-")
    assert requests.get(f"{mis}/programs/XYZ", timeout=5).status_code == 404


def test_beneficiary_pages_cover_every_record_once(mis: str) -> None:
    seen, page, pages = [], 1, None
    while True:
        body = requests.get(
            f"{mis}/programs/CCG/beneficiaries", params={"page": page, "page_size": 1}, timeout=5
        ).json()
        seen.extend(item["beneficiaryNo"] for item in body["items"])
        pages = body["totalPages"]
        if not body["hasNext"]:
            break
        page += 1
    assert pages == 2 and len(seen) == len(set(seen)) == 2
    bad = requests.get(f"{mis}/programs/CCG/beneficiaries", params={"page_size": 9999}, timeout=5)
    assert bad.status_code == 400 and "page_size" in bad.json()["error"]["message"]


def test_enrolment_validation_conflicts_and_exit(mis: str) -> None:
    url = f"{mis}/programs/OAP/enrollments"
    new_id = _nid(500)
    created = requests.post(url, json={"nationalId": new_id, "fullName": "New Person"}, timeout=5)
    assert created.status_code == 201
    record = created.json()
    assert record["status"] == "ACTIVE" and record["source"] == "api"
    found = requests.get(
        f"{mis}/programs/OAP/beneficiaries", params={"national_id": new_id}, timeout=5
    ).json()
    assert [b["beneficiaryNo"] for b in found["items"]] == [record["beneficiaryNo"]]
    again = requests.post(url, json={"nationalId": new_id}, timeout=5)
    assert again.status_code == 409 and record["beneficiaryNo"] in again.json()["error"]["message"]
    wrong_digit = new_id[:-1] + str((int(new_id[-1]) + 1) % 10)
    bad = requests.post(url, json={"nationalId": wrong_digit}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_national_id"
    schema = requests.post(url, json={"nationalId": new_id, "colour": "red"}, timeout=5)
    assert schema.status_code == 400 and "colour" in schema.json()["error"]["message"]
    not_json = requests.post(url, data="nationalId=1", timeout=5)
    assert not_json.status_code == 400
    assert requests.post(f"{mis}/programs/NOPE/enrollments", json={}, timeout=5).status_code == 404
    exited = requests.post(
        f"{mis}/programs/OAP/beneficiaries/{record['beneficiaryNo']}/exit",
        json={"reason": "deceased"},
        timeout=5,
    )
    assert exited.json()["status"] == "EXITED"
    assert requests.post(url, json={"nationalId": new_id}, timeout=5).status_code == 201


def test_a_member_of_an_enrolled_household_cannot_be_enrolled_twice(mis: str) -> None:
    page = requests.get(f"{mis}/programs/CCG/beneficiaries", timeout=5).json()
    household = page["items"][0]
    child = household["memberNationalIds"][-1]
    assert child != household["nationalId"]
    answer = requests.post(f"{mis}/programs/CCG/enrollments", json={"nationalId": child}, timeout=5)
    assert answer.status_code == 409
    assert household["beneficiaryNo"] in answer.json()["error"]["message"]


def test_webhook_records_everything_and_checks_the_signature(mis: str) -> None:
    body = json.dumps({"type": "org.socialregistry.person.died", "id": "e1"}).encode()
    headers = {"Content-Type": "application/cloudevents+json", "X-Hub-Signature-256": ""}
    cases = [(sign(SECRET, body), True), (sign("wrong-secret", body), False)]
    for signature, _ in cases:
        headers["X-Hub-Signature-256"] = signature
        answer = requests.post(
            f"{mis}/notifications/webhook/sub-1", data=body, headers=headers, timeout=5
        )
        assert answer.status_code == 200
    requests.post(f"{mis}/notifications/webhook", data=b"not json", timeout=5)
    items = requests.get(f"{mis}/notifications", params={"channel": "webhook"}, timeout=5).json()
    assert items["count"] == 3
    first, second, third = items["items"]
    assert first["signature"]["verified"] is True and second["signature"]["verified"] is False
    assert third["signature"] == {
        "header": None,
        "verified": False,
        "reason": "no signature header",
    }
    assert first["label"] == "sub-1" and first["json"]["id"] == "e1"
    assert first["headers"]["Content-Type"] == "application/cloudevents+json"
    assert third["json"] is None and third["body"] == "not json"
    later = requests.get(f"{mis}/notifications", params={"since": first["seq"]}, timeout=5).json()
    assert [i["seq"] for i in later["items"]] == [second["seq"], third["seq"]]
    by_time = requests.get(
        f"{mis}/_admin/notifications", params={"since": first["received_at"]}, timeout=5
    ).json()
    assert by_time["count"] == 2
    bad_since = requests.get(f"{mis}/notifications", params={"since": "yesterday"}, timeout=5)
    assert bad_since.status_code == 400
    handshake = requests.options(
        f"{mis}/notifications/webhook",
        headers={"WebHook-Request-Origin": "hub.example"},
        timeout=5,
    )
    assert handshake.headers["WebHook-Allowed-Origin"] == "hub.example"
    assert requests.delete(f"{mis}/notifications", timeout=5).json()["deleted"] == 3
    assert requests.get(f"{mis}/notifications", timeout=5).json()["count"] == 0


def test_unverified_webhooks_can_be_refused_but_are_still_recorded() -> None:
    server = _serve(ProgramMisConfig(webhook_secret=SECRET, reject_unverified=True))
    try:
        refused = requests.post(
            f"{server.url}/notifications/webhook",
            json={"a": 1},
            headers={"X-Hub-Signature-256": "sha256=00"},
            timeout=5,
        )
        assert refused.status_code == 401
        log = requests.get(f"{server.url}/notifications", timeout=5).json()
        assert log["items"][0]["signature"]["verified"] is False
        unsigned_config = requests.get(f"{server.url}/status", timeout=5).json()
        assert unsigned_config["amqp"]["state"] == "disabled"
    finally:
        server.stop()


def test_dci_notify_is_acknowledged_and_recorded(mis: str) -> None:
    notify = {
        "header": {"message_id": "m1", "action": "notify"},
        "message": {"notify_event": [{"reference_id": "r1"}]},
    }
    answer = requests.post(f"{mis}/registry/notify", json=notify, timeout=5).json()
    assert answer["message"]["ack_status"] == "ACK"
    bad = requests.post(f"{mis}/registry/notify", json={"x": 1}, timeout=5).json()
    assert bad["message"]["ack_status"] == "ERR"
    items = requests.get(f"{mis}/notifications", params={"channel": "dci"}, timeout=5).json()
    assert items["count"] == 2 and items["items"][0]["json"]["header"]["message_id"] == "m1"


# ------------------------------------------------------------------------------- AMQP
@pytest.fixture
def amqp_queue() -> Iterator[tuple[str, str]]:
    url = amqp_url_or_skip()
    queue = unique_name("test_program_mis")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    connection.channel().queue_declare(queue, durable=False, auto_delete=False)
    connection.close()
    yield url, queue
    connection = pika.BlockingConnection(pika.URLParameters(url))
    connection.channel().queue_delete(queue)
    connection.close()


def _publish(url: str, queue: str, payloads: list[dict]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for number, payload in enumerate(payloads):
        channel.basic_publish(
            "",
            queue,
            json.dumps(payload).encode(),
            pika.BasicProperties(
                content_type="application/json",
                message_id=f"m{number}",
                headers={"ce-type": payload["type"]},
            ),
            mandatory=True,
        )
    connection.close()


def _amqp_items(url: str) -> list[dict]:
    return requests.get(f"{url}/notifications", params={"channel": "amqp"}, timeout=5).json()[
        "items"
    ]


@pytest.mark.amqp
def test_amqp_messages_are_recorded(amqp_queue: tuple[str, str]) -> None:
    amqp_url, queue = amqp_queue
    server = _serve(ProgramMisConfig(amqp_url=amqp_url, amqp_queue=queue))
    try:
        _wait_for(lambda: _status(server.url)["state"] == "consuming")
        events = [{"type": "org.socialregistry.person.died", "id": str(i)} for i in range(3)]
        _publish(amqp_url, queue, events)
        items = _wait_for(lambda: len(_amqp_items(server.url)) == 3 and _amqp_items(server.url))
        assert [i["json"]["id"] for i in items] == ["0", "1", "2"]
        assert items[0]["properties"]["message_id"] == "m0"
        assert items[0]["headers"] == {"ce-type": "org.socialregistry.person.died"}
        assert items[0]["queue"] == queue and items[0]["routing_key"] == queue
        status = _status(server.url)
        assert status["messages"] == 3 and "guest@" not in status["url"]
    finally:
        server.stop()
    assert _queue_depth(amqp_url, queue) == 0  # every message was acked


def _status(url: str) -> dict:
    return requests.get(f"{url}/notifications/amqp", timeout=5).json()


def _queue_depth(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    depth = connection.channel().queue_declare(queue, passive=True).method.message_count
    connection.close()
    return depth


class TcpProxy:
    """Forwards loopback TCP to the broker; ``drop_all`` cuts every connection like a network
    failure would, while new connections are still accepted."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def drop_all(self) -> None:
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.drop_all()


@pytest.mark.amqp
def test_amqp_consumer_reconnects_after_the_broker_drops_it(amqp_queue: tuple[str, str]) -> None:
    amqp_url, queue = amqp_queue
    parsed = pika.URLParameters(amqp_url)
    proxy = TcpProxy((parsed.host, parsed.port))
    via_proxy = f"amqp://{parsed.credentials.username}:{parsed.credentials.password}@127.0.0.1:{proxy.port}/%2F"
    server = _serve(ProgramMisConfig(amqp_url=via_proxy, amqp_queue=queue))
    try:
        _wait_for(lambda: _status(server.url)["state"] == "consuming")
        _publish(amqp_url, queue, [{"type": "t", "id": "before"}])
        _wait_for(lambda: len(_amqp_items(server.url)) == 1)
        proxy.drop_all()
        _wait_for(
            lambda: (
                _status(server.url)["connects"] >= 2 and _status(server.url)["state"] == "consuming"
            )
        )
        status = _status(server.url)
        assert status["disconnects"] >= 1 and status["last_error"]
        _publish(amqp_url, queue, [{"type": "t", "id": "after"}])
        items = _wait_for(lambda: len(_amqp_items(server.url)) >= 2 and _amqp_items(server.url))
        assert [i["json"]["id"] for i in items][-1] == "after"
    finally:
        server.stop()
        proxy.close()


@pytest.mark.amqp
def test_a_deleted_queue_is_waited_for_and_consumed_again(amqp_queue: tuple[str, str]) -> None:
    amqp_url, queue = amqp_queue
    server = _serve(ProgramMisConfig(amqp_url=amqp_url, amqp_queue=queue))
    try:
        _wait_for(lambda: _status(server.url)["state"] == "consuming")
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().queue_delete(queue)  # the broker cancels our consumer
        status = _wait_for(lambda: (s := _status(server.url))["disconnects"] >= 1 and s)
        assert status["last_error"]
        connection.channel().queue_declare(queue)
        connection.close()
        _wait_for(lambda: _status(server.url)["state"] == "consuming", timeout=15)
        _publish(amqp_url, queue, [{"type": "t", "id": "back"}])
        items = _wait_for(lambda: _amqp_items(server.url))
        assert items[-1]["json"]["id"] == "back"
    finally:
        server.stop()


def test_missing_broker_does_not_take_the_mock_down() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()  # nothing listens here any more
    server = _serve(
        ProgramMisConfig(
            households=make_households(),
            as_of=AS_OF,
            amqp_url=f"amqp://guest:guest@127.0.0.1:{closed_port}/%2F",
            amqp_queue="q",
        )
    )
    try:
        status = _wait_for(lambda: (s := _status(server.url))["last_error"] and s)
        assert status["state"] in ("disconnected", "connecting") and status["connects"] == 0
        assert requests.get(f"{server.url}/programs", timeout=5).status_code == 200
        overall = requests.get(f"{server.url}/status", timeout=5).json()
        assert overall["amqp"]["enabled"] is True
    finally:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3  # the reconnect loop stops promptly
