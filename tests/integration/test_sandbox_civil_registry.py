"""The civil-registry mock over real HTTP: FHIR bundles, webhooks, DCI, feed, clock, faults.

Receivers are real werkzeug servers on loopback; webhook signatures are checked here with an
independent implementation (``urllib``'s quoting and the ``hmac`` module), never with the mock's
own signer. The webhooks part checks the mock against what OpenCRVS's webhooks and auth
services do (opencrvs-core ``packages/webhooks``, ``packages/auth``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import pytest
import requests
from fhir.resources.R4B.bundle import Bundle
from flask import Flask, Response, jsonify, request

from sandbox_mocks.civil_registry import CivilRegistryConfig, create_app
from sandbox_mocks.civil_registry.delivery import RetryPolicy
from sandbox_mocks.civil_registry.fhir_bundles import build_bundle, variant
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.population.model import Person, VitalEvent

START = date(2025, 1, 1)
CLIENT_ID = str(uuid.uuid4())
CLIENT_SECRET = str(uuid.uuid4())
SECRET = str(uuid.uuid4())  # the signing ("sha") secret OpenCRVS issues to the client
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.05, factor=2.0, timeout_s=2.0)


def person(
    key: str,
    given: str,
    sex: str,
    born: date,
    nid: str | None = None,
    brn: str | None = None,
    died: date | None = None,
) -> Person:
    return Person(
        person_key=key,
        given_name=given,
        family_name="Okafor",
        sex=sex,
        birth_date=born,
        national_id=nid,
        birth_registration_number=brn,
        tax_id=None,
        relationship="child",
        death_date=died,
    )


MOTHER = person("m", "Ada", "female", date(1994, 4, 2), nid="1111111111")
FATHER = person("f", "Ben", "male", date(1990, 7, 9), nid="2222222222")
EVENTS = [
    VitalEvent(
        "birth",
        date(2025, 1, 3),
        date(2025, 1, 10),
        "BR1",
        person("c1", "Chi", "female", date(2025, 1, 3), brn="BR1"),
        "HH1",
        mother=MOTHER,
        father=FATHER,
        place_locality_code="R01-D01-L001",
    ),
    VitalEvent(
        "death",
        date(2025, 1, 4),
        date(2025, 1, 12),
        "DR1",
        person(
            "d1",
            "Dan",
            "male",
            date(1941, 2, 2),
            nid="3333333333",
            brn="BR0",
            died=date(2025, 1, 4),
        ),
        "HH2",
        place_locality_code="R01-D02-L003",
    ),
    VitalEvent(
        "birth",
        date(2025, 2, 1),
        date(2025, 2, 20),
        "BR2",
        person("c2", "Eze", "male", date(2025, 2, 1), brn="BR2"),
        "HH1",
        mother=MOTHER,
        father=None,
    ),
    VitalEvent(
        "death",
        date(2025, 3, 1),
        date(2025, 3, 15),
        "DR2",
        person("d2", "Fola", "female", date(1950, 5, 5), nid="4444444444", died=date(2025, 3, 1)),
        "HH3",
    ),
]


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


class Receiver:
    """A partner system receiving webhooks and DCI callbacks; records everything."""

    def __init__(
        self, fail_first: int = 0, always_fail: bool = False, wrong_challenge: bool = False
    ) -> None:
        self.verifications: list[dict[str, str]] = []
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.callbacks: list[tuple[str, dict[str, Any]]] = []  # (header.action, body)
        self.callback_paths: list[tuple[str, str]] = []  # (header.action, the path it came to)
        self.posts_seen = 0
        self._lock = threading.Lock()
        app = Flask("receiver")

        @app.get("/hook")
        def verify() -> Response:
            self.verifications.append(dict(request.args))
            challenge = request.args.get("challenge", "")
            return jsonify({"challenge": "nope" if wrong_challenge else challenge})

        @app.post("/hook")
        def deliver() -> tuple[str, int]:
            with self._lock:
                self.posts_seen += 1
                if always_fail or self.posts_seen <= fail_first:
                    return "busy", 500
                self.deliveries.append((dict(request.headers), request.get_data()))
            return "", 204

        @app.post("/registry/<action>")
        def dci_callback(action: str) -> Response:
            body = request.get_json()
            self.callbacks.append((body["header"]["action"], body))
            self.callback_paths.append((body["header"]["action"], request.path))
            return jsonify({"message": {"ack_status": "ACK"}})

        self.server = MockServer(app).start()

    @property
    def hook(self) -> str:
        return self.server.url + "/hook"

    def dci(self, action: str) -> str:
        """The full callback URL for ``action``, given as ``sender_uri``."""
        return f"{self.server.url}/registry/{action}"

    def of(self, action: str) -> list[dict[str, Any]]:
        return [body for name, body in self.callbacks if name == action]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    yield recv
    recv.server.stop()


def start_registry(**overrides: Any) -> MockServer:
    events = overrides.pop("events", EVENTS)
    overrides.setdefault("system_client_id", CLIENT_ID)
    overrides.setdefault("system_client_secret", CLIENT_SECRET)
    overrides.setdefault("system_sha_secret", SECRET)
    config = CivilRegistryConfig(start_date=START, retry=FAST_RETRY, **overrides)
    return MockServer(create_app(config, events=events)).start()


@pytest.fixture
def crvs() -> Iterator[MockServer]:
    srv = start_registry()
    yield srv
    srv.stop()


def advance(srv: MockServer, days: int) -> dict[str, Any]:
    answer = requests.post(srv.url + "/_admin/clock/advance", json={"days": days}, timeout=5)
    assert answer.status_code == 200
    return answer.json()


def token(srv: MockServer, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> str:
    """A system token, asked for as OpenCRVS's auth service wants it (query parameters)."""
    answer = requests.post(
        srv.url + "/auth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def subscribe(
    srv: MockServer,
    callback: str,
    topic: str,
    secret: str = SECRET,
    bearer: str | None = None,
    mode: str = "subscribe",
) -> requests.Response:
    return requests.post(
        srv.url + "/webhooks",
        json={"hub": {"callback": callback, "mode": mode, "topic": topic, "secret": secret}},
        headers={"Authorization": f"Bearer {bearer or token(srv)}"},
        timeout=10,
    )


def listed(srv: MockServer, bearer: str | None = None) -> list[dict[str, Any]]:
    answer = requests.get(
        srv.url + "/webhooks",
        headers={"Authorization": f"Bearer {bearer or token(srv)}"},
        timeout=5,
    )
    assert answer.status_code == 200
    return list(answer.json()["entries"])


