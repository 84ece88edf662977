"""The DCI Social Registry server over real databases and real HTTP callbacks (the harness and
the body checks are in ``dci_support``): every answer, callback and signature is checked
there against our schemas, the spec when present, and an independent signature check.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.auth.tokens import issue_token
from hub.dci import senders
from hub.dci.notify import NotifyEvent, build_notify, send_notify
from hub.dci.tables import DciSubscription
from standards.dci.signature import public_key_base64, sign_envelope
from standards.dci.sr_record import group_record
from tests.integration.dci_support import (
    KEY_ID,
    SENDER,
    Dci,
    check_ack,
    check_ack_body,
    check_answer,
    check_errors_body,
    check_problem,
    check_sync,
    idtype,
    numbers,
    search_message,
    seed_population,
    verify_hub_signature,
)


@pytest.fixture
def dci(db_url: str, tmp_path: Path):
    harness = Dci(db_url, tmp_path, extra={"callback_attempts": 1})
    yield harness
    harness.close()


@pytest.fixture
def population(dci: Dci) -> dict[str, dict]:
    return seed_population(dci)


# --------------------------------------------------------------------------- search


def test_sync_search_by_uin_returns_the_household_as_an_sr_group(dci, population):
    body = dci.envelope(
        "search",
        search_message(
            {"query_type": "idtype-value", "query": {"type": "UIN", "value": "1111111111"}}
        ),
    )
    response = dci.post("sync/search", body)
    assert response.status_code == 200
    answer = check_sync(response)
    verify_hub_signature(answer, dci.hub_key_pem())
    header = answer["header"]
    assert header["action"] == "on-search" and header["status"] == "succ"
    assert header["receiver_id"] == SENDER and header["completed_count"] == 1
    item = answer["message"]["search_response"][0]
    assert item["status"] == "succ" and item["reference_id"] == "ref-0"
    assert item["pagination"] == {"page_size": 20, "page_number": 1, "total_count": 1}
    [group] = item["data"]["reg_records"]
    expected = population["otieno"]
    assert group["group_identifier"] == [
        {"identifier_type": "SRN", "identifier_value": expected["registry_number"]}
    ]
    assert group["group_type"] == "household" and group["group_size"] == 3
    assert group["poverty_score"] == 2.1 and group["poverty_score_type"] == "pmt-2025"
    assert group["place"]["admin_area_code"] == "R01-D01"
    head = group["group_head_info"]
    assert head["demographic_info"]["name"] == {"surname": "Otieno", "given_name": "Amina"}
    assert head["demographic_info"]["identifier"] == [
        {"identifier_type": "UIN", "identifier_value": "1111111111"}
    ]
    assert head["demographic_info"]["sex"] == "female"
    assert [m["demographic_info"]["name"]["given_name"] for m in group["member_list"]] == [
        "Amina",
        "Cleo",
        "Dan",
    ]
    # An unknown number is an empty success, not an error.
    none = dci.post(
        "sync/search",
        dci.envelope(
            "search",
            search_message(
                {"query_type": "idtype-value", "query": {"type": "UIN", "value": "999"}}
            ),
        ),
    )
    assert check_sync(none)["message"]["search_response"][0]["data"]["reg_records"] == []


EXPRESSION_CASES = [
    # the spec's own shape: {type, value: {expression: {collection, query}}}
    (
        "expression",
        {
            "type": "ns:org:QueryType:expression",
            "value": {
                "expression": {
                    "collection": "Group",
                    "query": {
                        "$and": [{"poverty_score": {"$lt": 3}}, {"location": {"$eq": "R01-D01"}}]
                    },
                }
            },
        },
        ["otieno"],
    ),
    # bare expression without wrapper, $or and $in
    (
        "expression",
        {"$or": [{"group_size": {"$gt": 3}}, {"admin_area_code": {"$in": ["R01-D02"]}}]},
        ["kamau", "odhiambo"],
    ),
    # predicate list sent under query_type expression (a known variant)
    (
        "expression",
        [
            {
                "seq_num": 1,
                "expression1": {"attribute_name": "age", "operator": "lt", "attribute_value": "5"},
            }
        ],
        ["wanjiru"],
    ),
    # the spec's predicate: age < 25 and poverty_score < 2.5
    (
        "predicate",
        [
            {
                "seq_num": 1,
                "expression1": {"attribute_name": "age", "operator": "lt", "attribute_value": "25"},
                "condition": "and",
                "expression2": {
                    "attribute_name": "poverty_score",
                    "operator": "lt",
                    "attribute_value": "2.5",
                },
            }
        ],
        ["otieno", "wanjiru"],
    ),
    # a single predicate object, "not": households with a woman and no child under 10
    (
        "predicate",
        {
            "expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "female"},
            "condition": "not",
            "expression2": {"attribute_name": "age", "operator": "lt", "attribute_value": 10},
        },
        ["odhiambo"],
    ),
    # two predicates (ANDed), "or" inside, ge on age
    (
        "predicate",
        [
            {
                "seq_num": 2,
                "expression1": {"attribute_name": "age", "operator": "ge", "attribute_value": 60},
                "condition": "or",
                "expression2": {
                    "attribute_name": "group_size",
                    "operator": "eq",
                    "attribute_value": 4,
                },
            },
            {
                "seq_num": 1,
                "expression1": {
                    "attribute_name": "UIN",
                    "operator": "in",
                    "attribute_value": ["2222222222", "999"],
                },
            },
        ],
        ["kamau"],
    ),
]


def check_expression_predicate_and_their_variants(dci, population):
    for query_type, query, expected in EXPRESSION_CASES:
        body = dci.envelope(
            "search",
            search_message(
                {
                    "query_type": query_type,
                    "query": query,
                    "sort": [{"attribute_name": "registration_date", "sort_order": "asc"}],
                }
            ),
        )
        answer = check_sync(dci.post("sync/search", body))
        assert answer["message"]["search_response"][0]["status"] == "succ", (query, answer)
        wanted = [population[name]["registry_number"] for name in expected]
        assert sorted(numbers(answer)) == sorted(wanted), query


def check_sort_and_pagination(dci, population):
    def page(number: int, order: str) -> tuple[list[str], dict]:
        body = dci.envelope(
            "search",
            search_message(
                {
                    "query_type": "expression",
                    "query": {"group_size": {"$ge": 1}},
                    "sort": [{"attribute_name": "poverty_score", "sort_order": order}],
                    "pagination": {"page_size": 2, "page_number": number},
                }
            ),
        )
        answer = check_sync(dci.post("sync/search", body))
        return numbers(answer), answer["message"]["search_response"][0]["pagination"]

    by = {name: record["registry_number"] for name, record in population.items()}
    first, meta = page(1, "desc")
    second, _ = page(2, "desc")
    third, _ = page(3, "desc")
    assert meta == {"page_size": 2, "page_number": 1, "total_count": 4}
    # scores: kamau 4.5, otieno 2.1, wanjiru 1.2, odhiambo none (nulls last)
    assert first + second == [by["kamau"], by["otieno"], by["wanjiru"], by["odhiambo"]]
    assert third == []
    ascending, _ = page(1, "asc")
    assert ascending == [by["wanjiru"], by["otieno"]]


def check_page_records_match_the_canonical_record(dci, population):
    """Search builds a page's records in bulk; the SR Groups must equal those built from the
    registry's canonical household record."""
    body = dci.envelope(
        "search",
        search_message({"query_type": "expression", "query": {"group_size": {"$ge": 1}}}),
    )
    [item] = check_sync(dci.post("sync/search", body))["message"]["search_response"]
    ids = {record["registry_number"]: record["id"] for record in population.values()}
    assert len(item["data"]["reg_records"]) == len(population)
    for group in item["data"]["reg_records"]:
        canonical = dci.runtime.registry.get_household(
            ids[group["group_identifier"][0]["identifier_value"]]
        )
        expected = group_record(
            canonical,
            poverty_score=group.get("poverty_score"),
            poverty_score_type=group.get("poverty_score_type"),
        )
        assert group == expected


