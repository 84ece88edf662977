"""The civil-registry connector's DCI client, on its own: what it sends (checked against the
CRVS API file when ``SRHUB_DCI_SPEC_DIR`` has it), its signatures, the spec's event-type
vocabulary and places, and how an unconfirmed subscription shows in the connector status.

The registry is a stub HTTP client that records what is posted and answers what the test
says: a unit test of one client, so no server is needed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.base import ConnectorStatus, FakeClock
from connectors.civil_registry import dci_messages as msgs
from connectors.civil_registry.dci_client import DciClient, DciRefused
from connectors.civil_registry.dci_subscriptions import DciSubscriptions
from mappings.engine import map_record
from standards.dci import openapi
from standards.dci.envelope import callback_header
from standards.dci.signature import SignatureError, sign_envelope, verify_envelope

CRVS = "crvs_api_v1.0.0.yaml"
LIVE_BIRTH = "spdci-common:RegistryEventType:LiveBirth"
DEATH = "spdci-common:RegistryEventType:Death"


@dataclass(frozen=True)
class Key:
    private_key: Ed25519PrivateKey
    key_id: str


class StubRegistry:
    """Stands in for ``PartnerHttpClient`` (and its caller: one attempt, no retry): records
    each POST, answers from ``answers``."""

    partner = "civil_registry"

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.caller = self

    def call(self, attempt: Any, *, operation: str, deadline: Any = None) -> Any:
        return attempt(5.0)

    def url(self, path: str) -> str:
        return path

    def send_once(self, method: str, url: str, *, json: dict[str, Any], **_: Any) -> Any:
        self.posted.append((url, copy.deepcopy(json)))
        return self.answers.pop(0)

    def json_of(self, response: Any, operation: str) -> Any:
        return response


ACK = {
    "message": {"ack_status": "ACK", "timestamp": "2026-01-01T00:00:00Z", "correlation_id": "c1"}
}


def on_search(records: list[dict[str, Any]], key: Key | None = None, **header: Any) -> dict:
    head = callback_header(
        "on-search",
        sender_id="civil-registry",
        receiver_id="hub.example.org",
        status="succ",
        total_count=1,
        completed_count=1,
    )
    head.update(header)
    message = {
        "transaction_id": "t",
        "correlation_id": "c",
        "search_response": [
            {
                "reference_id": "r",
                "timestamp": "2026-01-01T00:00:00Z",
                "status": "succ",
                "data": {"reg_event_type": LIVE_BIRTH, "reg_records": records},
            }
        ],
    }
    body: dict[str, Any] = {"header": head, "message": message}
    if key is not None:
        body["signature"] = sign_envelope(
            head, message, key.private_key, sender_id="civil-registry", key_id=key.key_id
        )
    return body


def client(stub: StubRegistry, **kwargs: Any) -> DciClient:
    return DciClient(
        stub,  # type: ignore[arg-type]
        sender_id="hub.example.org",
        receiver_id="civil-registry",
        clock=FakeClock(),
        **kwargs,
    )


def crvs_spec_problems(path: str, body: dict[str, Any]) -> list[Any]:
    if not openapi.available() or not (openapi.spec_dir() / CRVS).is_file():  # type: ignore[operator]
        pytest.skip(openapi.SKIP_REASON + f" (and {CRVS})")
    return openapi.problems(body, openapi.request_pointer(path), CRVS)


# --- what we send -----------------------------------------------------------------------


def test_every_request_follows_the_crvs_api_file_and_is_signed_with_our_sender_id() -> None:
    hub_key = Key(Ed25519PrivateKey.generate(), "hub-k1")
    stub = StubRegistry(on_search([]), ACK, ACK, ACK)
    dci = client(stub, signing_key=hub_key)
    dci.search([msgs.id_criteria("BRN", "B-1", LIVE_BIRTH)])
    dci.search_async(
        [msgs.date_criteria("registration_date", since=date(2025, 1, 1), page_size=50)],
        sender_uri="https://hub.example.org/connectors/civil_registry/dci/tok/on-search",
    )
    dci.subscribe(
        [LIVE_BIRTH, DEATH],
        sender_uri="https://hub.example.org/connectors/civil_registry/dci/tok/on-subscribe",
        filter=msgs.registered_since(date(2026, 1, 1)),
    )
    dci.unsubscribe(
        ["sub-1"], sender_uri="https://hub.example.org/connectors/civil_registry/dci/tok/x"
    )
    paths = [path for path, _ in stub.posted]
    assert paths == ["sync/search", "search", "subscribe", "unsubscribe"]
    for path, body in stub.posted:
        assert crvs_spec_problems("/registry/" + path, body) == [], path
        assert body["header"]["sender_id"] == "hub.example.org"
        params = verify_envelope(
            body["signature"], body["header"], body["message"], hub_key.private_key.public_key()
        )
        assert (params.sender_id, params.key_id) == ("hub.example.org", "hub-k1")
    search = stub.posted[0][1]["message"]["search_request"][0]
    assert search["locale"] == "eng"
    subscribe = stub.posted[2][1]
    assert subscribe["header"]["sender_uri"].endswith("/dci/tok/on-subscribe")  # as given
    criteria = [i["subscribe_criteria"] for i in subscribe["message"]["subscribe_request"]]
    assert [c["reg_event_type"] for c in criteria] == [LIVE_BIRTH, DEATH]
    assert criteria[0]["filter"][0]["expression1"] == {
        "attribute_name": "registration_date",
        "operator": "ge",
        "attribute_value": "2026-01-01",
    }
    assert {c["filter_type"] for c in criteria} == {"predicate"}
    assert {c["notify_record_type"] for c in criteria} == {"spdci-extensions-dci:Person"}


def test_the_prefills_uin_lookup_speaks_the_same_dci() -> None:
    """The prefill's civil-registry look-up is the DCI client: configured sender id, ISO
    639-3, signed; only records carrying the UIN asked for come back."""
    from connectors.base import ResilientCaller
    from connectors.national_id.crvs_lookup import CivilRegistryNotFound, CivilRegistryUinLookup

    hub_key = Key(Ed25519PrivateKey.generate(), "hub-k2")
    settings = {"dci_base_url": "http://registry.example/registry", "sender_id": "sr.gov.example"}
    lookup = CivilRegistryUinLookup(settings, ResilientCaller("x"), signing_key=hub_key)
    wanted = {"identifier": [{"identifier_type": "UIN", "identifier_value": "1234567890"}]}
    other = {"identifier": [{"identifier_type": "UIN", "identifier_value": "999"}]}
    lookup.dci.http = StubRegistry(on_search([wanted, other]), on_search([other]))  # type: ignore[assignment]
    assert lookup.find("1234567890") == [wanted]
    path, body = lookup.dci.http.posted[0]  # type: ignore[attr-defined]
    assert path == "sync/search"
    assert crvs_spec_problems("/registry/sync/search", body) == []
    assert body["header"]["sender_id"] == "sr.gov.example"
    assert body["message"]["search_request"][0]["locale"] == "eng"
    params = verify_envelope(
        body["signature"], body["header"], body["message"], hub_key.private_key.public_key()
    )
    assert params.sender_id == "sr.gov.example"
    with pytest.raises(CivilRegistryNotFound):
        lookup.find("1234567890")  # the registry answered only with somebody else


def test_a_retried_request_gets_a_fresh_message_id() -> None:
    """A registry refuses a replayed message_id (ours answers 409): each attempt is a new
    message, signed anew."""
    from connectors.base import ResilientCaller
    from connectors.base.errors import TransientPartnerError

    stub = StubRegistry(on_search([]), on_search([]))
    calls: list[int] = []

    class TwoAttempts(ResilientCaller):
        def call(self, attempt: Any, *, operation: str, deadline: Any = None) -> Any:
            calls.append(1)
            try:
                attempt(5.0)
                raise TransientPartnerError("civil_registry", operation, "timeout", "lost")
            except TransientPartnerError:
                return attempt(5.0)

    stub.caller = TwoAttempts("civil_registry")
    client(stub).search([msgs.id_criteria("UIN", "1")])
    first, second = (body["header"]["message_id"] for _, body in stub.posted)
    assert first != second and calls == [1]


def test_without_a_key_the_signature_is_left_out_never_null() -> None:
    stub = StubRegistry(on_search([]))
    client(stub).search([msgs.id_criteria("UIN", "1")])
    assert "signature" not in stub.posted[0][1]


def test_a_subscribe_needs_a_filter() -> None:
    with pytest.raises(ValueError, match="filter"):
        msgs.subscribe_message([LIVE_BIRTH], filter=None)
    assert msgs.filter_type_of({"type": "UIN", "value": "1"}) == "idtype-value"
    assert msgs.filter_type_of({"type": "ns:org:QueryType:graphql", "value": {}}) == "expression"


# --- what comes back ----------------------------------------------------------------------


def test_answers_are_verified_when_the_registry_key_is_configured() -> None:
    registry = Key(Ed25519PrivateKey.generate(), "reg-1")
    record = {"identifier": {"identifier_type": "BRN", "identifier_value": "B-1"}}
    criteria = [msgs.id_criteria("BRN", "B-1")]
    verifying = {"registry_key": registry.private_key.public_key()}

    [result] = client(StubRegistry(on_search([record], registry)), **verifying).search(criteria)
    assert result.records == [record]

    forged = on_search([record], Key(Ed25519PrivateKey.generate(), "reg-1"))
    tampered = on_search([record], registry)
    tampered["message"]["search_response"][0]["data"]["reg_records"][0]["x"] = 1
    unsigned = on_search([record])
    for answer, code in (
        (forged, "err.signature.invalid"),
        (tampered, "err.signature.invalid"),
        (unsigned, "err.signature.missing"),
    ):
        with pytest.raises(DciRefused) as refused:
            client(StubRegistry(answer), **verifying).search(criteria)
        assert refused.value.reason == code
    # Without the registry's key nothing can be checked: a suite mock's "unsigned-mock" passes.
    answer = {**on_search([record]), "signature": "unsigned-mock"}
    assert client(StubRegistry(answer)).search(criteria)[0].records == [record]


def test_a_signature_naming_another_sender_is_refused() -> None:
    registry = Key(Ed25519PrivateKey.generate(), "reg-1")
    answer = on_search([], registry, sender_id="someone-else")
    answer["signature"] = sign_envelope(
        answer["header"],
        answer["message"],
        registry.private_key,
        sender_id="civil-registry",
        key_id="reg-1",
    )
    dci = client(StubRegistry(), registry_key=registry.private_key.public_key())
    with pytest.raises(SignatureError, match="kidId"):
        dci.verify(answer["signature"], answer["header"], answer["message"])


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("spdci-common:RegistryEventType:LiveBirth", "live_birth"),
        ("LiveBirth", "live_birth"),
        ("live_birth", "live_birth"),
        ("BIRTH", "live_birth"),
        ("ns:org:RegistryEventType:death", "death"),
        ("spdci-common:RegistryEventType:Death", "death"),
        ("spdci-common:RegistryEventType:FetalDeath", "fetal_death"),
        ("Marriage", "marriage"),
        ("Divorce", "divorce"),
        ("adoption", "adoption"),
        ("spdci-common:RegistryEventType:NewHouseHoldMember", None),
        ("", None),
        (7, None),
    ],
)
def test_the_specs_event_vocabulary_is_read(spelling: Any, code: str | None) -> None:
    assert msgs.vital_event(spelling) == code
    handled = code if code in ("live_birth", "death") else None
    assert msgs.normalise_event_type(spelling) == handled


def test_records_of_every_vocabulary_are_extracted_and_others_refused_alone() -> None:
    def event(kind: Any, number: str) -> dict[str, Any]:
        return {
            "reference_id": number,
            "timestamp": "2026-01-01T00:00:00Z",
            "data": {
                "reg_event_type": kind,
                "reg_records": [
                    {"identifier": {"identifier_type": "BRN", "identifier_value": number}}
                ],
            },
        }

    extracted = msgs.notify_records(
        {
            "transaction_id": "t",
            "notify_event": [
                event(LIVE_BIRTH, "B-1"),
                event("live_birth", "B-2"),
                event("spdci-common:RegistryEventType:Marriage", "M-1"),
                event("spdci-common:RegistryEventType:Tea", "X-1"),
            ],
        }
    )
    assert [(r.record_type, r.source_id) for r in extracted.records] == [
        ("dci_birth", "B-1"),
        ("dci_birth", "B-2"),
    ]
    assert [r.headers["reg_event_type"] for r in extracted.records] == ["live_birth"] * 2
    reasons = [r.reason for r in extracted.rejected]
    assert (
        reasons[0]
        == "reg_event_type marriage is not taken in by this hub (only live births and deaths)"
    )
    assert reasons[1].startswith("reg_event_type is missing or not a vital event of the spec")


# --- places -----------------------------------------------------------------------------


def spec_example_person() -> dict[str, Any]:
    """The CRVS API file's own example person (SearchResponse reg_records), when available."""
    if not openapi.available() or not (openapi.spec_dir() / CRVS).is_file():  # type: ignore[operator]
        pytest.skip(openapi.SKIP_REASON + f" (and {CRVS})")
    schemas = openapi.document(CRVS)["components"]["schemas"]
    data = schemas["SearchResponse"]["properties"]["search_response"]["items"]["properties"]
    return copy.deepcopy(data["data"]["properties"]["reg_records"]["items"]["example"])