def expected_signature(secret: str, body: bytes) -> str:
    """Independent of the mock: OpenCRVS's HMAC-SHA256 over "sha256:" + encodeURIComponent
    of the body (JavaScript's set of unescaped characters), hex, prefixed."""
    encoded = quote(body.decode("utf-8"), safe="-_.!~*'()")
    digest = hmac.new(secret.encode(), f"sha256:{encoded}".encode(), hashlib.sha256)
    return "sha256=" + digest.hexdigest()


# --- FHIR bundles ------------------------------------------------------------------------


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def identifier_codes(patient: dict[str, Any]) -> dict[str, str]:
    return {i["type"]["coding"][0]["code"]: i["value"] for i in patient["identifier"]}


def task_number(task: dict[str, Any]) -> str | None:
    """The registration number on a Task (beside its draft and tracking ids)."""
    return next(
        (i["value"] for i in task["identifier"] if i["system"].endswith("-registration-number")),
        None,
    )


def feed_all(srv: MockServer, limit: int = 2) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(1000):
        page = requests.get(
            srv.url + "/feed", params={"since": cursor, "limit": limit}, timeout=5
        ).json()
        entries.extend(page["entries"])
        cursor = page["next"]
        if not page["has_more"]:
            return entries
    raise AssertionError("feed never ended")


def test_feed_bundles_are_valid_opencrvs_documents(crvs: MockServer) -> None:
    assert feed_all(crvs) == []
    released = advance(crvs, 80)["released"]
    assert released == 4
    entries = feed_all(crvs)
    assert [e["registration_number"] for e in entries] == ["BR1", "DR1", "BR2", "DR2"]
    for entry in entries:
        bundle = entry["bundle"]
        Bundle.model_validate(bundle)  # strict R4B
        assert bundle["type"] == "document"
        composition = bundle["entry"][0]["resource"]
        assert composition["resourceType"] == "Composition"
        coding = composition["type"]["coding"][0]
        assert coding["system"] == "http://opencrvs.org/doc-types"
        assert coding["code"] == f"{entry['kind']}-declaration"
        task = resources(bundle, "Task")[0]
        assert task["businessStatus"]["coding"][0]["code"] == "REGISTERED"
        assert task_number(task) == entry["registration_number"]
        # Every section reference resolves to an entry of the bundle.
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        for section in composition["section"]:
            assert section["entry"][0]["reference"] in full_urls

    birth, death = entries[0]["bundle"], entries[1]["bundle"]
    sections = {
        s["code"]["coding"][0]["code"]: s["entry"][0]["reference"]
        for s in birth["entry"][0]["resource"]["section"]
    }
    assert {"child-details", "mother-details", "father-details", "informant-details"} <= set(
        sections
    )
    by_url = {e["fullUrl"]: e["resource"] for e in birth["entry"]}
    child, mother = by_url[sections["child-details"]], by_url[sections["mother-details"]]
    assert identifier_codes(child) == {"BIRTH_REGISTRATION_NUMBER": "BR1"}
    assert child["deceasedBoolean"] is False and child["birthDate"] == "2025-01-03"
    assert identifier_codes(mother)["NATIONAL_ID"] == "1111111111"
    death_sections = {
        s["code"]["coding"][0]["code"]: s["entry"][0]["reference"]
        for s in death["entry"][0]["resource"]["section"]
    }
    deceased = {e["fullUrl"]: e["resource"] for e in death["entry"]}[
        death_sections["deceased-details"]
    ]
    assert deceased["deceasedDateTime"].startswith("2025-01-04")
    assert identifier_codes(deceased) == {
        "DEATH_REGISTRATION_NUMBER": "DR1",
        "NATIONAL_ID": "3333333333",
        "BIRTH_REGISTRATION_NUMBER": "BR0",
    }


def test_generated_population_bundles_validate() -> None:
    """The default data source: a year of the synthetic country, every bundle strict FHIR."""
    srv = MockServer(create_app(CivilRegistryConfig(population_people=2000))).start()
    try:
        advance(srv, 366)
        entries = feed_all(srv, limit=500)
        status = requests.get(srv.url + "/_admin/status", timeout=5).json()["events"]
    finally:
        srv.stop()
    assert len(entries) == status["total"] > 10
    kinds = {e["kind"] for e in entries}
    assert kinds == {"birth", "death"}
    for entry in entries:
        Bundle.model_validate(entry["bundle"])
    dates = [e["registration_date"] for e in entries]
    assert dates == sorted(dates)


def test_messy_mode_emits_real_world_quirks() -> None:
    srv = start_registry(messy_rate=1.0)
    try:
        advance(srv, 80)
        entries = feed_all(srv)
    finally:
        srv.stop()
    assert len(entries) == 4
    for entry in entries:
        with pytest.raises(ValueError):
            Bundle.model_validate(entry["bundle"])
        text = json.dumps(entry["bundle"])
        event = next(e for e in EVENTS if e.registration_number == entry["registration_number"])
        bends = variant(build_bundle(event), seed=CivilRegistryConfig().population_seed)
        # The facts are still there: the registration number, or (provisional) the tracking id.
        assert (entry["registration_number"] in text) == ("provisional" not in bends)
        assert '"http://opencrvs.org/specs/id/' in text and "-tracking-id" in text
        assert '""' in text  # empty strings
        kinds = [e["resource"]["resourceType"] for e in entry["bundle"]["entry"]]
        assert ("Composition" in kinds) == ("scoped" not in bends)
        refs = re.findall(r'"reference": "([^"]+)"', text)
        assert any(r.startswith(("Patient/", "/fhir/Patient/")) for r in refs)


# --- pull feed ---------------------------------------------------------------------------


