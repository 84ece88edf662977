"""Resolving partner references to registered people, and the review queue (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from registry_core.service import Source

SURVEY = Source("field_survey", "f-1", datetime(2026, 1, 5, tzinfo=UTC))


def register(registry, members):
    return registry.register_household(
        {"admin_area_code": "R01-D01-L001", "address": "4 Baobab Road", "members": members},
        SURVEY,
    ).record


def person(given, family, birth, sex="female", relationship="head", ids=()):
    record = {
        "given_name": given,
        "family_name": family,
        "birth_date": birth,
        "sex": sex,
        "relationship": relationship,
    }
    if ids:
        record["identifiers"] = [{"system": s, "value": v} for s, v in ids]
    return record


def test_identifier_first_then_matcher(registry):
    household = register(
        registry,
        [
            person("Wanjiru", "Kamau", "1979-03-14", ids=[("national_id", "5551234567")]),
            person("Otieno", "Kamau", "2004-11-02", "male", "child"),
        ],
    )
    head_id, child_id = (m["id"] for m in household["members"])
    by_id = registry.resolve({"identifiers": [{"system": "national_id", "value": "555-123-4567"}]})
    assert (by_id.outcome, str(by_id.person_id), by_id.via) == ("match", head_id, "identifier")
    # A typo in the given name and no identifier: the matcher still finds the child.
    noisy = registry.resolve(
        {"given_name": "Otieon", "family_name": "Kamau", "birth_date": "2004-11-02", "sex": "male"},
        {"address": "4 Baobab Road", "admin_area_code": "R01-D01-L001"},
    )
    assert noisy.outcome == "match" and str(noisy.person_id) == child_id and noisy.via == "matcher"
    stranger = registry.resolve(
        {
            "given_name": "Zawadi",
            "family_name": "Mwangi",
            "birth_date": "1990-01-01",
            "sex": "female",
        }
    )
    assert stranger.outcome == "no_match" and stranger.person_id is None
    too_little = registry.resolve({"given_name": "Otieno"})
    assert too_little.outcome == "no_match"


def test_identifiers_of_different_people_go_to_review(registry):
    first = register(
        registry, [person("Amani", "Njoroge", "1980-01-01", ids=[("national_id", "1111111111")])]
    )
    second = register(
        registry, [person("Baraka", "Odhiambo", "1981-02-02", "male", ids=[("tax_id", "T-777")])]
    )
    mixed = registry.resolve(
        {
            "identifiers": [
                {"system": "national_id", "value": "1111111111"},
                {"system": "tax_id", "value": "T777"},
            ]
        }
    )
    assert mixed.outcome == "review" and mixed.person_id is None
    assert {c for c, _ in mixed.candidates} == {first["head_person_id"], second["head_person_id"]}


def test_twins_are_ambiguous_not_merged(registry):
    register(
        registry,
        [
            person("Amina", "Hassan", "1985-05-05"),
            person("Juma", "Hassan", "2015-07-07", "male", "child"),
            person("Jumaa", "Hassan", "2015-07-07", "male", "child"),
        ],
    )
    decision = registry.resolve(
        {"given_name": "Juma", "family_name": "Hassan", "birth_date": "2015-07-07", "sex": "male"}
    )
    assert decision.outcome == "review" and decision.person_id is None
    assert len(decision.candidates) == 2


def test_review_queue_is_sealed_and_idempotent_per_message(registry, db_engine):
    record = {
        "child": {
            "given_name": "Neema",
            "identifiers": [{"system": "birth_registration", "value": "BR2026-00042"}],
        }
    }
    source = Source("civil_registry", "bundle-9")
    first = registry.queue_review(
        kind="birth",
        reason="mother not registered",
        record=record,
        candidates=[],
        source=source,
        message_id="m-1",
    )
    again = registry.queue_review(
        kind="birth",
        reason="mother not registered",
        record=record,
        candidates=[],
        source=source,
        message_id="m-1",
    )
    assert first == again
    items, total = registry.list_reviews()
    assert total == 1 and items[0]["record"] == record and items[0]["kind"] == "birth"
    with db_engine.connect() as conn:
        raw = repr(conn.execute(text("SELECT * FROM match_reviews")).all())
    assert "BR2026" not in raw and "Neema" not in raw