def as_birth_record(person: dict[str, Any]) -> dict[str, Any]:
    """The example person as a registry would notify a birth: its identifier (a UIN) replaced
    by a birth registration number; its parents' identifiers as the spec gives them (the
    built-in identifier profile takes the spec's numbers as they are)."""
    record = copy.deepcopy(person)
    record["identifier"] = {"identifier_type": "BRN", "identifier_value": "BRN-2026-1"}
    return record


def test_the_specs_example_person_maps_with_its_object_place() -> None:
    person = spec_example_person()
    assert isinstance(person["birth_place"], dict)  # what used to kill the record
    mapped = map_record("civil_registry_dci_birth", as_birth_record(person))
    assert mapped["registration_number"] == "BRN20261"  # normalised as identifiers are
    assert mapped["child"]["given_name"] == person["name"]["given_name"]
    assert mapped["child"]["birth_date"] == person["birth_date"][:10]
    assert "birth_place_admin_area_code" not in mapped  # the example's place names no area
    assert mapped["mother"]["identifiers"][0]["system"] == "national_id"


@pytest.mark.parametrize(
    ("place", "code"),
    [
        ("r01-d02-l003", "R01-D02-L003"),
        ("Central Hospital", None),  # text that is no code: kept in the raw record only
        ("", None),
        ({"name": "H", "contained_in_place": "R01-D02"}, "R01-D02"),
        ({"name": "H", "contained_in_place": {"name": "L", "admin_area_code": "R01"}}, "R01"),
        ({"name": "H", "address": {"sub_region_code": "SH", "region_code": "A205"}}, "SH"),
        ({"region_code": "A205", "locality": "Thani"}, "A205"),
        ({"admin_area_code": "R09", "contained_in_place": "R01"}, "R09"),
        ({"name": "hospital/Madrid_Central", "geo": {"latitude": 9.56}}, None),
        ({"contains_place": [{"admin_area_code": "R01"}]}, None),  # what it contains is not it
    ],
)
def test_places_as_text_or_object_give_their_admin_area(place: Any, code: str | None) -> None:
    record = {
        "identifier": [
            {"identifier_type": "DRN", "identifier_value": "D-1"},
            {"identifier_type": "BRN", "identifier_value": "B-1"},
        ],
        "name": {"given_name": "Ann", "surname": "Lee"},
        "death_date": "2026-01-02",
        "death_place": place,
    }
    mapped = map_record("civil_registry_dci_death", record)
    assert mapped.get("death_place_admin_area_code") == code
    assert mapped["registration_number"] == "D1"