def test_feed_cursor_pages_without_gaps_or_repeats(crvs: MockServer) -> None:
    advance(crvs, 45)  # Feb 15: BR1 and DR1 registered; BR2 (Feb 20) not yet
    first = requests.get(crvs.url + "/feed", params={"limit": 1}, timeout=5).json()
    assert len(first["entries"]) == 1 and first["has_more"] is True
    rest = requests.get(crvs.url + "/feed", params={"since": first["next"]}, timeout=5).json()
    seen = [e["id"] for e in first["entries"] + rest["entries"]]
    assert len(seen) == len(set(seen)) == 2
    # Polling with the last cursor is safe while nothing new exists ...
    idle = requests.get(crvs.url + "/feed", params={"since": rest["next"]}, timeout=5).json()
    assert idle["entries"] == [] and idle["next"] == rest["next"]
    # ... and yields exactly the newly registered events later.
    advance(crvs, 60)
    new = requests.get(crvs.url + "/feed", params={"since": rest["next"]}, timeout=5).json()
    assert [e["registration_number"] for e in new["entries"]] == ["BR2", "DR2"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"since": "not-a-cursor"}, "bad_cursor"),
        ({"since": "Y3J2cy1mZWVkLXYxOjk5OQ"}, "bad_cursor"),  # our format, but past the end
        ({"limit": "0"}, "bad_limit"),
        ({"limit": "abc"}, "bad_limit"),
        ({"limit": "100000"}, "bad_limit"),
    ],
)
def test_feed_rejects_bad_parameters(crvs: MockServer, params: dict[str, str], code: str) -> None:
    response = requests.get(crvs.url + "/feed", params=params, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


# --- webhooks ----------------------------------------------------------------------------


def test_webhook_challenge_signed_delivery_and_topic_filter(
    crvs: MockServer, receiver: Receiver
) -> None:
    answer = subscribe(crvs, receiver.hook, "BIRTH_REGISTERED")
    # As OpenCRVS: the challenge is made *before* the answer, which is 202 with no body.
    assert answer.status_code == 202 and answer.content == b""
    assert len(receiver.verifications) == 1
    verification = receiver.verifications[0]
    assert verification["mode"] == "subscribe" and verification["topic"] == "BIRTH_REGISTERED"
    assert len(base64.b64decode(verification["challenge"], validate=True)) == 16
    (entry,) = listed(crvs)
    assert entry["callback"] == receiver.hook and entry["topic"] == "BIRTH_REGISTERED"
    assert entry["createdBy"]["client_id"] == CLIENT_ID and "secret" not in json.dumps(entry)

    result = advance(crvs, 15)  # BR1 and DR1 registered; only the birth goes to this topic
    assert result["released"] == 2 and result["webhooks_queued"] == 1
    wait_for(lambda: receiver.deliveries)
    time.sleep(0.2)  # a wrong second delivery would arrive by now
    assert len(receiver.deliveries) == 1
    headers, body = receiver.deliveries[0]
    assert headers["Content-Type"] == "application/json"
    assert hmac.compare_digest(headers["X-Hub-Signature"], expected_signature(SECRET, body))
    assert headers["X-Hub-Signature"] != expected_signature("other secret", body)
    # OpenCRVS's body: JSON.stringify({timestamp, id, event}) — compact, no wrapper.
    payload = json.loads(body)
    assert list(payload) == ["timestamp", "id", "event"]
    assert body == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", payload["timestamp"])
    assert payload["id"] == entry["id"]  # the subscription's id, not the event's
    assert payload["event"]["hub"] == {"topic": "BIRTH_REGISTERED"}
    (bundle,) = payload["event"]["context"]
    Bundle.model_validate(bundle)
    task = resources(bundle, "Task")[0]
    assert task_number(task) == "BR1"


def test_the_token_endpoint_speaks_client_credentials_as_opencrvs(crvs: MockServer) -> None:
    url = crvs.url + "/auth/token"
    good = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    answer = requests.post(url, params={**good, "client_secret": CLIENT_SECRET}, timeout=5)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.json()["token_type"] == "Bearer"
    claims = json.loads(
        base64.urlsafe_b64decode(answer.json()["access_token"].split(".")[1] + "==")
    )
    assert claims["iss"] == "opencrvs:auth-service" and "opencrvs:webhooks-user" in claims["aud"]
    assert claims["exp"] - claims["iat"] == 600
    cases = [
        ({**good, "client_secret": "wrong"}, None, 401, "invalid_client"),
        (good, None, 400, "invalid_request"),
        (
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            None,
            400,
            "unsupported_grant_type",
        ),
        (None, {**good, "client_secret": CLIENT_SECRET}, 400, "unsupported_grant_type"),  # form
    ]
    for params, form, status, code in cases:
        refused = requests.post(url, params=params, data=form, timeout=5)
        assert refused.status_code == status and refused.json()["error"] == code
        assert refused.headers["Cache-Control"] == "no-store"


def test_subscribing_needs_a_valid_token(crvs: MockServer, receiver: Receiver) -> None:
    hub = {"callback": receiver.hook, "mode": "subscribe", "topic": "BIRTH_REGISTERED"}
    none = requests.post(crvs.url + "/webhooks", json={"hub": {**hub, "secret": SECRET}}, timeout=5)
    assert none.status_code == 401 and none.json()["message"] == "Missing authentication"
    forged = subscribe(crvs, receiver.hook, "BIRTH_REGISTERED", bearer="e30.e30.c2ln")
    assert forged.status_code == 401 and forged.json()["message"] == "Invalid token"
    assert receiver.verifications == []


def test_expired_tokens_are_refused(receiver: Receiver) -> None:
    srv = start_registry(system_token_seconds=1)
    try:
        bearer = token(srv)
        time.sleep(2.1)
        late = subscribe(srv, receiver.hook, "BIRTH_REGISTERED", bearer=bearer)
        assert late.status_code == 401 and late.json()["message"] == "Invalid token"
    finally:
        srv.stop()


def test_failed_challenge_means_no_subscription(crvs: MockServer) -> None:
    liar = Receiver(wrong_challenge=True)
    try:
        answer = subscribe(crvs, liar.hook, "DEATH_REGISTERED")
        assert answer.status_code == 400 and answer.text == "Subscription callback check failed"
        assert len(liar.verifications) == 1  # OpenCRVS asks once, while the subscriber waits
        assert listed(crvs) == []
        assert advance(crvs, 80)["webhooks_queued"] == 0
    finally:
        liar.server.stop()
    assert liar.deliveries == []


def test_an_error_answer_is_final_and_an_unreachable_subscriber_is_tried_three_times(
    crvs: MockServer,
) -> None:
    failing = Receiver(always_fail=True)
    gone = Receiver()
    try:
        assert subscribe(crvs, failing.hook, "DEATH_REGISTERED").status_code == 202
        assert subscribe(crvs, gone.hook, "DEATH_REGISTERED").status_code == 202
        gone.server.stop()  # subscribed, then it went away
        advance(crvs, 15)

        def finished() -> dict[str, Any] | None:
            snap = requests.get(crvs.url + "/_admin/deliveries", timeout=5).json()
            return snap if snap["summary"]["failed"] == 2 else None

        snapshot = wait_for(finished)
        time.sleep(0.3)
    finally:
        failing.server.stop()
    attempts = [a for a in snapshot["attempts"] if a["kind"] == "webhook"]
    answered = [a for a in attempts if a["url"] == failing.hook]
    unreachable = [a for a in attempts if a["url"] == gone.hook]
    # node-fetch resolves on any HTTP answer: OpenCRVS's queue retries only network failures,
    # three attempts in all.
    assert [(a["attempt"], a["status_code"]) for a in answered] == [(1, 500)]
    assert failing.posts_seen == 1
    assert [a["attempt"] for a in unreachable] == [1, 2, 3]
    assert all(a["status_code"] is None and a["error"] for a in unreachable)
    # The secrets never show in what the registry exposes.
    exposed = json.dumps(snapshot) + requests.get(crvs.url + "/_admin/status", timeout=5).text
    assert SECRET not in exposed and CLIENT_SECRET not in exposed


def test_every_subscribe_adds_a_subscription_and_each_delivers(
    crvs: MockServer, receiver: Receiver
) -> None:
    assert subscribe(crvs, receiver.hook, "DEATH_REGISTERED").status_code == 202
    assert subscribe(crvs, receiver.hook, "DEATH_REGISTERED").status_code == 202
    entries = listed(crvs)
    assert len(entries) == 2 and entries[0]["id"] != entries[1]["id"]
    advance(crvs, 15)
    wait_for(lambda: len(receiver.deliveries) == 2)
    bodies = [json.loads(body) for _, body in receiver.deliveries]
    assert {b["id"] for b in bodies} == {e["id"] for e in entries}
    assert bodies[0]["event"]["context"] == bodies[1]["event"]["context"]
    deleted = requests.delete(
        f"{crvs.url}/webhooks/{entries[0]['id']}",
        headers={"Authorization": f"Bearer {token(crvs)}"},
        timeout=5,
    )
    assert deleted.status_code == 204 and len(listed(crvs)) == 1


def test_a_webhook_client_gets_only_its_permitted_sections(receiver: Receiver) -> None:
    srv = start_registry()
    try:
        registered = requests.post(
            srv.url + "/_admin/systems",
            json={
                "name": "Welfare MIS",
                "type": "WEBHOOK",
                "settings": {"webhook": [{"event": "birth", "permissions": ["mother-details"]}]},
            },
            timeout=5,
        )
        assert registered.status_code == 201
        system = registered.json()["system"]
        bearer = token(srv, system["clientId"], registered.json()["clientSecret"])
        answer = subscribe(
            srv, receiver.hook, "BIRTH_REGISTERED", secret=system["shaSecret"], bearer=bearer
        )
        assert answer.status_code == 202
        advance(srv, 15)
        wait_for(lambda: receiver.deliveries)
    finally:
        srv.stop()
    headers, body = receiver.deliveries[0]
    assert headers["X-Hub-Signature"] == expected_signature(system["shaSecret"], body)
    (bundle,) = json.loads(body)["event"]["context"]
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    # OpenCRVS's getPermissionsBundle: the permitted sections' resources and the Task only.
    assert kinds == ["Patient", "Task"]
    assert resources(bundle, "Patient")[0]["name"][0]["given"] == ["Ada"]


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"hub": None}, 400, "Invalid request payload input"),
        (
            {"hub": {"callback": 5, "topic": "BIRTH_REGISTERED"}},
            400,
            "Invalid request payload input",
        ),
        (
            {"hub": {"callback": "http://127.0.0.1:9/x", "extra": "y"}},
            400,
            "Invalid request payload input",
        ),
        ({}, 500, "An internal server error occurred"),
        (
            {
                "hub": {
                    "callback": "http://127.0.0.1:9/x",
                    "mode": "unsubscribe",
                    "topic": "BIRTH_REGISTERED",
                    "secret": SECRET,
                }
            },
            400,
            {
                "mode": "denied",
                "topic": "BIRTH_REGISTERED",
                "reason": "hub.mode must be set to subscribe",
            },
        ),
        (
            {
                "hub": {
                    "callback": "http://127.0.0.1:9/x",
                    "mode": "subscribe",
                    "topic": "MARRIAGE",
                    "secret": SECRET,
                }
            },
            400,
            {"mode": "denied", "topic": "MARRIAGE", "reason": "Unsupported topic: MARRIAGE"},
        ),
        (
            {
                "hub": {
                    "callback": "http://127.0.0.1:9/x",
                    "mode": "subscribe",
                    "topic": "BIRTH_REGISTERED",
                }
            },
            400,
            {"mode": "denied", "topic": "BIRTH_REGISTERED", "reason": "hub.secret is incorrect"},
        ),
        (
            {
                "hub": {
                    "callback": "file:///etc/passwd",
                    "mode": "subscribe",
                    "topic": "BIRTH_REGISTERED",
                    "secret": SECRET,
                }
            },
            400,
            "Subscription callback check failed",
        ),
    ],
)
def test_webhook_subscription_refusals_are_opencrvs_s(
    crvs: MockServer, body: Any, status: int, expected: Any
) -> None:
    bearer = token(crvs)
    response = requests.post(
        crvs.url + "/webhooks",
        json=body,
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=5,
    )
    assert response.status_code == status
    if isinstance(expected, dict):
        assert response.json() == {"hub": expected}
    elif status == 500 or expected.startswith("Invalid request"):
        assert response.json()["message"] == expected
    else:
        assert response.text == expected
    assert listed(crvs, bearer) == []