def check_batch_with_mixed_outcomes(dci, population):
    message = search_message(
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "3333333333"}},
        {"query_type": "expression", "query": {"shoe_size": {"$eq": 4}}},
        {
            "query_type": "expression",
            "query": {"group_size": {"$eq": 1}},
            "pagination": {"page_size": 5000},
        },
        {
            "query_type": "expression",
            "query": {"group_size": {"$eq": 1}},
            "sort": [{"attribute_name": "secret", "sort_order": "asc"}],
        },
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "3333333333"}},
        refs=["a", "b", "c", "d", "a"],
    )
    answer = check_sync(dci.post("sync/search", dci.envelope("search", message)))
    items = answer["message"]["search_response"]
    assert [i["status"] for i in items] == ["succ", "rjct", "rjct", "rjct", "rjct"]
    assert [i.get("status_reason_code") for i in items[1:]] == [
        "rjct.search_criteria.invalid",
        "rjct.pagination.invalid",
        "rjct.sort.invalid",
        "rjct.reference_id.duplicate",
    ]
    assert "shoe_size" in items[1]["status_reason_message"]
    assert answer["header"]["status"] == "succ" and answer["header"]["completed_count"] == 5


# --------------------------------------------------------------------------- async + callbacks


def test_queries_sorting_paging_and_batches(dci, population):
    """One database for several read-only checks: the population is the slow part."""
    check_expression_predicate_and_their_variants(dci, population)
    check_sort_and_pagination(dci, population)
    check_batch_with_mixed_outcomes(dci, population)
    check_page_records_match_the_canonical_record(dci, population)


