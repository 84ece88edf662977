"""The pure DCI and FHIR pieces: signatures, envelopes, query dialects, SR records, our own
DCI message schemas, and (when ``SRHUB_DCI_SPEC_DIR`` points at them) the spec's own OpenAPI
files as the judge of what we build and of our schemas."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fhir.resources.R4B.bundle import Bundle

from standards.dci import codes, openapi, validation
from standards.dci.envelope import EnvelopeError, parse_envelope, request_header
from standards.dci.query import (
    And,
    Cmp,
    IdMatch,
    Not,
    Or,
    QueryError,
    parse_pagination,
    parse_query,
    parse_sort,
)
from standards.dci.signature import (
    SignatureError,
    load_public_key,
    public_key_base64,
    sign_envelope,
    verify_envelope,
)
from standards.dci.sr_record import group_record
from standards.fhir import convert

HOUSEHOLD = {
    "id": "6f1c1a36-8a0e-4c43-9d55-0d3f1d7c6a01",
    "registry_number": "SR-ABC",
    "version": 3,
    "status": "active",
    "head_person_id": "6f1c1a36-8a0e-4c43-9d55-0d3f1d7c6a02",
    "admin_area_code": "R01-D02",
    "address": "12 Mango Lane",
    "location": {"lat": -1.5, "lon": 36.9},
    "members": [
        {
            "id": "6f1c1a36-8a0e-4c43-9d55-0d3f1d7c6a02",
            "version": 1,
            "given_name": "Amina",
            "family_name": "Otieno",
            "sex": "female",
            "birth_date": "1985-04-02",
            "relationship": "head",
            "identifiers": [
                {"system": "national_id", "value": "123", "verified": True},
                {"system": "program_beneficiary_id", "value": "P-9", "verified": False},
            ],
            "created_at": "2025-01-01T00:00:00Z",
        },
        {
            "id": "6f1c1a36-8a0e-4c43-9d55-0d3f1d7c6a03",
            "version": 1,
            "given_name": "Cleo",
            "family_name": "Otieno",
            "sex": "female",
            "birth_date": "2012-09-09",
            "relationship": "child",
            "identifiers": [],
        },
    ],
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-02-01T00:00:00Z",
}


def test_signature_round_trip_and_tampering():
    key = Ed25519PrivateKey.generate()
    public = load_public_key(public_key_base64(key.public_key()))
    header, message = {"message_id": "1", "action": "search"}, {"a": [1, "é"]}
    text = sign_envelope(header, message, key, sender_id="s", key_id="k")
    params = verify_envelope(text, header, message, public)
    assert (params.sender_id, params.key_id) == ("s", "k")
    # key order does not matter (canonical JSON); content does
    verify_envelope(text, {"action": "search", "message_id": "1"}, message, public)
    with pytest.raises(SignatureError) as tampered:
        verify_envelope(text, header, {"a": [2, "é"]}, public)
    assert tampered.value.code == codes.ERR_SIGNATURE_INVALID
    with pytest.raises(SignatureError) as expired:
        verify_envelope(text, header, message, public, now=datetime.now(UTC).timestamp() + 3600)
    assert "expired" in expired.value.message
    for broken in (
        "",
        "Signature: nonsense",
        text.replace('algorithm="ed25519"', 'algorithm="rsa"'),
    ):
        with pytest.raises(SignatureError):
            verify_envelope(broken, header, message, public)


def test_envelope_checks_name_the_reason():
    header = request_header("search", sender_id="s")
    ok = parse_envelope({"header": header, "message": {}}, "search")
    assert ok.sender_id == "s"
    cases = [
        ({"header": {**header, "action": "fly"}}, codes.RJCT_ACTION_INVALID),
        ({"header": {**header, "action": "notify"}}, codes.RJCT_ACTION_NOT_SUPPORTED),
        ({"header": {**header, "version": "2.0.0"}}, codes.RJCT_VERSION),
        ({"header": {**header, "message_ts": "yesterday"}}, codes.RJCT_MESSAGE_TS),
        ({"header": {**header, "message_ts": "2020-01-01T00:00:00"}}, codes.RJCT_MESSAGE_TS),
        ({"header": {**header, "total_count": -1}}, codes.RJCT_TOTAL_COUNT_INVALID),
        ({"header": {**header, "message_id": ""}}, None),
    ]
    for change, reason in cases:
        with pytest.raises(EnvelopeError) as refused:
            parse_envelope({"message": {}, **change}, "search")
        assert refused.value.reason_code == reason
    with pytest.raises(EnvelopeError) as wrong_receiver:
        parse_envelope(
            {"header": {**header, "receiver_id": "other"}, "message": {}},
            "search",
            receiver_id="sr",
        )
    assert wrong_receiver.value.code == codes.ERR_RECEIVER_ID
    with pytest.raises(EnvelopeError) as bad_uri:
        parse_envelope(
            {"header": {**header, "sender_uri": "javascript:x"}, "message": {}}, "search"
        )
    assert bad_uri.value.code == codes.ERR_SENDER_URI
    old = (datetime.now(UTC) - timedelta(minutes=11)).isoformat()
    with pytest.raises(EnvelopeError):
        parse_envelope({"header": {**header, "message_ts": old}, "message": {}}, "search")


def test_query_dialects_land_on_one_tree():
    age = Cmp("age", "lt", "25")
    predicate = [
        {
            "seq_num": 1,
            "expression1": {"attribute_name": "age", "operator": "lt", "attribute_value": "25"},
        }
    ]
    assert parse_query("predicate", predicate) == age
    assert parse_query("expression", predicate) == age  # predicate under expression
    assert parse_query("predicate", predicate[0]) == age  # one object instead of a list
    wrapped = {
        "type": "ns:org:QueryType:expression",
        "value": {"expression": {"collection": "Group", "query": {"age": {"$lt": "25"}}}},
    }
    assert parse_query("expression", wrapped) == age
    assert parse_query(None, {"age": {"$lt": "25"}}) == age
    assert parse_query("idtype-value", {"type": "UIN", "value": 42}) == IdMatch("UIN", "42")
    assert parse_query(
        "expression", {"$or": [{"sex": "male"}, {"$not": {"age": {"$gte": 5}}}]}
    ) == (Or((Cmp("sex", "eq", "male"), Not(Cmp("age", "ge", 5)))))
    two = [
        {
            "seq_num": 2,
            "expression1": {"attribute_name": "a", "operator": "eq", "attribute_value": 1},
        },
        {
            "seq_num": 1,
            "expression1": {"attribute_name": "b", "operator": "in", "attribute_value": [1, 2]},
            "condition": "not",
            "expression2": {"attribute_name": "c", "operator": "gt", "attribute_value": 3},
        },
    ]
    assert parse_query("predicate", two) == And(
        (And((Cmp("b", "in", (1, 2)), Not(Cmp("c", "gt", 3)))), Cmp("a", "eq", 1))
    )


@pytest.mark.parametrize(
    "query",
    [
        None,
        "x",
        [],
        {},
        {"$where": "1"},
        {"age": {"$regex": "."}},
        {"age": {"$in": []}},
        [{"expression1": {"attribute_name": "a", "operator": "like", "attribute_value": 1}}],
        {"type": "ns:org:QueryType:graphql", "value": {"expression": "query { x }"}},
        {"age": {"$lt": {"nested": 1}}},
        {"a" * 100: 1},
    ],
)
def test_bad_queries_are_rejected_with_the_search_criteria_code(query):
    with pytest.raises(QueryError) as refused:
        parse_query("expression", query)
    assert refused.value.reason_code == codes.RJCT_SEARCH_CRITERIA


def test_sort_and_pagination_limits():
    allowed = frozenset({"poverty_score"})
    assert parse_sort([{"attribute_name": "poverty_score", "sort_order": "desc"}], allowed)[0]
    for bad in (
        [{"attribute_name": "x"}],
        [{"attribute_name": "poverty_score", "sort_order": "up"}],
        "poverty_score",
    ):
        with pytest.raises(QueryError) as refused:
            parse_sort(bad, allowed)
        assert refused.value.reason_code == codes.RJCT_SORT
    assert (
        parse_pagination({"page_size": 10.0, "page_number": 2}, default_size=5, max_size=100).number
        == 2
    )
    for bad in (
        {"page_size": 0},
        {"page_size": 101},
        {"page_size": "10"},
        {"page_size": 5, "page_number": 0},
        {"page_size": True},
        [],
    ):
        with pytest.raises(QueryError) as refused:
            parse_pagination(bad, default_size=5, max_size=100)
        assert refused.value.reason_code == codes.RJCT_PAGINATION


def test_sr_group_record_fits_the_specs_search_response():
    group = group_record(HOUSEHOLD, poverty_score=3.5, poverty_score_type="pmt")
    assert group["group_head_info"]["demographic_info"]["identifier"] == [
        {"identifier_type": "UIN", "identifier_value": "123"}
    ]
    assert group["place"]["geo"] == {"latitude": "-1.5", "longitude": "36.9"}
    assert group["member_list"][1]["relationship_head"] == "child"
    message = {
        "transaction_id": "t",
        "correlation_id": "c",
        "search_response": [
            {
                "reference_id": "r",
                "timestamp": "2025-01-01T00:00:00Z",
                "status": "succ",
                "data": {"reg_record_type": "Group", "reg_records": [group]},
                "pagination": {"page_size": 1, "page_number": 1, "total_count": 1},
            }
        ],
    }
    assert validation.message_problems("search-response.json", message) == []
    broken = {**message, "search_response": [{"reference_id": "r"}]}
    problems = validation.message_problems("search-response.json", broken)
    assert {p.path for p in problems} == {"$.search_response[0]"}
    assert {p.message for p in problems} == {
        "'timestamp' is a required property",
        "'status' is a required property",
    }
    if openapi.available():
        assert openapi.problems(message, "#/components/schemas/SearchResponse") == []
        problems = openapi.problems(broken, "#/components/schemas/SearchResponse")
        assert {p.path for p in problems} == {"$.search_response[0]"}


def test_fhir_conversion_is_strict_r4b():
    bundle = convert.everything(HOUSEHOLD, "https://hub.example/fhir")
    again = Bundle.model_validate_json(bundle.model_dump_json())
    assert [e.resource.get_resource_type() for e in again.entry] == [
        "Group",
        "Patient",
        "Patient",
        "RelatedPerson",
    ]
    patient = convert.patient(HOUSEHOLD["members"][0])
    systems = [i.system for i in patient.identifier]
    assert systems == [
        "https://socialregistry.example/id/national_id",
        "https://socialregistry.example/id/program_beneficiary_id",
    ]


def test_deeply_nested_envelopes_are_refused_without_recursion():
    header = request_header("search", sender_id="s")
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(EnvelopeError) as refused:
        parse_envelope({"header": header, "message": deep}, "search")
    assert "deeper" in refused.value.message


def test_reg_records_are_read_as_object_or_array():
    from standards.dci.sr_record import reg_records_list

    one = {"group_size": 1}
    assert reg_records_list({"reg_records": one}) == [one]
    assert reg_records_list({"reg_records": [one, "junk", one]}) == [one, one]
    assert reg_records_list({"reg_records": "x"}) == [] == reg_records_list(None)


# --------------------------------------------------------------------------- our DCI schemas


def test_our_schemas_are_valid_draft_2020_12_and_all_refs_resolve():
    from jsonschema import Draft202012Validator
    from referencing.exceptions import Unresolvable

    names = validation.schema_names()
    assert {"envelope.json", "ack.json", "error.json", "notify.json"} <= set(names)
    for name in names:
        Draft202012Validator.check_schema(validation.schema(name))
    # Every endpoint schema compiles and resolves its refs (an unresolvable ref raises).
    try:
        for path in validation.REQUESTS:
            assert validation.request_problems(path, {"header": {}, "message": {}})
        for path in validation.ANSWERS:
            assert validation.answer_problems(path, {"header": {}})
    except Unresolvable as error:  # pragma: no cover - the failure message is the point
        pytest.fail(f"unresolvable $ref in our DCI schemas: {error}")


def _search(query_type: str, query: object, **extra: object) -> dict:
    header = request_header("search", sender_id="s")
    item = {
        "reference_id": "r1",
        "timestamp": "2025-06-01T10:00:00Z",
        "search_criteria": {"query_type": query_type, "query": query, **extra},
    }
    return {
        "signature": "x",
        "header": header,
        "message": {"transaction_id": "t", "search_request": [item]},
    }


def _txn(**request: object) -> dict:
    header = request_header("txn-status", sender_id="s")
    body = {
        "reference_id": "r",
        "txn_type": "search",
        "attribute_type": "transaction_id",
        "attribute_value": "t",
        **request,
    }
    return {"header": header, "message": {"transaction_id": "t", "txnstatus_request": body}}


def _predicate(operator: str, value: object) -> list:
    return [
        {
            "seq_num": 1,
            "expression1": {
                "attribute_name": "age",
                "operator": operator,
                "attribute_value": value,
            },
        }
    ]


# (name, spec path, body, accepted): requests, the variants we tolerate and what we refuse.
REQUEST_CASES = [
    (
        "idtype-value",
        "/registry/sync/search",
        _search("idtype-value", {"type": "UIN", "value": "1"}),
        True,
    ),
    (
        "expression wrapper",
        "/registry/search",
        _search(
            "expression",
            {
                "type": "t",
                "value": {"expression": {"collection": "Group", "query": {"age": {"$lt": 5}}}},
            },
        ),
        True,
    ),
    (
        "bare expression",
        "/registry/search",
        _search("expression", {"$or": [{"group_size": {"$gt": 3}}]}),
        True,
    ),
    ("integer value", "/registry/search", _search("predicate", _predicate("ge", 60)), True),
    (
        "in with a list",
        "/registry/search",
        _search("predicate", _predicate("in", ["1", "2"])),
        True,
    ),
    (
        "one predicate object",
        "/registry/search",
        _search(
            "predicate",
            {
                "expression1": {
                    "attribute_name": "sex",
                    "operator": "eq",
                    "attribute_value": "female",
                }
            },
        ),
        True,
    ),
    (
        "sort, page, consent",
        "/registry/search",
        _search(
            "expression",
            {"a": 1},
            sort=[{"attribute_name": "a", "sort_order": "desc"}],
            pagination={"page_size": 5, "page_number": 2},
            consent={},
            authorize={},
        ),
        True,
    ),
    ("bad operator", "/registry/search", _search("predicate", _predicate("like", "x")), False),
    ("null value", "/registry/search", _search("predicate", _predicate("eq", None)), False),
    ("bad query_type", "/registry/search", _search("graphql", {"a": 1}), False),
    ("query a string", "/registry/search", _search("expression", "age < 5"), False),
    (
        "bad sort order",
        "/registry/search",
        _search("expression", {"a": 1}, sort=[{"attribute_name": "a", "sort_order": "up"}]),
        False,
    ),
    (
        "page without size",
        "/registry/search",
        _search("expression", {"a": 1}, pagination={"page_number": 2}),
        False,
    ),
    ("no header", "/registry/search", {"message": {}}, False),
    (
        "header without sender",
        "/registry/search",
        {
            **_search("expression", {}),
            "header": {
                "message_id": "m",
                "message_ts": "2025-06-01T10:00:00Z",
                "action": "search",
                "total_count": 1,
            },
        },
        False,
    ),
    (
        "naive timestamp",
        "/registry/search",
        {
            **_search("expression", {}),
            "header": request_header("search", sender_id="s", message_ts="2025-06-01T10:00:00"),
        },
        False,
    ),
    (
        "wrong action",
        "/registry/search",
        {**_search("expression", {}), "header": request_header("subscribe", sender_id="s")},
        False,
    ),
    ("txn by id", "/registry/sync/txn/status", _txn(), True),
    (
        "txn by references",
        "/registry/txn/status",
        _txn(attribute_type="reference_id_list", attribute_value=["a", "b"]),
        True,
    ),
    (
        "txn numbers",
        "/registry/txn/status",
        _txn(attribute_type="reference_id_list", attribute_value=[1]),
        False,
    ),
    ("txn bad kind", "/registry/txn/status", _txn(attribute_type="phone"), False),
    (
        "unsubscribe",
        "/registry/unsubscribe",
        {
            "header": request_header("unsubscribe", sender_id="s"),
            "message": {
                "transaction_id": "t",
                "timestamp": "2025-06-01T10:00:00Z",
                "subscription_codes": ["c1"],
            },
        },
        True,
    ),
    (
        "unsubscribe no codes",
        "/registry/unsubscribe",
        {
            "header": request_header("unsubscribe", sender_id="s"),
            "message": {"transaction_id": "t", "timestamp": "2025-06-01T10:00:00Z"},
        },
        False,
    ),
    (
        "subscribe",
        "/registry/subscribe",
        {
            "header": request_header("subscribe", sender_id="s"),
            "message": {
                "transaction_id": "t",
                "subscribe_request": [
                    {
                        "reference_id": "r",
                        "timestamp": "2025-06-01T10:00:00Z",
                        "subscribe_criteria": {
                            "reg_event_type": "REGISTER",
                            "filter": {"group_size": 1},
                            "notify_record_type": "Group",
                            "frequency": {
                                "start_time": "2025-06-01T00:00:00Z",
                                "end_time": "2026-06-01T00:00:00Z",
                                "frequency": "0 * * * *",
                            },
                        },
                    }
                ],
            },
        },
        True,
    ),
    (
        "subscribe without filter",
        "/registry/subscribe",
        {
            "header": request_header("subscribe", sender_id="s"),
            "message": {
                "transaction_id": "t",
                "subscribe_request": [
                    {
                        "reference_id": "r",
                        "timestamp": "2025-06-01T10:00:00Z",
                        "subscribe_criteria": {
                            "reg_event_type": "REGISTER",
                            "notify_record_type": "Group",
                        },
                    }
                ],
            },
        },
        False,
    ),
]
# Where we knowingly accept more than the spec file (docs/standard-apis.md, "Our schemas").
OUR_EXTENSIONS = [
    ("txn unsubscribe", "/registry/txn/status", _txn(txn_type="unsubscribe")),
    (
        "txn subscription codes",
        "/registry/txn/status",
        _txn(attribute_type="subscription_code_list", attribute_value=["c1"]),
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "accepted"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES]
)
def test_our_request_schemas(name, path, body, accepted):
    problems = validation.request_problems(path, body)
    assert (problems == []) is accepted, problems
    assert all("1" not in p.message or "maxLength" in p.message for p in problems)  # no values


@pytest.mark.parametrize(
    ("name", "path", "body", "accepted"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES]
)
def test_the_spec_agrees_with_our_request_schemas(name, path, body, accepted):
    if not openapi.available():
        pytest.skip(openapi.SKIP_REASON)
    assert (openapi.request_problems(path, body) == []) is accepted


def test_our_extensions_beyond_the_spec_are_deliberate():
    for name, path, body in OUR_EXTENSIONS:
        assert validation.request_problems(path, body) == [], name
    if not openapi.available():
        pytest.skip(openapi.SKIP_REASON)
    for name, path, body in OUR_EXTENSIONS:
        assert openapi.request_problems(path, body) != [], f"{name}: the spec admits it now"


def test_answers_acks_and_errors():
    ack = {
        "message": {
            "ack_status": "ERR",
            "timestamp": "2025-06-01T10:00:00Z",
            "correlation_id": "c",
            "error": {"code": "err.request.bad", "message": "m"},
        }
    }
    assert validation.ack_problems(ack) == []
    bad_code = {"message": {**ack["message"], "error": {"code": "err.nope", "message": "m"}}}
    assert [p.path for p in validation.ack_problems(bad_code)] == ["$.message.error.code"]
    assert (
        validation.http_error_problems(
            {"errors": [{"code": "err.request.forbidden", "message": "m"}]}
        )
        == []
    )
    assert validation.http_error_problems({"errors": []}) != []
    header = {
        "message_id": "m",
        "message_ts": "2025-06-01T10:00:00Z",
        "action": "on-unsubscribe",
        "status": "rjct",
        "sender_id": "social-registry",
        "total_count": 1,
    }
    refusal = {
        "signature": "s",
        "header": {
            **header,
            "action": "on-search",
            "status_reason_code": "rjct.message_ts.invalid",
        },
    }
    assert validation.answer_problems("/registry/sync/search", refusal) == []
    unsub = {
        "header": header,
        "message": {
            "transaction_id": "t",
            "correlation_id": "c",
            "timestamp": "2025-06-01T10:00:00Z",
            "status": "rjct",
            "status_reason_code": "rjct.subscription_code.invalid",
            "subscription_status": [{"code": "c1", "status": "unsubscribe"}],
        },
    }
    assert validation.answer_problems("/registry/on-unsubscribe", unsub) == []
    assert validation.answer_problems("/registry/on-unsubscribe", {"header": header}) != []
    anonymous = {**unsub, "header": {k: v for k, v in header.items() if k != "sender_id"}}
    assert [str(p) for p in validation.answer_problems("/registry/on-unsubscribe", anonymous)] == [
        "$.header: 'sender_id' is a required property"
    ]
    wrong_action = {"header": {**header, "action": "on-search"}, "message": unsub["message"]}
    assert [
        p.path for p in validation.answer_problems("/registry/on-unsubscribe", wrong_action)
    ] == ["$.header.action"]
    if openapi.available():
        assert openapi.ack_problems(ack) == []
        assert openapi.answer_problems("/registry/sync/search", refusal) == []
        assert openapi.answer_problems("/registry/on-unsubscribe", unsub) == []


def test_the_spec_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(openapi.ENV_VAR, str(tmp_path))
    with pytest.raises(openapi.SpecNotFound, match="does not hold"):
        openapi.spec_dir()
    (tmp_path / openapi.SOCIAL).write_text("openapi: 3.0.3\n")
    (tmp_path / openapi.CORE).write_text("openapi: 3.0.3\n")
    assert openapi.spec_dir() == tmp_path
    monkeypatch.delenv(openapi.ENV_VAR)
    expected = openapi.DEFAULT_DIR if (openapi.DEFAULT_DIR / openapi.SOCIAL).is_file() else None
    if expected is not None and not (openapi.DEFAULT_DIR / openapi.CORE).is_file():
        expected = None
    assert openapi.spec_dir() == expected
    assert openapi.DEFAULT_DIR.parts[-2:] == ("shared", "dci-spec")


def test_the_server_runs_without_pyyaml():
    """PyYAML serves only the conformance checks; the DCI server must import and validate
    without it (it is not a runtime dependency)."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['yaml'] = None\n"
        "import hub.api.dci, hub.dci.server\n"
        "from standards.dci import validation\n"
        "assert validation.request_problems('/registry/search', {'header': {}, 'message': {}})\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