# --- DCI ---------------------------------------------------------------------------------


def envelope(
    action: str, message: dict[str, Any], sender_uri: str | None = None, **header: Any
) -> dict[str, Any]:
    head: dict[str, Any] = {
        "version": "1.0.0",
        "message_id": str(uuid.uuid4()),
        "message_ts": datetime.now(UTC).isoformat(),
        "action": action,
        "sender_id": "social-registry",
        "receiver_id": "civil-registry",
        "total_count": 1,
        "is_msg_encrypted": False,
    }
    if sender_uri:
        head["sender_uri"] = sender_uri
    head.update(header)
    return {"signature": "", "header": head, "message": message}


def search_message(*criteria: dict[str, Any]) -> dict[str, Any]:
    return {
        "transaction_id": str(uuid.uuid4()),
        "search_request": [
            {
                "reference_id": f"ref-{i}",
                "timestamp": datetime.now(UTC).isoformat(),
                "search_criteria": {
                    "version": "1.0.0",
                    "reg_type": "ns:org:RegistryType:Civil",
                    **c,
                },
                "locale": "eng",
            }
            for i, c in enumerate(criteria)
        ],
    }


LIVE_BIRTH = "spdci-common:RegistryEventType:LiveBirth"
DEATH = "spdci-common:RegistryEventType:Death"
SINCE_2025 = [
    {
        "seq_num": 1,
        "expression1": {
            "attribute_name": "registration_date",
            "operator": "ge",
            "attribute_value": "2025-01-01",
        },
    }
]