def test_async_search_posts_a_signed_on_search_to_the_registered_receiver(dci, population):
    message = search_message(
        {"query_type": "idtype-value", "query": {"type": "UIN", "value": "4444444444"}}
    )
    body = dci.envelope("search", message, sender_uri=dci.receiver.base + "/cb")
    response = dci.post("search", body)
    assert response.status_code == 200
    ack = check_ack(response)["message"]
    assert ack["ack_status"] == "ACK"
    path, callback = dci.receiver.next()
    assert path == "/cb/registry/on-search"
    check_answer("/registry/on-search", callback)
    verify_hub_signature(callback, dci.hub_key_pem())
    assert callback["header"]["action"] == "on-search"
    assert callback["message"]["correlation_id"] == ack["correlation_id"]
    assert callback["message"]["transaction_id"] == message["transaction_id"]
    assert numbers(callback) == [population["odhiambo"]["registry_number"]]

    # txn status, sync and async, by transaction id and by reference ids
    status = dci.envelope(
        "txn-status",
        {
            "transaction_id": "t-status",
            "txnstatus_request": {
                "reference_id": "s1",
                "txn_type": "search",
                "attribute_type": "transaction_id",
                "attribute_value": message["transaction_id"],
            },
        },
    )
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while True:  # the callback arrived; the row is marked done right after
        answer = check_sync(dci.post("sync/txn/status", status), "/registry/sync/txn/status")
        txn = answer["message"]["txnstatus_response"]["txn_status"]
        status = dci.envelope("txn-status", status["message"])
        if txn["search_response"][0]["status"] == "succ" or datetime.now(UTC) > deadline:
            break
    assert txn["correlation_id"] == ack["correlation_id"]
    assert txn["search_response"] == [
        {
            "reference_id": "ref-0",
            "timestamp": txn["search_response"][0]["timestamp"],
            "status": "succ",
        }
    ]
    async_status = dci.envelope(
        "txn-status",
        {
            "transaction_id": "t-status-2",
            "txnstatus_request": {
                "reference_id": "s2",
                "txn_type": "search",
                "attribute_type": "reference_id_list",
                "attribute_value": ["ref-0"],
            },
        },
    )
    assert check_ack(dci.post("txn/status", async_status))["message"]["ack_status"] == "ACK"
    path, on_status = dci.receiver.next()
    assert path == "/registry/txn/on-status"
    check_answer("/registry/txn/on-status", on_status)
    verify_hub_signature(on_status, dci.hub_key_pem())
    assert on_status["header"]["status"] == "succ"
    unknown = dci.envelope(
        "txn-status",
        {
            "transaction_id": "t3",
            "txnstatus_request": {
                "reference_id": "s3",
                "txn_type": "search",
                "attribute_type": "correlation_id",
                "attribute_value": "nope",
            },
        },
    )
    # an unknown transaction is an answer, not a refusal: 200, and the item says rjct
    missing = dci.post("sync/txn/status", unknown)
    assert missing.status_code == 200
    answer = check_sync(missing, "/registry/sync/txn/status")
    assert answer["header"]["status"] == "succ"
    assert answer["message"]["transaction_id"] == "t3"
    txn = answer["message"]["txnstatus_response"]["txn_status"]
    assert txn["correlation_id"] == "nope"  # the id asked about, echoed
    [item] = txn["search_response"]
    assert (item["reference_id"], item["status"]) == ("s3", "rjct")
    assert item["status_reason_code"] == "rjct.reference_id.invalid"
    assert "no search transaction" in item["status_reason_message"]
    # async: the same answer as a txn-on-status callback, with both ids to match it by
    later = dci.envelope("txn-status", {**unknown["message"], "transaction_id": "t4"})
    ack = check_ack(dci.post("txn/status", later))["message"]
    path, on_status = dci.receiver.next()
    assert path == "/registry/txn/on-status"
    check_answer("/registry/txn/on-status", on_status)
    assert on_status["message"]["transaction_id"] == "t4"
    assert on_status["message"]["correlation_id"] == ack["correlation_id"]
    [item] = on_status["message"]["txnstatus_response"]["txn_status"]["search_response"]
    assert item["status"] == "rjct"


