"""Registry services against real databases (SQLite and PostgreSQL): the exact outbox events each
change writes, provenance and precedence, identifier protection, and optimistic locking."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from registry_core.errors import (
    BusinessRuleViolation,
    ConflictError,
    DuplicateIdentifier,
    InvalidRecord,
    NotFound,
)
from registry_core.models import OutboxEvent
from registry_core.service import Source
from standards.validation import SchemaViolation, violations

SURVEY = Source("field_survey", "form-1", datetime(2026, 1, 5, 10, 0, tzinfo=UTC))
CRVS = Source("civil_registry", "reg-9")


def household_payload() -> dict:
    return {
        "admin_area_code": "R01-D02-L003",
        "address": "12 Mango Lane",
        "location": {"lat": -1.25, "lon": 36.8},
        "members": [
            {
                "given_name": "Amina",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "1985-04-02",
                "relationship": "head",
                "identifiers": [{"system": "national_id", "value": "1234567897"}],
            },
            {
                "given_name": "Brian",
                "family_name": "Otieno",
                "sex": "male",
                "birth_date": "1983-01-20",
                "relationship": "spouse",
                "identifiers": [
                    {"system": "national_id", "value": "2234567891"},
                    {"system": "tax_id", "value": "T-99812"},
                ],
            },
            {
                "given_name": "Cleo",
                "family_name": "Otieno",
                "sex": "female",
                "birth_date": "2012-09-09",
                "relationship": "child",
            },
        ],
        "attributes": [
            {
                "domain": "income",
                "name": "employment",
                "period": "2025",
                "value": 5400,
                "unit": "XCU",
                "member_index": 1,
            },
            {"domain": "dwelling", "name": "roof_material", "value": "iron_sheet"},
        ],
    }


def outbox(registry) -> list[OutboxEvent]:
    return registry.outbox_since(0, limit=1000)


def members_by_name(record: dict) -> dict[str, dict]:
    return {m["given_name"]: m for m in record["members"]}


def test_register_household_writes_exactly_household_created(registry):
    result = registry.register_household(household_payload(), SURVEY)
    record = result.record
    assert violations("household.json", record) == []
    assert record["version"] == 1 and record["status"] == "active"
    people = members_by_name(record)
    assert record["head_person_id"] == people["Amina"]["id"]
    assert people["Brian"]["identifiers"] == [
        {"system": "national_id", "value": "2234567891", "verified": False},
        {"system": "tax_id", "value": "T99812", "verified": False},
    ]
    assert {(a["name"], a.get("member_index")) for a in record["attributes"]} == {
        ("employment", 1),
        ("roof_material", None),
    }

    events = outbox(registry)
    assert [e.routing_key for e in events] == ["household.created"]
    event = events[0]
    assert event.type == "org.socialregistry.household.created"
    assert event.subject == f"household/{record['id']}"
    assert event.data == {
        "household_id": record["id"],
        "registry_number": record["registry_number"],
        "member_count": 3,
        "members": [
            {"person_id": people["Amina"]["id"], "relationship": "head"},
            {"person_id": people["Brian"]["id"], "relationship": "spouse"},
            {"person_id": people["Cleo"]["id"], "relationship": "child"},
        ],
        "admin_area_code": "R01-D02-L003",
        "source": {"system": "field_survey", "record_id": "form-1"},
    }


def test_identifiers_are_never_stored_in_clear(registry, db_engine):
    registry.register_household(household_payload(), SURVEY)
    with db_engine.connect() as conn:
        dump = " ".join(
            repr(row)
            for table in ("identifiers", "field_assertions", "outbox", "persons")
            for row in conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
        )
    assert "1234567897" not in dump and "2234567891" not in dump
    # The short one as a word of its own: the dump's UUIDs and hex look-up hashes may hold
    # any five digits.
    assert not re.search(r"(?<![0-9A-Za-z])99812(?![0-9A-Za-z])", dump)
    found = registry.find_person_by_identifier("national_id", "1234-567-897")
    assert found is not None and found["given_name"] == "Amina"
    assert registry.find_person_by_identifier("tax_id", "1234567897") is None


def test_duplicate_identifier_is_refused_without_revealing_it(registry):
    registry.register_household(household_payload(), SURVEY)
    second = household_payload()
    second["members"] = [dict(second["members"][0], given_name="Other")]
    with pytest.raises(DuplicateIdentifier) as info:
        registry.register_household(second, SURVEY)
    assert "1234567897" not in str(info.value)
    assert len(outbox(registry)) == 1  # the failed transaction wrote no event


def test_invalid_record_lists_every_violation_with_paths(registry):
    bad = household_payload()
    bad["members"][0]["birth_date"] = "1985-13-40"
    bad["members"][1]["sex"] = "M"
    bad["id"] = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(SchemaViolation) as info:
        registry.register_household(bad, SURVEY)
    paths = {(v.path, v.rule) for v in info.value.violations}
    assert paths == {
        ("$.members[0].birth_date", "format"),
        ("$.members[1].sex", "enum"),
        ("$.id", "readOnly"),
    }
    unknown_system = household_payload()
    unknown_system["members"][2]["identifiers"] = [{"system": "passport_xx", "value": "P1"}]
    with pytest.raises(InvalidRecord) as info2:
        registry.register_household(unknown_system, SURVEY)
    assert info2.value.violations[0].path == "$.members[2].identifiers[0].system"
    assert outbox(registry) == []


def test_birth_joins_mothers_household_and_is_idempotent(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    mother = members_by_name(record)["Amina"]
    child = {
        "given_name": "Dan",
        "family_name": "Otieno",
        "sex": "male",
        "birth_date": "2026-10-01",
        "identifiers": [{"system": "birth_registration", "value": "BRN-2026-0001"}],
    }
    result = registry.record_birth(mother["id"], child, CRVS)
    assert result.events == ["person.born", "household.member_added"]
    born = result.record
    events = outbox(registry)[1:]
    assert [(e.routing_key, e.subject) for e in events] == [
        ("household.member_added", f"household/{record['id']}"),
        ("person.born", f"person/{born['id']}"),
    ]
    assert events[0].data == {
        "household_id": record["id"],
        "person_id": born["id"],
        "relationship": "child",
        "start_date": "2026-10-01",
        "reason": "birth",
        "admin_area_code": "R01-D02-L003",
        "source": {"system": "civil_registry", "record_id": "reg-9"},
    }
    assert events[1].data == {
        "person_id": born["id"],
        "household_id": record["id"],
        "mother_person_id": mother["id"],
        "birth_date": "2026-10-01",
        "sex": "male",
        "identifier_systems": ["birth_registration"],
        "admin_area_code": "R01-D02-L003",
        "source": {"system": "civil_registry", "record_id": "reg-9"},
    }
    household = registry.get_household(record["id"])
    assert household["version"] == 2
    assert members_by_name(household)["Dan"]["relationship"] == "child"

    again = registry.record_birth(mother["id"], child, CRVS)
    assert again.events == [] and again.record["id"] == born["id"]
    assert len(outbox(registry)) == 3


def test_death_of_member_closes_membership_once(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    cleo = members_by_name(record)["Cleo"]
    result = registry.record_death(cleo["id"], "2026-11-01", CRVS, "DRN-77")
    assert result.events == ["person.died", "household.member_removed"]
    assert result.record["is_deceased"] is True and result.record["death_date"] == "2026-11-01"
    assert result.record["memberships"][0]["end_reason"] == "death"
    died, removed = outbox(registry)[1:]
    assert died.routing_key == "person.died" and died.data == {
        "person_id": cleo["id"],
        "household_id": record["id"],
        "death_date": "2026-11-01",
        "was_head": False,
        "identifier_systems": ["death_registration"],
        "admin_area_code": "R01-D02-L003",
        "source": {"system": "civil_registry", "record_id": "reg-9"},
    }
    assert removed.data["reason"] == "death" and removed.data["end_date"] == "2026-11-01"
    household = registry.get_household(record["id"])
    assert "Cleo" not in members_by_name(household) and household["status"] == "active"

    assert registry.record_death(cleo["id"], "2026-11-01", CRVS, "DRN-77").events == []
    assert len(outbox(registry)) == 3


def test_death_of_head_flags_household_for_review(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    amina = members_by_name(record)["Amina"]
    result = registry.record_death(amina["id"], date(2026, 11, 2), CRVS)
    assert result.events == ["person.died", "household.member_removed", "household.updated"]
    updated = outbox(registry)[-1]
    assert updated.data["status"] == "needs_review" and updated.data["reason"] == "head_died"
    assert updated.data["changed_fields"] == ["status"]
    assert outbox(registry)[1].data["was_head"] is True
    household = registry.get_household(record["id"])
    assert household["status"] == "needs_review"
    brian = members_by_name(household)["Brian"]
    fixed = registry.set_head(
        record["id"], brian["id"], Source("registry_staff"), expected_version=household["version"]
    )
    assert fixed.record["status"] == "active" and fixed.record["head_person_id"] == brian["id"]


def test_a_household_whose_every_member_died_has_no_current_members(registry):
    """``members`` are the current members: empty once the only member died, and the record
    still keeps the canonical schema; the death is on the person's membership."""
    alone = household_payload()
    alone["members"] = alone["members"][:1]
    alone["attributes"] = []
    record = registry.register_household(alone, SURVEY).record
    amina = record["members"][0]
    registry.record_death(amina["id"], date(2026, 11, 2), CRVS)
    household = registry.get_household(record["id"])
    assert household["members"] == []
    assert household["status"] == "needs_review"
    assert household["head_person_id"] == amina["id"]
    assert violations("household.json", household) == []
    (membership,) = registry.get_person(amina["id"])["memberships"]
    assert membership["household_id"] == record["id"]
    assert (membership["end_date"], membership["end_reason"]) == ("2026-11-02", "death")
    # Registering still needs a member: the head.
    with pytest.raises(InvalidRecord) as refused:
        registry.register_household({**alone, "members": []}, SURVEY)
    assert [(v.path, v.rule) for v in refused.value.violations] == [("$.members", "minItems")]