def subscribe_item(reference: str, event_type: str, **criteria: Any) -> dict[str, Any]:
    """One subscribe_request item as the CRVS API requires it (filter, notify_record_type)."""
    return {
        "reference_id": reference,
        "timestamp": datetime.now(UTC).isoformat(),
        "subscribe_criteria": {
            "reg_type": "ns:org:RegistryType:Civil",
            "reg_event_type": event_type,
            "filter_type": "predicate",
            "filter": SINCE_2025,
            "notify_record_type": "spdci-extensions-dci:Person",
            **criteria,
        },
        "locale": "eng",
    }


def sync_search(srv: MockServer, *criteria: dict[str, Any]) -> list[dict[str, Any]]:
    response = requests.post(
        srv.url + "/registry/sync/search",
        json=envelope("search", search_message(*criteria)),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["header"]["action"] == "on-search"
    return list(body["message"]["search_response"])


def identifiers(record: dict[str, Any]) -> dict[str, str]:
    """identifier_type -> value; ``identifier`` is one object or a list of them (JSON-LD)."""
    found = record["identifier"]
    items = found if isinstance(found, list) else [found]
    return {i["identifier_type"]: i["identifier_value"] for i in items}


def record_ids(item: dict[str, Any]) -> list[str]:
    """The registration numbers (the BRN of a birth, the DRN of a death) of the records."""
    numbers = []
    found = item["data"]["reg_records"]  # a list in a search answer, one object in a notify
    for record in found if isinstance(found, list) else [found]:
        ids = identifiers(record)
        numbers.append(ids["DRN"] if record["reg_event_type"] == DEATH else ids["BRN"])
    return numbers


def test_dci_sync_search_by_identifier(crvs: MockServer) -> None:
    by_brn = {"query_type": "idtype-value", "query": {"type": "BRN", "value": "BR2"}}
    assert sync_search(crvs, by_brn)[0]["data"]["reg_records"] == []  # not registered yet
    advance(crvs, 80)
    results = sync_search(
        crvs,
        by_brn,
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "3333333333"}},
        {
            "query_type": "idtype-value",
            "query": {"type": "DRN", "value": "DR2"},
            "reg_event_type": DEATH,  # the spec's vocabulary
        },
        {
            "query_type": "idtype-value",
            "query": {"type": "DRN", "value": "DR2"},
            "reg_event_type": "live_birth",  # the registry core's code
        },
    )
    assert [r["status"] for r in results] == ["succ"] * 4
    assert all(r["locale"] == "eng" for r in results)
    assert record_ids(results[0]) == ["BR2"]
    assert record_ids(results[1]) == ["DR1"]
    assert record_ids(results[2]) == ["DR2"] and results[2]["data"]["reg_event_type"] == DEATH
    assert record_ids(results[3]) == []
    assert results[0]["data"]["reg_record_type"] == "spdci-extensions-dci:Person"
    birth = results[0]["data"]["reg_records"][0]
    assert birth["parent1_identifier"] == {
        "@type": "Identifier",
        "identifier_type": "UIN",
        "identifier_value": "1111111111",
    }
    assert "parent2_identifier" not in birth  # father unknown
    # As in the spec's example person: one identifier is an object, blanks mean unknown.
    assert birth["identifier"]["identifier_value"] == "BR2"
    assert (birth["birth_place"], birth["death_date"], birth["death_place"]) == ("", "", "")
    death = results[1]["data"]["reg_records"][0]
    assert identifiers(death) == {"DRN": "DR1", "UIN": "3333333333", "BRN": "BR0"}
    assert death["death_date"].startswith("2025-01-04")
    assert death["death_place"] == "R01-D02-L003"  # a place given as text
    first_birth = sync_search(
        crvs, {"query_type": "idtype-value", "query": {"type": "BRN", "value": "BR1"}}
    )[0]["data"]["reg_records"][0]
    assert first_birth["birth_place"]["contained_in_place"] == "R01-D01-L001"  # as an object


def test_dci_sync_search_by_date_predicates(crvs: MockServer) -> None:
    advance(crvs, 80)
    window = [
        {
            "seq_num": 1,
            "expression1": {
                "attribute_name": "registration_date",
                "operator": "ge",
                "attribute_value": "2025-01-11",
            },
            "condition": "and",
            "expression2": {
                "attribute_name": "registration_date",
                "operator": "le",
                "attribute_value": "2025-02-28T23:59:59Z",
            },
        },
    ]
    births_2025 = [
        {"attribute_name": "birth_date", "operator": "ge", "attribute_value": "2025-01-01"}
    ]
    results = sync_search(
        crvs,
        {"query_type": "predicate", "query": window},
        {"query_type": "expression", "query": {"expression": window}},  # the mixed-up form
        {
            "query_type": "predicate",
            "query": births_2025,
            "reg_event_type": "live_birth",
            "sort": [{"attribute_name": "birth_date", "sort_order": "desc"}],
        },
        {
            "query_type": "predicate",
            "query": births_2025,
            "pagination": {"page_size": 1, "page_number": 2},
            "sort": [{"attribute_name": "birth_date", "sort_order": "asc"}],
        },
    )
    assert record_ids(results[0]) == ["DR1", "BR2"]
    assert record_ids(results[1]) == ["DR1", "BR2"]
    assert "reg_event_type" not in results[0]["data"]  # mixed: each record says its own
    assert record_ids(results[2]) == ["BR2", "BR1"]
    assert record_ids(results[3]) == ["BR2"]
    assert results[3]["pagination"] == {"page_size": 1, "page_number": 2, "total_count": 2}