# --------------------------------------------------------------------------- compiled fast path


def _schema_nodes(node: object):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schema_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schema_nodes(value)


def test_no_schema_puts_rules_beside_a_ref():
    """The compiled validator reads schemas as draft 7, where keywords beside a ``$ref`` are
    ignored; in 2020-12 they apply. Our schemas must not depend on the difference."""
    for name in validation.schema_names():
        for node in _schema_nodes(validation.schema(name)):
            if "$ref" in node:
                extra = set(node) - {"$ref", "description", "title", "$comment"}
                assert not extra, f"{name}: rules {sorted(extra)} beside a $ref"


_BAD_VALUES = [
    None,
    True,
    7,
    -1,
    2.5,
    "",
    "x" * 1200,
    "2024-19-39T10:00:00Z",
    "2024-06-01T10:00:00",
    "2024-06-01T10:00:00+02:00",
    [],
    [1],
    {},
    {"unexpected": 1},
]


def _leaves(node: object, path: tuple = ()):
    """Every (path, value) of a JSON document, containers included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))


def _replaced(body: object, path: tuple, value: object) -> object:
    copy = json.loads(json.dumps(body))
    if not path:
        return value
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


_DELETE = object()


def _mutants(body: object, rng: random.Random, count: int):
    places = [path for path, _value in _leaves(body) if path]
    for _ in range(count):
        path = rng.choice(places)
        value = rng.choice([*_BAD_VALUES, _DELETE])
        if value is _DELETE and isinstance(path[-1], int):
            value = None
        yield _replaced(body, path, value)


@pytest.mark.parametrize(
    ("name", "path", "body", "accepted"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES]
)
def test_the_compiled_check_agrees_with_jsonschema(name, path, body, accepted):
    """A body the compiled validator passes is never one jsonschema would refuse (and the
    other way round): checked on each case and on 60 random breakages of it."""
    if validation.fastjsonschema is None:
        pytest.skip("fastjsonschema is not installed")
    rng = random.Random(name)
    reference = validation._validator("request", path)
    for candidate in [body, *_mutants(body, rng, 60)]:
        fast = validation._passes_fast("request", path, candidate)
        assert fast is (not list(reference.iter_errors(candidate))), (name, candidate)


def test_answers_pass_the_compiled_check_only_when_jsonschema_does():
    if validation.fastjsonschema is None:
        pytest.skip("fastjsonschema is not installed")
    ack = {
        "message": {
            "ack_status": "ACK",
            "timestamp": "2025-06-01T10:00:00Z",
            "correlation_id": "c",
        }
    }
    reference = validation._validator("file", "ack.json")
    rng = random.Random(5)
    for candidate in [ack, *_mutants(ack, rng, 80)]:
        fast = validation._passes_fast("file", "ack.json", candidate)
        assert fast is (not list(reference.iter_errors(candidate))), candidate


def test_every_endpoint_schema_compiles_to_a_fast_check():
    """A schema fastjsonschema could not compile would silently fall back to jsonschema (slow)."""
    if validation.fastjsonschema is None:
        pytest.skip("fastjsonschema is not installed")
    keys = [("request", path) for path in validation.REQUESTS]
    keys += [("answer", path) for path in validation.ANSWERS]
    keys += [("file", name) for name in ("ack.json", "error.json")]
    for kind, key in keys:
        assert validation._fast_check(kind, key) is not None, (kind, key)