def test_death_in_the_future_or_before_birth_is_refused(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    cleo = members_by_name(record)["Cleo"]
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with pytest.raises(InvalidRecord):
        registry.record_death(cleo["id"], tomorrow, CRVS)
    with pytest.raises(InvalidRecord):
        registry.record_death(cleo["id"], "2001-01-01", CRVS)
    assert registry.get_person(cleo["id"])["is_deceased"] is False


def test_a_death_before_the_recorded_membership_start_ends_it_on_the_date_of_death(registry):
    # The survey listed Cleo on 2026-01-05; the civil registry says she died on 2025-12-20.
    record = registry.register_household(household_payload(), SURVEY).record
    cleo = members_by_name(record)["Cleo"]
    result = registry.record_death(cleo["id"], "2025-12-20", CRVS)
    [membership] = result.record["memberships"]
    assert (membership["start_date"], membership["end_date"]) == ("2026-01-05", "2025-12-20")
    assert outbox(registry)[-1].data["end_date"] == "2025-12-20"
    # Leaving for another reason never ends before the start: its end is a processing day.
    brian = members_by_name(record)["Brian"]
    registry.remove_member(record["id"], brian["id"], CRVS, end_date=date(2025, 6, 1))
    left = registry.get_person(brian["id"])["memberships"][0]
    assert (left["end_date"], left["end_reason"]) == ("2026-01-05", "left")


def test_a_death_delivered_again_with_its_number_or_a_new_date_is_kept_not_repeated(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    cleo = members_by_name(record)["Cleo"]
    tracking = [{"system": "crvs_tracking_id", "value": "D1TRACK"}]
    first = registry.record_death(cleo["id"], "2026-11-01", CRVS, identifiers=tracking)
    assert first.events == ["person.died", "household.member_removed"]
    again = registry.record_death(cleo["id"], "2026-11-01", CRVS, identifiers=tracking)
    assert again.events == []
    later = registry.record_death(
        cleo["id"], "2026-10-31", Source("civil_registry", "DRN-9"), "DRN-9", identifiers=tracking
    )
    assert later.events == []  # still one person.died
    assert {i["system"] for i in later.record["identifiers"]} == {
        "crvs_tracking_id",
        "death_registration",
    }
    assert later.record["death_date"] == "2026-10-31"
    assert later.record["memberships"][0]["end_date"] == "2026-10-31"
    assert [e.routing_key for e in outbox(registry)].count("person.died") == 1
    # The tracking id now names Cleo: a death of someone else under it is refused.
    amina = members_by_name(record)["Amina"]
    with pytest.raises(BusinessRuleViolation, match="belongs to another person"):
        registry.record_death(amina["id"], "2026-11-01", CRVS, identifiers=tracking)


def test_a_birth_is_found_again_by_any_of_its_ids_and_conflicting_ids_are_refused(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    mother = members_by_name(record)["Amina"]
    child = {
        "given_name": "Dan",
        "family_name": "Otieno",
        "sex": "male",
        "birth_date": "2026-10-01",
        "identifiers": [{"system": "crvs_tracking_id", "value": "B1TRACK"}],
    }
    born = registry.record_birth(mother["id"], child, Source("civil_registry", "B1TRACK"))
    with_number = {
        **child,
        "identifiers": [*child["identifiers"], {"system": "birth_registration", "value": "BRN-1"}],
    }
    again = registry.record_birth(None, with_number, CRVS)  # the mother is not needed now
    assert again.record["id"] == born.record["id"]
    assert again.events == ["household.updated"]
    with pytest.raises(BusinessRuleViolation, match="not known"):
        registry.record_birth(
            None,
            {**child, "identifiers": [{"system": "crvs_tracking_id", "value": "B2OTHER"}]},
            CRVS,
        )
    cleo = members_by_name(record)["Cleo"]
    registry.update_person(
        cleo["id"], {"identifiers": [{"system": "crvs_tracking_id", "value": "B3CLEO"}]}, CRVS
    )
    with pytest.raises(BusinessRuleViolation, match="belong to different people"):
        registry.record_birth(
            mother["id"],
            {
                **child,
                "identifiers": [
                    {"system": "crvs_tracking_id", "value": "B1TRACK"},
                    {"system": "crvs_tracking_id", "value": "B3CLEO"},
                ],
            },
            CRVS,
        )


def test_verification_success_and_failure_events(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    amina, brian = members_by_name(record)["Amina"], members_by_name(record)["Brian"]
    nid = Source("national_id", "txn-1", datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    ok = registry.record_verification(amina["id"], True, nid, matched_fields=["name", "dob"])
    assert ok.record["verification"] == {
        "status": "verified",
        "source": "national_id",
        "verified_at": "2026-11-20T09:30:00Z",
    }
    assert ok.record["identifiers"][0]["verified"] is True
    bad = registry.record_verification(
        brian["id"], False, nid, mismatched_fields=["dob"], reason="birth date does not match"
    )
    verified, failed = outbox(registry)[1:]
    assert verified.routing_key == "person.verified" and verified.data == {
        "person_id": amina["id"],
        "verified_at": "2026-11-20T09:30:00Z",
        "matched_fields": ["name", "dob"],
        "admin_area_code": "R01-D02-L003",
        "source": {"system": "national_id", "record_id": "txn-1"},
    }
    assert failed.routing_key == "person.verification_failed" and failed.data == {
        "person_id": brian["id"],
        "checked_at": "2026-11-20T09:30:00Z",
        "reason": "birth date does not match",
        "mismatched_fields": ["dob"],
        "admin_area_code": "R01-D02-L003",
        "source": {"system": "national_id", "record_id": "txn-1"},
    }
    assert bad.record["verification"]["status"] == "failed"
    assert registry.record_verification(amina["id"], True, nid).events == []


def test_update_follows_source_precedence_and_keeps_provenance(registry):
    record = registry.register_household(household_payload(), Source("self_declared")).record
    cleo = members_by_name(record)["Cleo"]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    first = registry.update_person(
        cleo["id"], {"birth_date": "2012-09-10"}, Source("civil_registry", "b-1", t0)
    )
    assert first.record["birth_date"] == "2012-09-10"
    assert first.events == ["household.updated"]
    assert outbox(registry)[-1].data["changed_fields"] == ["person.birth_date"]
    assert outbox(registry)[-1].data["person_id"] == cleo["id"]
    # A later self-declared value is kept as provenance but does not win.
    later = registry.update_person(
        cleo["id"],
        {"birth_date": "2013-01-01"},
        Source("self_declared", None, t0 + timedelta(days=30)),
    )
    assert later.record["birth_date"] == "2012-09-10" and later.events == []
    history = [p for p in registry.provenance("person", cleo["id"]) if p["field"] == "birth_date"]
    assert [(p["source_system"], p["value"], p["current"]) for p in history] == [
        ("self_declared", "2012-09-09", False),
        ("civil_registry", "2012-09-10", True),
        ("self_declared", "2013-01-01", False),
    ]


def test_stale_version_is_refused(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    registry.update_household(
        record["id"], {"address": "1 New Road"}, Source("registry_staff"), expected_version=1
    )
    with pytest.raises(ConflictError) as info:
        registry.update_household(
            record["id"], {"address": "2 Other Road"}, Source("registry_staff"), expected_version=1
        )
    assert info.value.current_version == 2
    assert registry.get_household(record["id"])["address"] == "1 New Road"


def test_concurrent_updates_one_wins_no_lost_update(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def worker(n: int) -> None:
        barrier.wait()
        try:
            registry.update_household(
                record["id"],
                {"address": f"{n} Race Street"},
                Source("registry_staff"),
                expected_version=1,
            )
            outcomes.append(f"ok:{n}")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("ok")]
    assert len(winners) == 1 and outcomes.count("conflict") == 3
    final = registry.get_household(record["id"])
    assert final["version"] == 2 and final["address"] == f"{winners[0][3:]} Race Street"
    assert [e.routing_key for e in outbox(registry)] == ["household.created", "household.updated"]


def test_members_added_and_removed_with_history(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    added = registry.add_member(
        record["id"],
        {
            "given_name": "Eve",
            "family_name": "Wanjiru",
            "sex": "female",
            "birth_date": "1950-02-02",
            "relationship": "parent",
        },
        SURVEY,
    )
    eve = members_by_name(added.record)["Eve"]
    assert added.events == ["household.member_added"]
    removed = registry.remove_member(record["id"], eve["id"], SURVEY, reason="left")
    assert "Eve" not in members_by_name(removed.record)
    person = registry.get_person(eve["id"])
    assert person["memberships"][0]["end_reason"] == "left"
    with pytest.raises(BusinessRuleViolation):
        registry.remove_member(record["id"], record["head_person_id"], SURVEY)
    with pytest.raises(NotFound):
        registry.remove_member(record["id"], eve["id"], SURVEY)
    kinds = [e.routing_key for e in outbox(registry)]
    assert kinds == ["household.created", "household.member_added", "household.member_removed"]


def test_consent_grant_and_revoke(registry):
    record = registry.register_household(household_payload(), SURVEY).record
    granted = registry.grant_consent(
        "CCT", "eligibility", "in_person", SURVEY, household_id=record["id"]
    )
    revoked = registry.revoke_consent(granted.record["consent_id"], SURVEY)
    assert revoked.events == ["consent.revoked"]
    assert registry.revoke_consent(granted.record["consent_id"], SURVEY).events == []
    kinds = [e.routing_key for e in outbox(registry)]
    assert kinds == ["household.created", "consent.granted", "consent.revoked"]


def test_attributes_update_emits_changed_facts_only(registry, db_engine):
    record = registry.register_household(household_payload(), SURVEY).record
    tax = Source("tax", "file-1")
    first = registry.record_attributes(
        record["id"],
        [
            {
                "domain": "income",
                "name": "employment",
                "period": "2025",
                "value": 6100,
                "member_index": 1,
            }
        ],
        tax,
    )
    assert first.events == ["household.updated"]
    assert outbox(registry)[-1].data["changed_fields"] == ["attributes.income.employment"]
    assert (
        registry.record_attributes(
            record["id"],
            [
                {
                    "domain": "income",
                    "name": "employment",
                    "period": "2025",
                    "value": 6100,
                    "member_index": 1,
                }
            ],
            tax,
        ).events
        == []
    )
    with db_engine.connect() as conn:
        rows = conn.execute(
            select(text("count(*)")).select_from(text("socio_economic_attributes"))
        ).scalar()
    assert rows == 3  # survey employment, survey roof, tax employment: one fact per source


def test_within_an_outer_transaction_a_refused_record_rolls_back_alone(registry, db_engine):
    from registry_core.db import make_session_factory

    sessions = make_session_factory(db_engine)
    good = household_payload()
    bad = household_payload()
    bad["members"][0]["identifiers"] = [{"system": "no_such_system", "value": "X1"}]
    with sessions() as session, session.begin():
        bound = registry.within(session)
        first = bound.register_household(good, SURVEY)
        with pytest.raises(InvalidRecord):
            bound.register_household(bad, SURVEY)
        assert bound.get_household(first.record["id"])["id"] == first.record["id"]
    assert [e.routing_key for e in outbox(registry)] == ["household.created"]
    with sessions() as session:
        session.begin()
        other = household_payload()
        other["members"] = [dict(other["members"][2], relationship="head")]
        other["attributes"] = []
        registry.within(session).register_household(other, SURVEY)
        session.rollback()  # the caller's transaction decides: nothing of it remains
    assert len(outbox(registry)) == 1


def test_registering_reads_the_facts_once_and_deletes_no_match_keys(registry, db_engine):
    """A household's registration costs round trips per member, not per answer: the facts of
    the household are read once (not once per fact) and a new person has no match keys to
    delete (a field team's sync burst registers thousands: bench.intake)."""
    from sqlalchemy import event

    payload = household_payload()
    payload["attributes"] += [
        {"domain": "dwelling", "name": f"question_{n}", "value": n} for n in range(8)
    ]
    # The same fact twice in one record: the last value stands, in one row.
    payload["attributes"] += [
        {"domain": "asset", "name": "radio", "value": "no"},
        {"domain": "asset", "name": "radio", "value": "yes"},
    ]
    seen: list[str] = []

    def statement(_conn, _cursor, sql: str, *_rest) -> None:
        seen.append(" ".join(sql.split()).lower())

    event.listen(db_engine, "before_cursor_execute", statement)
    try:
        record = registry.register_household(payload, SURVEY).record
    finally:
        event.remove(db_engine, "before_cursor_execute", statement)
    # The look-ups of existing facts (by source); the record read afterwards is not one.
    lookups = [
        s
        for s in seen
        if s.startswith("select")
        and "from socio_economic_attributes" in s
        and "socio_economic_attributes.source_system =" in s
    ]
    assert len(lookups) == 1, lookups
    assert not [s for s in seen if s.startswith("delete from person_match_keys")]
    facts = {(a["domain"], a["name"]): a["value"] for a in record["attributes"]}
    assert facts[("asset", "radio")] == "yes" and facts[("dwelling", "question_7")] == 7
    assert len(record["attributes"]) == 2 + 8 + 1
    with db_engine.connect() as conn:
        keys = conn.execute(text("SELECT count(*) FROM person_match_keys")).scalar()
    assert keys and keys > 0  # new people still get their match keys


def test_area_prefixes_match_exactly_in_lists(registry) -> None:
    """The same area rule in every list (households, recertification): a prefix is a prefix
    of the code as written, whatever the database's LIKE thinks of case or wildcards."""
    record = registry.register_household(household_payload(), SURVEY).record
    area = record["admin_area_code"]
    assert registry.list_households(area_prefixes=[area[:3]])[1] == 1
    for wrong in (area[:3].lower(), "_" + area[1:3], "%"):
        assert registry.list_households(area_prefixes=[wrong])[1] == 0, wrong
    assert registry.list_households(area_prefixes=[])[1] == 0