# --- subscriptions ------------------------------------------------------------------------


def subscribe_answer(transaction_id: str, *items: dict[str, Any], **header: Any) -> tuple:
    head = {"status": "succ", **header}
    return head, {
        "transaction_id": transaction_id,
        "correlation_id": "c",
        "subscribe_response": list(items),
    }


def test_a_subscription_never_confirmed_degrades_the_connector_with_the_reason() -> None:
    clock = FakeClock()
    status = ConnectorStatus("civil_registry", clock=clock)
    book = DciSubscriptions(clock, ttl_seconds=60, status=status)
    book.sent("t1", {"r1": LIVE_BIRTH, "r2": DEATH})
    book.acknowledged("t1", "c1")
    # Within the TTL it is awaited, which already keeps the connector short of "up".
    [(key, entry)] = status.snapshot()["subscriptions"].items()
    assert key == f"dci:{LIVE_BIRTH},{DEATH}" and entry["state"] == "awaiting_confirmation"
    clock.advance(61)
    snapshot = status.snapshot()
    assert snapshot["state"] == "degraded"
    assert snapshot["subscriptions"][key]["state"] == "unconfirmed"
    [reason] = snapshot["problems"]
    assert f"DCI subscription to {LIVE_BIRTH}, {DEATH} (sent " in reason
    assert "no on-subscribe within 60 s" in reason
    # A late on-subscribe still confirms, matched by the correlation id the ACK gave.
    late = {
        "correlation_id": "c1",
        "subscribe_response": [
            {"reference_id": "r1", "status": "succ", "subscriptions": [{"code": "S1"}]},
            {"reference_id": "r2", "status": "succ", "subscriptions": [{"code": "S2"}]},
        ],
    }
    assert book.on_subscribe({"status": "succ"}, late)
    assert status.state == "up" and status.snapshot()["problems"] == []
    assert book.codes() == {"S1": LIVE_BIRTH, "S2": DEATH}