def test_callbacks_only_go_to_registered_uris(dci, population):
    for uri in (
        "http://127.0.0.1:9/elsewhere",
        "http://evil.example/registry",
        dci.receiver.base + "/../x",
        "ftp://127.0.0.1/x",
    ):
        body = dci.envelope(
            "search",
            search_message({"query_type": "expression", "query": {"group_size": {"$ge": 1}}}),
            sender_uri=uri,
        )
        response = dci.post("search", body)
        ack = check_ack(response)["message"]
        assert ack["ack_status"] == "ERR", uri
        assert ack["error"]["code"] == "err.sender_uri.invalid"
    assert dci.receiver.received.empty()
    check_notify_is_not_sent_to_an_unregistered_uri(dci, population)


def test_subscribe_notify_unsubscribe(dci, population):
    message = {
        "transaction_id": "sub-txn",
        "subscribe_request": [
            {
                "reference_id": "r1",
                "timestamp": datetime.now(UTC).isoformat(),
                "subscribe_criteria": {
                    "reg_event_type": "spdci-common:RegistryEventType:NewHouseHoldMember",
                    "filter_type": "expression",
                    "filter": {
                        "type": "ns:org:QueryType:expression",
                        "value": {"expression": {"admin_area_code": {"$eq": "R01-D01"}}},
                    },
                    "notify_record_type": "Group",
                },
            }
        ],
    }
    ack = check_ack(dci.post("subscribe", dci.envelope("subscribe", message)))["message"]
    assert ack["ack_status"] == "ACK"
    path, on_subscribe = dci.receiver.next()
    assert path == "/registry/on-subscribe"
    check_answer("/registry/on-subscribe", on_subscribe)
    verify_hub_signature(on_subscribe, dci.hub_key_pem())
    [sub] = on_subscribe["message"]["subscribe_response"][0]["subscriptions"]
    assert sub["status"] == "subscribe" and sub["reg_event_type"] == "NewHouseHoldMember"

    again = dci.post("subscribe", dci.envelope("subscribe", message))
    assert check_ack(again)["message"]["ack_status"] == "ACK"
    _, duplicate = dci.receiver.next()
    assert duplicate["message"]["subscribe_response"][0]["status_reason_code"] == (
        "rjct.event.already_subscribed"
    )

    # notify: built for the stored subscription, delivered to the receiver, signed and valid
    with dci.runtime.sessions() as session:
        row = session.get(DciSubscription, sub["code"])
    from hub.dci.notify import wants

    assert wants(row, "household.member_added") and not wants(row, "household.created")
    server_key = dci.app.extensions.get("srhub_dci").signing_key
    event = NotifyEvent("household.member_added", population["otieno"], "evt-1", 2.1, "pmt")
    envelope = build_notify(row, [event], registry_id="social-registry", signing_key=server_key)
    check_answer("/registry/notify", envelope)
    result = send_notify(
        dci.runtime.sessions,
        row,
        [event],
        registry_id="social-registry",
        signing_key=server_key,
        attempts=1,
        sender=dci.app.extensions["srhub_dci"].callbacks,  # the hub's rule: loopback allowed
    )
    assert result.ok, result
    path, notify = dci.receiver.next()
    assert path == "/registry/notify"
    verify_hub_signature(notify, dci.hub_key_pem())
    data = notify["message"]["notify_event"][0]["data"]
    assert data["reg_event_type"] == "NewHouseHoldMember"
    assert data["reg_records"]["group_size"] == 3
    assert notify["header"]["meta"] == {"subscription_code": sub["code"]}

    unsubscribe = dci.envelope(
        "unsubscribe",
        {
            "transaction_id": "unsub",
            "timestamp": datetime.now(UTC).isoformat(),
            "subscription_codes": [sub["code"], "sub-unknown"],
        },
        total_count=1,
    )
    assert check_ack(dci.post("unsubscribe", unsubscribe))["message"]["ack_status"] == "ACK"
    path, on_unsub = dci.receiver.next()
    assert path == "/registry/on-unsubscribe"
    check_answer("/registry/on-unsubscribe", on_unsub)
    assert on_unsub["message"]["subscription_status"] == [
        {"code": sub["code"], "status": "unsubscribe"}
    ]
    assert on_unsub["message"]["status_reason_code"] == "rjct.subscription_code.invalid"
    with dci.runtime.sessions() as session:
        assert session.get(DciSubscription, sub["code"]).status == "unsubscribe"