@pytest.mark.parametrize(
    ("criteria", "reason"),
    [
        (
            {
                "query_type": "predicate",
                "query": [
                    {"attribute_name": "shoe_size", "operator": "eq", "attribute_value": "9"}
                ],
            },
            "rjct.search_criteria.invalid",
        ),
        (
            {
                "query_type": "predicate",
                "query": [
                    {"attribute_name": "birth_date", "operator": "eq", "attribute_value": "May"}
                ],
            },
            "rjct.search_criteria.invalid",
        ),
        (
            {"query_type": "idtype-value", "query": {"type": "PASSPORT", "value": "1"}},
            "rjct.search_criteria.invalid",
        ),
        ({"query_type": "sql", "query": "select *"}, "rjct.search_criteria.invalid"),
        (
            {
                "query_type": "idtype-value",
                "query": {"type": "UIN", "value": "1"},
                "reg_event_type": "marriage",
            },
            "rjct.search_criteria.invalid",
        ),
        (
            {
                "query_type": "idtype-value",
                "query": {"type": "UIN", "value": "1"},
                "pagination": {"page_size": 0},
            },
            "rjct.pagination.invalid",
        ),
        (
            {
                "query_type": "idtype-value",
                "query": {"type": "UIN", "value": "1"},
                "sort": [{"attribute_name": "x"}],
            },
            "rjct.sort.invalid",
        ),
    ],
)
def test_dci_bad_search_item_is_rejected_alone(
    crvs: MockServer, criteria: dict[str, Any], reason: str
) -> None:
    good = {"query_type": "idtype-value", "query": {"type": "BRN", "value": "BR1"}}
    advance(crvs, 15)
    results = sync_search(crvs, good, criteria)
    assert results[0]["status"] == "succ" and record_ids(results[0]) == ["BR1"]
    assert results[1]["status"] == "rjct"
    assert results[1]["status_reason_code"] == reason
    assert results[1]["status_reason_message"]


def post_raw(srv: MockServer, path: str, data: Any, **kwargs: Any) -> requests.Response:
    if isinstance(data, bytes | str):
        return requests.post(
            srv.url + path,
            data=data,
            headers={"Content-Type": "application/json"},
            timeout=5,
            **kwargs,
        )
    return requests.post(srv.url + path, json=data, timeout=5, **kwargs)


def dci_error(response: requests.Response) -> tuple[str, str | None]:
    body = response.json()
    assert body["message"]["ack_status"] == "ERR"
    assert body["message"]["error"]["message"]
    return body["message"]["error"]["code"], body["header"].get("status_reason_code")


def test_dci_envelope_errors_use_spec_codes(crvs: MockServer) -> None:
    message = search_message({"query_type": "idtype-value", "query": {"type": "UIN", "value": "1"}})
    cases: list[tuple[Any, str, str | None]] = [
        (b"{not json", "err.request.bad", None),
        ({"header": {}}, "err.request.bad", None),
        (
            {k: v for k, v in envelope("search", message).items() if k != "header"},
            "err.request.bad",
            None,
        ),
        (
            envelope("search", message, version="9.9.9"),
            "err.version.not_supported",
            "rjct.version.invalid",
        ),
        (envelope("subscribe", message), "err.request.bad", "rjct.action.invalid"),
        (
            envelope("search", message, message_ts="yesterday"),
            "err.request.bad",
            "rjct.message_ts.invalid",
        ),
        (
            envelope("search", message, total_count="one"),
            "err.request.bad",
            "rjct.total_count.invalid",
        ),
        (envelope("search", message, is_msg_encrypted=True), "err.encryption.invalid", None),
        (
            envelope("search", {"transaction_id": "t", "search_request": []}),
            "err.request.bad",
            None,
        ),
    ]
    missing_ts = envelope("search", message)
    del missing_ts["header"]["message_ts"]
    cases.append((missing_ts, "err.request.bad", "rjct.message_ts.invalid"))
    for body, code, reason in cases:
        response = post_raw(crvs, "/registry/sync/search", body)
        assert response.status_code == 400, (body, response.text)
        assert dci_error(response) == (code, reason) or (
            reason is None and dci_error(response)[0] == code
        ), (body, response.text)


def test_dci_duplicate_message_id_is_refused(crvs: MockServer) -> None:
    body = envelope(
        "search",
        search_message({"query_type": "idtype-value", "query": {"type": "UIN", "value": "1"}}),
    )
    assert post_raw(crvs, "/registry/sync/search", body).status_code == 200
    again = post_raw(crvs, "/registry/sync/search", body)
    assert again.status_code == 400
    assert dci_error(again) == ("err.request.bad", "rjct.message_id.duplicate")


@pytest.mark.parametrize(
    "path",
    ["/registry/sync/search", "/registry/search", "/registry/subscribe", "/registry/unsubscribe"],
)
@pytest.mark.parametrize(
    "junk",
    [
        b"[]",
        b'"text"',
        b"null",
        b"\xff\xfe",
        b'{"header": 5}',
        b'{"header": {"message_id": 1}, "message": []}',
    ],
)
def test_dci_never_answers_500(crvs: MockServer, path: str, junk: bytes) -> None:
    response = post_raw(crvs, path, junk)
    assert 400 <= response.status_code < 500
    assert dci_error(response)[0] == "err.request.bad"


def test_dci_async_requires_sender_uri(crvs: MockServer) -> None:
    message = search_message({"query_type": "idtype-value", "query": {"type": "UIN", "value": "1"}})
    body = envelope("search", message)
    response = post_raw(crvs, "/registry/search", body)
    assert response.status_code == 400
    assert dci_error(response)[0] == "err.sender_uri.invalid"
    # The same message, fixed, is not refused as a replay.
    body["header"]["sender_uri"] = "http://127.0.0.1:9"
    assert post_raw(crvs, "/registry/search", body).json()["message"]["ack_status"] == "ACK"


def test_dci_refuses_what_the_spec_file_does_not_allow(crvs: MockServer) -> None:
    """The clients' usual departures from the CRVS API file are refused, not taken in."""
    query = {"query_type": "idtype-value", "query": {"type": "UIN", "value": "1"}}
    two_letters = search_message(query)
    two_letters["search_request"][0]["locale"] = "en"
    answer = post_raw(crvs, "/registry/sync/search", envelope("search", two_letters))
    assert answer.status_code == 400 and dci_error(answer)[0] == "err.request.bad"
    assert "locale" in answer.json()["message"]["error"]["message"]
    null_signature = {**envelope("search", search_message(query)), "signature": None}
    answer = post_raw(crvs, "/registry/sync/search", null_signature)
    assert dci_error(answer)[0] == "err.signature.invalid"
    for missing in ("filter", "notify_record_type"):
        item = subscribe_item("r1", LIVE_BIRTH)
        del item["subscribe_criteria"][missing]
        message = {"transaction_id": "t-" + missing, "subscribe_request": [item]}
        answer = post_raw(
            crvs,
            "/registry/subscribe",
            envelope("subscribe", message, sender_uri="http://127.0.0.1:9/on-subscribe"),
        )
        assert answer.status_code == 400
        assert missing in answer.json()["message"]["error"]["message"]


