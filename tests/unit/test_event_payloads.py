"""Every registry event's data is built by one payload class that agrees with its schema.

Why: subscribers validate event data against ``standards/schemas/events/<type>.json``. The
payload classes are the only place the registry builds that data, so holding each class
against its schema here (same property names, the same optional ones, output valid both with
and without the optional facts) catches a drift before any service runs.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import pytest

from registry_core.outbox import EVENT_TYPES
from registry_core.services.base import Source
from registry_core.services.events import (
    PAYLOADS,
    EventPayload,
    HouseholdCreated,
    HouseholdUpdated,
    MemberRef,
    PersonBorn,
)
from standards.validation import SchemaViolation, validate

SOURCE = Source("civil_registry", "BRN-1")

# A value for each field name, by what the schemas allow; per event type where they differ.
VALUES: dict[str, Any] = {
    "household_id": uuid.UUID("11111111-1111-4111-8111-111111111111"),
    "person_id": uuid.UUID("22222222-2222-4222-8222-222222222222"),
    "mother_person_id": uuid.UUID("33333333-3333-4333-8333-333333333333"),
    "consent_id": uuid.UUID("44444444-4444-4444-8444-444444444444"),
    "registry_number": "SR-ABC",
    "members": (
        MemberRef(person_id=uuid.UUID("22222222-2222-4222-8222-222222222222"), relationship="head"),
    ),
    "admin_area_code": "R01-D02",
    "source": SOURCE,
    "version": 3,
    "status": "needs_review",
    "changed_fields": ("status",),
    "relationship": "child",
    "start_date": date(2026, 1, 2),
    "end_date": date(2026, 1, 3),
    "model": "pmt-v1",
    "score": 0.42,
    "previous_score": 0.5,
    "birth_date": date(2026, 1, 1),
    "death_date": date(2026, 1, 4),
    "sex": "female",
    "identifier_systems": {"crvs_tracking_id", "birth_registration"},
    "place_admin_area_code": "R01-D03",
    "provisional": True,
    "was_head": True,
    "verified_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
    "checked_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
    "matched_fields": ("given_name",),
    "mismatched_fields": ("birth_date",),
    "program_code": "CCT-01",
    "purpose": "enrollment",
    "channel": "field_survey",
    "granted_at": datetime(2026, 1, 6, tzinfo=UTC),
    "revoked_at": datetime(2026, 1, 7, tzinfo=UTC),
    "due_on": date(2028, 1, 6),
    "last_certified_at": datetime(2026, 1, 6, 9, 30, tzinfo=UTC),
    "merged_person_id": uuid.UUID("55555555-5555-4555-8555-555555555555"),
    "restored_person_id": uuid.UUID("55555555-5555-4555-8555-555555555555"),
    "survivor_person_id": uuid.UUID("22222222-2222-4222-8222-222222222222"),
    "merge_id": uuid.UUID("66666666-6666-4666-8666-666666666666"),
    "household_ids": (uuid.UUID("11111111-1111-4111-8111-111111111111"),),
    "merged_at": datetime(2026, 1, 8, 12, 0, tzinfo=UTC),
    "unmerged_at": datetime(2026, 1, 9, 12, 0, tzinfo=UTC),
}
PER_TYPE: dict[str, dict[str, Any]] = {
    "household.updated": {"reason": "head_died"},
    "household.member_added": {"reason": "birth"},
    "household.member_removed": {"reason": "death"},
    "household.eligibility_changed": {
        "program_code": "cct-01",
        "eligible": True,
        "previous_eligible": None,
        "rule_version": 2,
        "model_version": 3,
    },
    "person.verification_failed": {"reason": "the birth date differs"},
}


def _schema(event_type: str) -> dict[str, Any]:
    text = resources.files("standards.schemas").joinpath(f"events/{event_type}.json").read_text()
    return json.loads(text)


def _init_fields(cls: type[EventPayload]) -> list[str]:
    return [f.name for f in fields(cls) if f.init]


def _build(cls: type[EventPayload], *, optional: bool) -> EventPayload:
    values = {**VALUES, **PER_TYPE.get(cls.TYPE, {})}
    chosen = {
        name: values[name] for name in _init_fields(cls) if optional or name not in cls.OPTIONAL
    }
    return cls(**chosen)


def test_one_payload_class_per_event_type_and_schema():
    schema_files = {
        p.name.removesuffix(".json")
        for p in resources.files("standards.schemas").joinpath("events").iterdir()
        if p.name.endswith(".json")
    }
    assert set(PAYLOADS) == set(EVENT_TYPES) == schema_files
    for event_type, cls in PAYLOADS.items():
        assert event_type == cls.TYPE


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_payload_fields_are_the_schema_properties(event_type: str):
    cls = PAYLOADS[event_type]
    schema = _schema(event_type)
    properties = set(schema["properties"])
    assert {f.name for f in fields(cls)} == properties
    # Only what the schema makes optional may be left out (consents always name both
    # subjects, one of them null: optional there, yet present).
    assert set(cls.OPTIONAL) <= properties - set(schema["required"])


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
@pytest.mark.parametrize("optional", [True, False], ids=["all-facts", "required-only"])
def test_payload_data_is_valid_against_its_schema(event_type: str, optional: bool):
    payload = _build(PAYLOADS[event_type], optional=optional)
    data = payload.to_data()
    validate(f"events/{event_type}.json", data)
    json.dumps(data)  # plain JSON, nothing left to convert
    left_out = set(_schema(event_type)["properties"]) - set(data)
    assert left_out == (set() if optional else set(payload.OPTIONAL))
    kind, key = payload.SUBJECT
    assert payload.subject == f"{kind}/{data[key]}"


def test_values_take_their_json_form():
    born = _build(PersonBorn, optional=False)
    data = born.to_data()
    assert data["person_id"] == "22222222-2222-4222-8222-222222222222"
    assert data["birth_date"] == "2026-01-01"
    assert data["identifier_systems"] == ["birth_registration", "crvs_tracking_id"]  # sorted
    assert data["source"] == {"system": "civil_registry", "record_id": "BRN-1"}
    assert "provisional" not in data  # absent means registered, never false
    created = _build(HouseholdCreated, optional=True).to_data()
    assert created["member_count"] == 1
    assert created["members"] == [
        {"person_id": "22222222-2222-4222-8222-222222222222", "relationship": "head"}
    ]


def test_times_are_utc_with_z_and_naive_times_are_refused():
    cls = PAYLOADS["person.verified"]
    plus_two = timezone(timedelta(hours=2))
    local = cls(
        **{
            **{n: VALUES[n] for n in _init_fields(cls)},
            "verified_at": datetime(2026, 1, 5, 12, 0, tzinfo=plus_two),
        }
    )
    assert local.to_data()["verified_at"] == "2026-01-05T10:00:00Z"
    naive = cls(
        **{**{n: VALUES[n] for n in _init_fields(cls)}, "verified_at": datetime(2026, 1, 5)}
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.to_data()


def test_a_payload_outside_its_schema_is_refused():
    """The schema check is real: an update naming no changed field breaks ``minItems``."""
    empty = _build(HouseholdUpdated, optional=False)
    broken = HouseholdUpdated(
        **{**{n: getattr(empty, n) for n in _init_fields(HouseholdUpdated)}, "changed_fields": ()}
    )
    with pytest.raises(SchemaViolation) as refused:
        validate("events/household.updated.json", broken.to_data())
    assert [v.path for v in refused.value.violations] == ["$.changed_fields"]