def check_notify_is_not_sent_to_an_unregistered_uri(dci, population):
    row = DciSubscription(
        code="sub-x",
        sender_id="someone-else",
        callback_uri="http://127.0.0.1:9/registry/notify",
        reg_event_type="REGISTER",
    )
    dci.post("sync/search", {})  # any DCI call builds the server and its signing key
    server_key = dci.app.extensions["srhub_dci"].signing_key
    result = send_notify(
        dci.runtime.sessions,
        row,
        [NotifyEvent("household.created", population["kamau"])],
        registry_id="social-registry",
        signing_key=server_key,
    )
    assert not result.ok and result.attempts == 0
    assert "err.sender_uri.invalid" in (result.error or "")


# --------------------------------------------------------------------------- refusals


def test_refusals_carry_the_specs_codes(dci):
    sync_cases = []
    # malformed: not JSON, no header, no message, header without message_id
    sync_cases.append(
        ("not json", dci.post("sync/search", b"{oops", content_type="text/plain"), 400, None)
    )
    sync_cases.append(("no header", dci.post("sync/search", {"message": {}}), 400, None))
    deep = dci.post("sync/search", b"[" * 100_000, content_type="application/json")
    sync_cases.append(("deep", deep, 400, None))
    nan = dci.post("sync/search", b'{"header": {"message_id": NaN}, "message": {}}')
    sync_cases.append(("NaN", nan, 400, None))
    body = idtype(dci)
    del body["header"]["message_id"]
    sync_cases.append(("no message_id", dci.post("sync/search", body), 400, None))
    # unknown action, and a real action at the wrong endpoint
    sync_cases.append(
        (
            "unknown action",
            dci.post("sync/search", idtype(dci, action="frobnicate")),
            400,
            "rjct.action.invalid",
        )
    )
    sync_cases.append(
        (
            "wrong action",
            dci.post("sync/search", idtype(dci, action="subscribe")),
            400,
            "rjct.action.not_supported",
        )
    )
    # timestamps
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    sync_cases.append(
        (
            "expired",
            dci.post("sync/search", idtype(dci, message_ts=old)),
            400,
            "rjct.message_ts.invalid",
        )
    )
    sync_cases.append(
        (
            "future",
            dci.post("sync/search", idtype(dci, message_ts=future)),
            400,
            "rjct.message_ts.invalid",
        )
    )
    sync_cases.append(
        (
            "bad version",
            dci.post("sync/search", idtype(dci, version="9.9")),
            400,
            "rjct.version.invalid",
        )
    )
    sync_cases.append(
        (
            "count",
            dci.post("sync/search", idtype(dci, total_count=3)),
            400,
            "rjct.total_count.invalid",
        )
    )
    # replay: the same envelope twice
    once = idtype(dci)
    assert dci.post("sync/search", once).status_code == 200
    sync_cases.append(("replay", dci.post("sync/search", once), 409, "rjct.message_id.duplicate"))
    for label, response, status, reason in sync_cases:
        assert response.status_code == status, (label, response.get_json())
        answer = check_sync(response)
        assert answer["header"]["status"] == "rjct", label
        assert answer["header"].get("status_reason_code") == reason, label
        assert answer["header"]["status_reason_message"], label
        verify_hub_signature(answer, dci.hub_key_pem())
        check_problem(response, answer["code"])  # errors[] and RFC 9457 members too

    # signatures: tampered, missing, wrong key, expired: 401 with the spec's error body
    tampered = idtype(dci)
    tampered["message"]["search_request"][0]["search_criteria"]["query"]["value"] = "2222222222"
    unsigned = idtype(dci, sign=False)
    other = Ed25519PrivateKey.generate()
    wrong_key = idtype(dci)
    wrong_key["signature"] = sign_envelope(
        wrong_key["header"], wrong_key["message"], other, sender_id=SENDER, key_id=KEY_ID
    )
    stale = idtype(dci)
    stale["signature"] = sign_envelope(
        stale["header"],
        stale["message"],
        dci.key,
        sender_id=SENDER,
        key_id=KEY_ID,
        now=datetime.now(UTC).timestamp() - 3600,
    )
    # Finding of issue 17: a signature that expires 31 years after it was made is a credential
    # anyone who captured it could replay for decades; more than an hour is refused.
    decades = idtype(dci)
    decades["signature"] = sign_envelope(
        decades["header"],
        decades["message"],
        dci.key,
        sender_id=SENDER,
        key_id=KEY_ID,
        ttl_seconds=31 * 365 * 24 * 3600,
    )
    for label, body, code in (
        ("tampered", tampered, "err.signature.invalid"),
        ("unsigned", unsigned, "err.signature.missing"),
        ("wrong key", wrong_key, "err.signature.invalid"),
        ("stale", stale, "err.signature.invalid"),
        ("expires in 31 years", decades, "err.signature.invalid"),
    ):
        response = dci.post("sync/search", body)
        assert response.status_code == 401, label
        check_errors_body(response.get_json())
        assert response.get_json()["errors"][0]["code"] == code, label
        async_response = dci.post(
            "search",
            {
                **body,
                "header": {**body["header"], "message_id": body["header"]["message_id"] + "a"},
            },
        )
        assert check_ack(async_response)["message"]["error"]["code"] in (
            "err.signature.invalid",
            "err.signature.missing",
        )

    # async: the same refusals as ERR acknowledgements
    for label, body, code in (
        ("no message", {"header": idtype(dci)["header"]}, "err.request.bad"),
        ("expired", idtype(dci, message_ts=old), "err.request.bad"),
        ("encrypted", idtype(dci, is_msg_encrypted=True), "err.encryption.invalid"),
    ):
        ack = check_ack(dci.post("search", body))["message"]
        assert ack["ack_status"] == "ERR" and ack["error"]["code"] == code, label

    # oversized page and oversized batch
    big_page = dci.envelope(
        "search",
        search_message(
            {
                "query_type": "expression",
                "query": {"group_size": {"$ge": 1}},
                "pagination": {"page_size": 100000, "page_number": 1},
            }
        ),
    )
    item = check_sync(dci.post("sync/search", big_page))["message"]["search_response"][0]
    assert item["status"] == "rjct" and item["status_reason_code"] == "rjct.pagination.invalid"
    many = dci.envelope(
        "search",
        search_message(*[{"query_type": "expression", "query": {"group_size": {"$ge": 1}}}] * 11),
    )
    response = dci.post("sync/search", many)
    assert check_sync(response)["header"]["status_reason_code"] == (
        "rjct.total_count.limit_exceeded"
    )

    # unknown endpoint, wrong method, no token, wrong role
    too_big = dci.post("search", b"{" + b" " * 3_000_000 + b"}", content_type="application/json")
    assert too_big.status_code == 413
    assert too_big.get_json()["errors"][0]["code"] == "err.request.bad"
    wrong_method = dci.client.get("/dci/registry/search", headers=dci.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["errors"][0]["code"] == "err.request.bad"
    ack = check_ack(dci.post("frobnicate", idtype(dci)))
    assert ack["message"]["error"]["code"] == "err.request.not_found"
    anonymous = dci.post("sync/search", idtype(dci), headers={})
    assert anonymous.status_code == 401
    check_problem(anonymous, "err.request.unauthorized")
    anonymous_async = dci.post("search", idtype(dci), headers={})
    assert anonymous_async.status_code == 401
    assert check_problem(anonymous_async, "err.request.unauthorized")["message"]["error"]
    staff = {
        "Authorization": "Bearer "
        + issue_token(dci.settings, subject="x", roles=["field_worker"], admin_areas=["R01"])
    }
    forbidden = dci.post("sync/search", idtype(dci), headers=staff)
    assert forbidden.status_code == 403
    check_problem(forbidden, "err.request.forbidden")


def _mutations(body: dict, rng: random.Random) -> dict:
    junk: list[Any] = [None, 0, -1, 1.5, True, "", "x" * 300, [], {}, [1, "a"], {"$ne": 1}]
    mutated = json.loads(json.dumps(body))
    for _ in range(rng.randint(1, 3)):
        node: Any = mutated
        path: list[Any] = []
        while isinstance(node, dict | list) and node and rng.random() < 0.8:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            path.append(key)
            parent, node = node, node[key]
        if not path:
            continue
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(junk)
    return mutated


def test_junk_never_gets_a_500(dci):
    rng = random.Random(20251126)
    bases = {
        "sync/search": idtype(dci),
        "search": idtype(dci),
        "subscribe": dci.envelope(
            "subscribe",
            {
                "transaction_id": "t",
                "subscribe_request": [
                    {
                        "reference_id": "r",
                        "timestamp": datetime.now(UTC).isoformat(),
                        "subscribe_criteria": {
                            "reg_event_type": "REGISTER",
                            "filter": {"group_size": 1},
                            "notify_record_type": "Group",
                        },
                    }
                ],
            },
        ),
        "sync/txn/status": dci.envelope(
            "txn-status",
            {
                "transaction_id": "t",
                "txnstatus_request": {
                    "reference_id": "r",
                    "txn_type": "search",
                    "attribute_type": "transaction_id",
                    "attribute_value": "t",
                },
            },
        ),
    }
    for endpoint in [*bases] * 30:
        body = _mutations(bases[endpoint], rng)
        if isinstance(body.get("header"), dict) and isinstance(
            body["header"].get("message_id"), str
        ):
            body["header"]["message_id"] += str(rng.randrange(10**9))
        response = dci.post(endpoint, body)
        # 503 is what an unexpected failure becomes: for junk it would hide a bug, so refuse it
        assert response.status_code < 500, body
        answer = response.get_json()
        if response.status_code in (401, 403):
            check_errors_body(answer)
            if not endpoint.startswith("sync/"):
                check_ack_body(answer)
        elif endpoint.startswith("sync/"):
            check_answer("/registry/" + endpoint, answer)
        else:
            check_ack_body(answer)
    # drain callbacks the surviving async requests caused
    while not dci.receiver.received.empty():
        dci.receiver.received.get_nowait()


def test_a_search_that_fails_on_our_side_still_calls_back(dci, monkeypatch):
    """The sender gets an rjct on-search with its ids and an incident to quote, not silence."""
    dci.post("sync/search", {})  # builds the server
    server = dci.app.extensions["srhub_dci"]

    def broken(*args, **kwargs):
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(server, "_search_answer", broken)
    message = search_message(
        {"query_type": "expression", "query": {"group_size": {"$ge": 1}}}, refs=["r-a"]
    )
    ack = check_ack(dci.post("search", dci.envelope("search", message)))["message"]
    assert ack["ack_status"] == "ACK"
    path, callback = dci.receiver.next()
    assert path == "/registry/on-search"
    check_answer("/registry/on-search", callback)
    verify_hub_signature(callback, dci.hub_key_pem())
    assert callback["header"]["status"] == "rjct"
    assert callback["message"]["transaction_id"] == message["transaction_id"]
    assert callback["message"]["correlation_id"] == ack["correlation_id"]
    [item] = callback["message"]["search_response"]
    assert item["reference_id"] == "r-a" and item["status"] == "rjct"
    assert "incident" in item["status_reason_message"]


def test_callback_target_failure_is_recorded(dci):
    senders.register_callback_uri(dci.runtime.sessions, SENDER, "http://127.0.0.1:1")
    body = idtype(dci, sender_uri="http://127.0.0.1:1")
    ack = check_ack(dci.post("search", body))["message"]
    assert ack["ack_status"] == "ACK"
    server = dci.app.extensions["srhub_dci"]
    server.close()  # waits for the job
    from hub.dci.tables import DciTransaction

    with dci.runtime.sessions() as session:
        row = session.get(DciTransaction, ack["correlation_id"])
    assert row.callback_status == "failed" and row.status == "succ"
    assert row.callback_error.startswith("network error")


def test_operators_onboard_senders_from_the_cli(tmp_path):
    from click.testing import CliRunner, Result

    from hub.cli import main

    # The callback receiver is on loopback: the operator allows it explicitly.
    env = {
        "SRHUB_DATA_DIR": str(tmp_path),
        "SRHUB_DATABASE_URL": "",
        "SRHUB_OUTBOUND__ALLOW_HOSTS": "127.0.0.1",
    }
    runner = CliRunner()

    def dci_cli_run(args: list[str]) -> Result:
        return runner.invoke(main, ["dci", *args], env=env)

    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    public = public_key_base64(Ed25519PrivateKey.generate().public_key())
    assert dci_cli_run(["add-key", "spmis", "k1", public]).exit_code == 0
    added = dci_cli_run(["add-callback", "spmis", "http://127.0.0.1:9/cb"])
    assert added.exit_code == 0
    refused = dci_cli_run(["add-callback", "spmis", "ftp://x"])
    assert refused.exit_code != 0 and "http(s) URL" in refused.output
    shown = dci_cli_run(["signing-key"])
    key = json.loads(shown.stdout.strip().splitlines()[-1])
    assert key["algorithm"] == "ed25519" and key["key_id"].startswith("hub-")
    pem = (tmp_path / "dci-signing-key.pem").stat()
    assert pem.st_mode & 0o777 == 0o600
    assert dci_cli_run(["revoke-key", "spmis", "k1"]).exit_code == 0
    assert dci_cli_run(["revoke-key", "spmis", "k1"]).exit_code != 0


def test_a_full_work_queue_answers_nack(db_url, tmp_path):
    harness = Dci(db_url, tmp_path, extra={"max_pending": 1, "async_workers": 1})
    try:
        harness.receiver.gate.clear()  # the first callback hangs, holding the only worker
        first = check_ack(harness.post("search", idtype(harness)))["message"]
        second = harness.post("search", idtype(harness))
        assert first["ack_status"] == "ACK"
        assert second.status_code == 429
        nack = check_ack(second)["message"]
        assert nack["ack_status"] == "NACK"
        assert nack["error"]["code"] == "err.request.too_many_requests"
        harness.receiver.gate.set()
        path, _ = harness.receiver.next()
        assert path == "/registry/on-search"
        assert harness.receiver.received.empty()  # the refused request never calls back
    finally:
        harness.close()


def test_callback_targets_follow_the_sender_uri_layout(dci):
    from hub.dci.senders import callback_url

    base = dci.receiver.base
    with dci.runtime.sessions() as session:
        cases = [
            (None, "on-search", base + "/registry/on-search"),
            (base + "/cb", "on-search", base + "/cb/registry/on-search"),
            (base + "/cb/registry/on-search", "txn-on-status", base + "/cb/registry/txn/on-status"),
            (base + "/cb/registry/on-subscribe", "notify", base + "/cb/registry/notify"),
            (base + "/hooks/on-search", "on-unsubscribe", base + "/hooks/on-unsubscribe"),
        ]
        for sender_uri, action, expected in cases:
            assert callback_url(session, SENDER, sender_uri, action) == expected


# --------------------------------------------------------------------------- the sync hot path


def test_a_sync_search_is_on_record_and_a_replay_of_it_writes_nothing(dci, population):
    """The sync search spends its message id and records its transaction in one write after
    the search: the record must be there for txn/status, and a replay must add nothing."""
    from sqlalchemy import select

    from hub.dci.tables import DciTransaction

    body = idtype(dci)
    first = check_sync(dci.post("sync/search", body))
    assert first["header"]["status"] == "succ"
    assert numbers(first) == [population["otieno"]["registry_number"]]
    replay = dci.post("sync/search", body)
    assert replay.status_code == 409
    with dci.runtime.sessions() as session:
        rows = session.scalars(
            select(DciTransaction).where(DciTransaction.message_id == body["header"]["message_id"])
        ).all()
    assert len(rows) == 1
    assert (rows[0].status, rows[0].callback_status, rows[0].txn_type) == ("succ", "none", "search")
    assert rows[0].correlation_id == first["message"]["correlation_id"]
    assert rows[0].completed_at is not None
    status = dci.envelope(
        "txn-status",
        {
            "transaction_id": "t-hot",
            "txnstatus_request": {
                "reference_id": "s1",
                "txn_type": "search",
                "attribute_type": "correlation_id",
                "attribute_value": first["message"]["correlation_id"],
            },
        },
    )
    answer = check_sync(dci.post("sync/txn/status", status), "/registry/sync/txn/status")
    items = answer["message"]["txnstatus_response"]["txn_status"]["search_response"]
    assert [(i["reference_id"], i["status"]) for i in items] == [("ref-0", "succ")]


def test_a_sync_search_survives_the_database_dropping_its_connections(dci, population):
    """The search path's pool does not ping each connection it takes; a connection the
    database has dropped must cost a retry, not a refusal."""
    if dci.runtime.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: a SQLite file has no server connections to drop")
    assert check_sync(dci.post("sync/search", idtype(dci)))["header"]["status"] == "succ"
    with dci.runtime.engine.connect() as connection:
        dropped = connection.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar()
    assert dropped >= 1  # the search pool's connection among them
    answer = check_sync(dci.post("sync/search", idtype(dci)))
    assert answer["header"]["status"] == "succ"
    assert numbers(answer) == [population["otieno"]["registry_number"]]


CACHE_SECONDS = 2.0


def test_key_changes_reach_the_server_within_the_key_cache_time(db_url, tmp_path):
    # The cache time leaves room for a slow CI moment between filling the cache and the next
    # request (0.5 s once let the cache expire before the "not seen yet" request).
    harness = Dci(db_url, tmp_path, extra={"key_cache_seconds": CACHE_SECONDS})
    try:
        assert harness.post("sync/search", idtype(harness)).status_code == 200  # k1 cached
        second = Ed25519PrivateKey.generate()
        senders.register_key(
            harness.runtime.sessions, SENDER, "k2", public_key_base64(second.public_key())
        )

        def signed_by_k2() -> dict:
            body = idtype(harness, sign=False)
            body["signature"] = sign_envelope(
                body["header"], body["message"], second, sender_id=SENDER, key_id="k2"
            )
            return body

        assert harness.post("sync/search", signed_by_k2()).status_code == 401  # not seen yet
        time.sleep(CACHE_SECONDS + 0.1)
        assert harness.post("sync/search", signed_by_k2()).status_code == 200
        assert senders.revoke_key(harness.runtime.sessions, SENDER, "k2")
        time.sleep(CACHE_SECONDS + 0.1)
        refused = harness.post("sync/search", signed_by_k2())
        assert refused.status_code == 401
        assert refused.get_json()["errors"][0]["code"] == "err.signature.invalid"
    finally:
        harness.close()