def test_a_refused_subscription_shows_the_registrys_reason() -> None:
    clock = FakeClock()
    status = ConnectorStatus("civil_registry", clock=clock)
    book = DciSubscriptions(clock, ttl_seconds=60, status=status)
    book.sent("t1", {"r1": LIVE_BIRTH})
    header, message = subscribe_answer(
        "t1",
        {
            "reference_id": "r1",
            "status": "rjct",
            "status_reason_code": "rjct.notify_details.invalid",
            "status_reason_message": "filter attribute unknown",
        },
        status="rjct",
    )
    assert book.on_subscribe(header, message)
    assert status.snapshot()["problems"] == [
        f"dci:{LIVE_BIRTH}: refused (DCI subscription to {LIVE_BIRTH} refused by the registry: "
        "rjct.notify_details.invalid: filter attribute unknown)"
    ]
    assert status.state == "degraded"
    # Subscribing again (say, with a fixed filter) replaces the refused attempt.
    book.sent("t2", {"r9": LIVE_BIRTH})
    assert status.snapshot()["problems"] == [f"dci:{LIVE_BIRTH}: awaiting_confirmation"]
    header, message = subscribe_answer(
        "t2",
        {
            "reference_id": "r9",
            "status": "rjct",
            "status_reason_code": "rjct.event.already_subscribed",
        },
        status="rjct",
    )
    assert book.on_subscribe(header, message)  # the registry holds one: that is confirmed
    assert status.state == "up" and status.snapshot()["problems"] == []
    assert not book.on_subscribe({"status": "succ"}, {"transaction_id": "invented"})


def test_a_subscribe_whose_call_failed_is_forgotten() -> None:
    clock = FakeClock()
    status = ConnectorStatus("civil_registry", clock=clock)
    book = DciSubscriptions(clock, ttl_seconds=60, status=status)
    book.sent("t1", {"r1": LIVE_BIRTH})
    book.failed("t1")
    clock.advance(120)
    assert status.snapshot()["subscriptions"] == {} and status.state == "up"