def test_dci_bearer_token_when_configured() -> None:
    srv = start_registry(dci_bearer_token="tok-123")
    try:
        body = envelope(
            "search",
            search_message({"query_type": "idtype-value", "query": {"type": "UIN", "value": "1"}}),
        )
        denied = post_raw(srv, "/registry/sync/search", body)
        assert denied.status_code == 401
        assert dci_error(denied)[0] == "err.request.unauthorized"
        ok = post_raw(
            srv, "/registry/sync/search", body, headers={"Authorization": "Bearer tok-123"}
        )
        assert ok.status_code == 200
    finally:
        srv.stop()


def test_dci_async_search_acks_then_calls_back(crvs: MockServer, receiver: Receiver) -> None:
    advance(crvs, 15)
    message = search_message(
        {"query_type": "idtype-value", "query": {"type": "BRN", "value": "BR1"}}
    )
    response = post_raw(
        crvs,
        "/registry/search",
        envelope("search", message, sender_uri=receiver.dci("on-search")),
    )
    ack = response.json()["message"]
    assert response.status_code == 200 and ack["ack_status"] == "ACK"
    callback = wait_for(lambda: receiver.of("on-search"))[0]
    assert receiver.callback_paths == [("on-search", "/registry/on-search")]  # as given
    assert callback["header"]["action"] == "on-search"
    assert callback["header"]["status"] == "succ"
    assert callback["header"]["receiver_id"] == "social-registry"
    assert callback["message"]["correlation_id"] == ack["correlation_id"]
    assert callback["message"]["transaction_id"] == message["transaction_id"]
    assert record_ids(callback["message"]["search_response"][0]) == ["BR1"]


def test_dci_subscribe_notify_unsubscribe(crvs: MockServer, receiver: Receiver) -> None:
    callback = receiver.dci("on-subscribe")  # the full URL, called as given
    subscribe_message = {
        "transaction_id": "txn-sub-1",
        "subscribe_request": [
            subscribe_item("r1", DEATH),
            subscribe_item("r2", "spdci-common:RegistryEventType:Marriage"),
        ],
    }
    ack = post_raw(
        crvs,
        "/registry/subscribe",
        envelope("subscribe", subscribe_message, sender_uri=callback),
    )
    assert ack.json()["message"]["ack_status"] == "ACK"
    on_subscribe = wait_for(lambda: receiver.of("on-subscribe"))[0]
    assert on_subscribe["header"]["status"] == "succ"
    assert on_subscribe["header"]["completed_count"] == 1
    first, second = on_subscribe["message"]["subscribe_response"]
    code = first["subscriptions"][0]["code"]
    assert first["status"] == "succ" and second["status"] == "rjct"
    assert first["subscriptions"][0]["reg_event_type"] == DEATH
    assert second["status_reason_code"] == "rjct.notify_types.invalid"

    again = post_raw(
        crvs,
        "/registry/subscribe",
        envelope(
            "subscribe",
            {**subscribe_message, "subscribe_request": subscribe_message["subscribe_request"][:1]},
            sender_uri=callback,
        ),
    )
    assert again.status_code == 200
    dup = wait_for(lambda: receiver.of("on-subscribe")[1:])[0]
    assert dup["header"]["status"] == "rjct"
    assert dup["message"]["subscribe_response"][0]["status_reason_code"] == (
        "rjct.event.already_subscribed"
    )

    advance(crvs, 15)  # BR1 and DR1: only the death is notified
    notify = wait_for(lambda: receiver.of("notify"))[0]
    assert notify["header"]["action"] == "notify"
    assert ("notify", "/registry/on-subscribe") in receiver.callback_paths
    events = notify["message"]["notify_event"]
    assert len(events) == 1
    assert events[0]["data"]["reg_event_type"] == DEATH
    assert events[0]["locale"] == "eng"
    assert identifiers(events[0]["data"]["reg_records"])["DRN"] == "DR1"

    unsub = {
        "transaction_id": "txn-unsub",
        "timestamp": datetime.now(UTC).isoformat(),
        "subscription_codes": [code, "no-such-code"],
    }
    post_raw(
        crvs,
        "/registry/unsubscribe",
        envelope("unsubscribe", unsub, sender_uri=receiver.dci("on-unsubscribe")),
    )
    on_unsub = wait_for(lambda: receiver.of("on-unsubscribe"))[0]
    assert on_unsub["message"]["subscription_status"] == [{"code": code, "status": "unsubscribe"}]
    assert on_unsub["message"]["status_reason_code"] == "rjct.subscription_code.invalid"
    assert "no-such-code" in on_unsub["message"]["status_reason_message"]

    advance(crvs, 80)  # DR2 registered after unsubscribing: no second notify
    time.sleep(0.3)
    assert len(receiver.of("notify")) == 1


