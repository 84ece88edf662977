"""CloudEvents envelopes: building, serialising, and refusing bad ones with a path and reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from standards import cloudevents
from standards.cloudevents import (
    EnvelopeError,
    build_event,
    event_type,
    format_time,
    parse_envelope,
    routing_key_of,
    to_json_bytes,
    validate_event,
)
from standards.validation import violations


def good(**changes: Any) -> dict[str, Any]:
    event = build_event(
        type="person.died",
        source="/srhub/registry",
        subject="person/8f0c",
        data={"person_id": "8f0c", "death_date": "2024-05-01"},
        time=datetime(2024, 5, 2, 10, 30, tzinfo=UTC),
    )
    event.update(changes)
    return event


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def test_build_serialise_parse_round_trip() -> None:
    event = good()
    assert event["specversion"] == "1.0"
    assert event["type"] == "org.socialregistry.person.died"
    assert event["datacontenttype"] == "application/json"
    assert event["time"] == "2024-05-02T10:30:00Z"
    assert len(event["id"]) == 36
    raw = to_json_bytes(event)
    assert b" " not in raw.replace(b"/srhub/registry", b"")  # compact
    assert parse_envelope(raw) == event


def test_ids_are_unique_and_full_types_are_kept() -> None:
    first, second = good(), good()
    assert first["id"] != second["id"]
    explicit = build_event(type="org.socialregistry.consent.granted", source="/x", data={})
    assert explicit["type"] == "org.socialregistry.consent.granted"
    assert "subject" not in explicit


def test_time_is_rfc3339_utc_and_naive_times_are_refused() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2024, 1, 1, 12, 0, tzinfo=plus_two)) == "2024-01-01T10:00:00Z"
    assert format_time(datetime(2024, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)).endswith(".005000Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2024, 1, 1))


def test_routing_key_and_type_are_inverse() -> None:
    assert routing_key_of(event_type("household.member_added")) == "household.member_added"
    with pytest.raises(EnvelopeError) as caught:
        routing_key_of("com.example.person.died")
    assert caught.value.path == "$.type"


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        (b"\xff\xfe", "$", "not UTF-8"),
        (b"{not json", "$", "not JSON"),
        (b"[1, 2]", "$", "JSON object"),
        (b"[" * 100_000, "$", "nested too deeply"),
        (body({k: v for k, v in good().items() if k != "id"}), "$.id", "is required"),
        (body(good(specversion="0.3")), "$.specversion", "must be '1.0'"),
        (body(good(type="person.died")), "$.type", "expected form"),
        (body(good(type="org.socialregistry.Person Died")), "$.type", "expected form"),
        (body(good(time="2024-02-30T00:00:00Z")), "$.time", "date-time"),
        (body(good(time="2024-02-03 10:00:00")), "$.time", ""),
        (body(good(time="2024-02-03T10:00:00")), "$.time", ""),  # no offset
        (body(good(datacontenttype="text/xml")), "$.datacontenttype", "application/json"),
        (body(good(data="<xml/>")), "$.data", "object"),
        (body(good(id="")), "$.id", "minLength"),
        (body(good(subject=5)), "$.subject", "type"),
        (body(good(Ext="x")), "$", "unknown field(s) Ext"),
        (body(good(data_base64="AAAA")), "$", "unknown field(s) data_base64"),
        (body(good(traceparent={"nested": True})), "$.traceparent", "type"),
    ],
)
def test_invalid_envelopes_name_the_path_and_reason(raw: bytes, path: str, fragment: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(raw)
    assert caught.value.path == path
    assert fragment in caught.value.reason
    assert str(caught.value).startswith(f"invalid CloudEvents envelope at {path}:")


def test_extensions_with_lowercase_names_and_scalar_values_are_allowed() -> None:
    event = good(traceparent="00-abc-def-01", partition=3, replayed=True)
    assert parse_envelope(to_json_bytes(event))["partition"] == 3


def test_errors_do_not_echo_the_offending_value() -> None:
    secret = "UIN-4711-0815-" + "9" * 200  # too long for an id, and personal
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(body(good(id=secret)))
    assert "4711" not in str(caught.value)


def test_oversized_bodies_are_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cloudevents, "MAX_ENVELOPE_BYTES", 100)
    with pytest.raises(EnvelopeError, match="larger than 100 bytes"):
        parse_envelope(to_json_bytes(good()))


def test_several_problems_are_counted() -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(b"{}")
    assert "more problem(s)" in caught.value.reason


@pytest.mark.parametrize(
    "event",
    [
        good(),
        good(time="2024-05-02T10:30:00.123456789+05:30"),
        good(subject=""),
        good(extra_ok="x"),
        good(specversion=1.0),
        good(id=None),
        good(data=[]),
        good(dataschema="https://schemas.socialregistry.example/v1/events/person.died.json"),
        {"specversion": "1.0"},
    ],
)
def test_fast_path_agrees_with_the_reference_validator(event: dict[str, Any]) -> None:
    reference_ok = not violations("cloudevent.json", event)
    try:
        validate_event(event)
        fast_ok = True
    except EnvelopeError:
        fast_ok = False
    assert fast_ok == reference_ok


def test_one_builder_one_time_format_for_every_event_the_hub_makes() -> None:
    """Outbox rows (relay, events API, re-drives), raw partner records and each subscriber's
    copy all come from ``build_event``: the same attributes, the same time format."""
    from types import SimpleNamespace

    from connectors.base.envelope import raw_event
    from connectors.base.records import RawRecord
    from hub.pipeline.relay import message_for
    from registry_core.outbox import to_cloudevent
    from standards.cloudevents import copy_event

    moment = datetime(2024, 5, 2, 12, 30, 0, 5000, tzinfo=timezone(timedelta(hours=2)))
    row = SimpleNamespace(
        event_id="7d0c0a53-6a30-4bd6-a1a7-0b5d6b1e5f10",
        source="/srhub/registry",
        type="org.socialregistry.person.died",
        routing_key="person.died",
        time=moment,
        subject="person/8f0c",
        data={"person_id": "8f0c"},
    )
    event = to_cloudevent(row)
    assert event["time"] == "2024-05-02T10:30:00.005000Z" == format_time(moment)
    assert json.loads(message_for(row).body) == event  # what the relay publishes
    assert validate_event(event) is event
    raw = raw_event("tax", RawRecord("income_row", {"a": 1}, source_id="f:1"), time=moment)
    assert raw["time"] == event["time"]
    copy = copy_event(event, subject="ref/1", data={"n": 1}, extensions={"srpersonal": False})
    assert {k: copy[k] for k in ("id", "type", "time", "source")} == {
        k: event[k] for k in ("id", "type", "time", "source")
    }
    assert (copy["subject"], copy["data"], copy["srpersonal"]) == ("ref/1", {"n": 1}, False)
    # A stored event is rebuilt as stored: a malformed type stays malformed (the relay
    # dead-letters it) instead of being quietly repaired.
    broken = to_cloudevent(SimpleNamespace(**{**vars(row), "type": "person.died"}))
    assert broken["type"] == "person.died"
    with pytest.raises(EnvelopeError):
        validate_event(broken)