def test_dci_answers_and_callbacks_follow_the_crvs_api_file(
    crvs: MockServer, receiver: Receiver
) -> None:
    """Every body the mock's DCI side sends, checked against the spec's own schemas."""
    from standards.dci import openapi

    spec = "crvs_api_v1.0.0.yaml"
    if not openapi.available() or not (openapi.spec_dir() / spec).is_file():  # type: ignore[operator]
        pytest.skip(openapi.SKIP_REASON + f" (and {spec})")
    subscribe = {
        "transaction_id": "t-spec",
        "subscribe_request": [
            subscribe_item("r1", LIVE_BIRTH),
            subscribe_item("r2", DEATH),
            subscribe_item("r3", "spdci-common:RegistryEventType:Adoption"),
        ],
    }
    acks = [
        post_raw(
            crvs,
            "/registry/subscribe",
            envelope("subscribe", subscribe, sender_uri=receiver.dci("on-subscribe")),
        ),
    ]
    on_subscribe = wait_for(lambda: receiver.of("on-subscribe"))[0]
    advance(crvs, 80)
    query = {"query_type": "idtype-value", "query": {"type": "BRN", "value": "BR1"}}
    mixed = {"query_type": "predicate", "query": SINCE_2025}
    acks.append(
        post_raw(
            crvs,
            "/registry/search",
            envelope("search", search_message(query, mixed), sender_uri=receiver.dci("on-search")),
        )
    )
    codes = [s["code"] for s in on_subscribe["message"]["subscribe_response"][0]["subscriptions"]]
    acks.append(
        post_raw(
            crvs,
            "/registry/unsubscribe",
            envelope(
                "unsubscribe",
                {
                    "transaction_id": "t-u",
                    "timestamp": datetime.now(UTC).isoformat(),
                    "subscription_codes": [*codes, "unknown"],
                },
                sender_uri=receiver.dci("on-unsubscribe"),
            ),
        )
    )
    sync = post_raw(crvs, "/registry/sync/search", envelope("search", search_message(mixed)))
    wait_for(
        lambda: receiver.of("notify") and receiver.of("on-search") and receiver.of("on-unsubscribe")
    )
    problems = {
        "sync/search": openapi.problems(
            sync.json(), openapi.sync_response_pointer("/registry/sync/search"), spec
        ),
        **{
            f"ack {n}": openapi.problems(a.json(), openapi.ACK_POINTER, spec)
            for n, a in enumerate(acks)
        },
        **{
            f"{action} {n}": openapi.problems(
                body, openapi.request_pointer(f"/registry/{action}"), spec
            )
            for n, (action, body) in enumerate(receiver.callbacks)
        },
    }
    assert {k: v for k, v in problems.items() if v} == {}
    assert len(problems) == 3 + 1 + len(receiver.callbacks) and len(receiver.callbacks) >= 4


def test_dci_subscribe_filter_narrows_the_notifications(
    crvs: MockServer, receiver: Receiver
) -> None:
    later = [
        {
            "seq_num": 1,
            "expression1": {
                "attribute_name": "registration_date",
                "operator": "ge",
                "attribute_value": "2025-02-01",
            },
        }
    ]
    message = {
        "transaction_id": "txn-filter",
        "subscribe_request": [
            subscribe_item("since-feb", LIVE_BIRTH, filter=later),
            subscribe_item(
                "one-person",
                DEATH,
                filter_type="idtype-value",
                filter={"type": "UIN", "value": "4444444444"},
            ),
        ],
    }
    post_raw(
        crvs,
        "/registry/subscribe",
        envelope("subscribe", message, sender_uri=receiver.dci("on-subscribe")),
    )
    wait_for(lambda: receiver.of("on-subscribe"))
    advance(crvs, 80)  # all four: BR1 (Jan), DR1 (Jan, another person), BR2 (Feb), DR2 (UIN 4444)
    wait_for(lambda: len(receiver.of("notify")) >= 2)
    time.sleep(0.3)
    notified = sorted(
        record_ids(event)[0]
        for body in receiver.of("notify")
        for event in body["message"]["notify_event"]
    )
    assert notified == ["BR2", "DR2"]


# --- clock and faults --------------------------------------------------------------------


def test_running_clock_releases_events_without_admin_calls() -> None:
    srv = start_registry(rate_days_per_second=100.0, tick_interval_s=0.05)
    try:
        entries = wait_for(lambda: len(feed_all(srv)) == 4 and feed_all(srv), timeout=5)
    finally:
        srv.stop()
    assert [e["registration_number"] for e in entries] == ["BR1", "DR1", "BR2", "DR2"]


def test_faults_on_the_registry_speak_its_formats(crvs: MockServer) -> None:
    body = envelope(
        "search",
        search_message({"query_type": "idtype-value", "query": {"type": "UIN", "value": "1"}}),
    )
    faulted = post_raw(crvs, "/registry/sync/search", body, headers={"X-Mock-Fault": "error"})
    assert faulted.status_code == 503
    assert dci_error(faulted)[0] == "err.service.unavailable"
    requests.put(crvs.url + "/_admin/faults", json={"down": True}, timeout=5)
    assert requests.get(crvs.url + "/feed", timeout=5).status_code == 503
    assert requests.delete(crvs.url + "/_admin/faults", timeout=5).status_code == 200
    assert requests.get(crvs.url + "/feed", timeout=5).status_code == 200
    slow = time.monotonic()
    requests.get(crvs.url + "/feed", headers={"X-Mock-Latency-Ms": "200"}, timeout=5)
    assert time.monotonic() - slow >= 0.2
    broken = requests.get(crvs.url + "/feed", headers={"X-Mock-Fault": "malformed"}, timeout=5)
    with pytest.raises(ValueError):
        broken.json()


def test_noise_gives_the_registry_its_own_stable_copy() -> None:
    def names_and_numbers() -> list[tuple[str, str]]:
        srv = start_registry(noise_rate=1.0)
        try:
            advance(srv, 80)
            body = envelope(
                "search",
                search_message(
                    {
                        "query_type": "predicate",
                        "query": [
                            {
                                "attribute_name": "registration_date",
                                "operator": "ge",
                                "attribute_value": "2025-01-01",
                            }
                        ],
                    }
                ),
            )
            item = post_raw(srv, "/registry/sync/search", body).json()["message"][
                "search_response"
            ][0]
        finally:
            srv.stop()
        return [
            (
                number,
                f"{r['name']['given_name']} {r['name']['surname']} {r['sex']} {r['birth_date']}",
            )
            for number, r in zip(record_ids(item), item["data"]["reg_records"], strict=True)
        ]

    first, second = names_and_numbers(), names_and_numbers()
    assert first == second  # the same wrong record on every run
    truth = {
        e.registration_number: f"{e.person.given_name} {e.person.family_name} "
        f"{e.person.sex} {e.person.birth_date.isoformat()}"
        for e in EVENTS
    }
    assert [number for number, _ in first] == ["BR1", "DR1", "BR2", "DR2"]  # keys stay exact
    assert any(shown != truth[number] for number, shown in first)


def test_http_errors_are_json_never_html(crvs: MockServer) -> None:
    missing = requests.get(crvs.url + "/no/such/page", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = requests.get(crvs.url + "/registry/sync/search", timeout=5)
    assert wrong_method.status_code == 405
    assert dci_error(wrong_method)[0] == "err.request.bad"
    huge = b'{"header": {}, "message": {"x": "' + b"a" * (3 * 1024 * 1024) + b'"}}'
    too_big = post_raw(crvs, "/registry/sync/search", huge)
    assert too_big.status_code == 413
    assert dci_error(too_big)[0] == "err.request.bad"
