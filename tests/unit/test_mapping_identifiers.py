"""The mapping applies the country profile it is given: a bad identifier of someone the record
only mentions is dropped with a note, a bad identifier of the record's subject sends the record
to review, and neither is ever shown (only its system, the rule and where it was)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mappings.engine import IdentifierReview, MappingError, load_spec
from sandbox_mocks.population.ids import sandbox_profile
from standards.identifiers import default_profile, verhoeff_check_digit

GOOD = "683493142" + verhoeff_check_digit("683493142")
BAD = GOOD[:-1] + str((int(GOOD[-1]) + 1) % 10)  # one digit mistyped: the check digit fails
SANDBOX = sandbox_profile()

BIRTH: dict[str, Any] = {
    "registration_number": "BR-2024-0000 0001",
    "registration_date": "2024-05-02",
    "name": {"given_name": "Ama", "surname": "MENSAH"},
    "sex": "female",
    "birth_date": "2024-04-30",
    "identifier": [{"identifier_type": "BRN", "identifier_value": "BR-2024-0000 0001"}],
    "parent1_identifier": [{"identifier_type": "UIN", "identifier_value": GOOD}],
    "parent2_identifier": [{"identifier_type": "UIN", "identifier_value": BAD}],
    "reg_event_type": "live_birth",
}


def test_a_bad_optional_identifier_is_dropped_with_a_note() -> None:
    result = load_spec("civil_registry_dci_birth").map(BIRTH, SANDBOX)
    record = result.record
    assert record["registration_number"] == "BR202400000001"  # the profile's normalisation
    assert record["mother"]["identifiers"] == [{"system": "national_id", "value": GOOD}]
    assert "father" not in record  # the father's only fact was the refused number
    [note] = result.notes
    assert note.target == "father.identifiers[system=national_id].value"
    assert note.source_path == "$.parent2_identifier[0].identifier_value"
    assert note.rule == "identifier:check_digit"
    assert "national_id" in note.message and "Verhoeff" in note.message
    assert BAD not in json.dumps(note.as_dict())


def test_the_same_record_under_the_built_in_profile_keeps_the_number() -> None:
    result = load_spec("civil_registry_dci_birth").map(BIRTH, default_profile())
    assert result.notes == ()
    assert result.record["father"]["identifiers"] == [{"system": "national_id", "value": BAD}]
    # No profile given: the built-in one.
    assert load_spec("civil_registry_dci_birth").map(BIRTH).record == result.record


def test_a_bad_subject_identifier_sends_the_record_to_review_with_the_facts() -> None:
    record = copy.deepcopy(BIRTH)
    record["identifier"].append({"identifier_type": "UIN", "identifier_value": BAD})
    with pytest.raises(IdentifierReview) as caught:
        load_spec("civil_registry_dci_birth").map(record, SANDBOX)
    review = caught.value
    assert [(p.target, p.rule) for p in review.problems] == [
        ("child.identifiers[system=national_id].value", "identifier:check_digit")
    ]
    assert "child.identifiers[system=national_id].value: the value is not a valid national_id" in (
        review.reason
    )
    # Everything else was mapped: a person can apply it once the number is corrected.
    assert review.record["child"]["given_name"] == "Ama"
    assert review.record["child"]["identifiers"] == [
        {"system": "birth_registration", "value": "BR202400000001"}
    ]
    assert [n.target for n in review.notes] == ["father.identifiers[system=national_id].value"]
    assert review.refused == [
        {
            "target": "child.identifiers[system=national_id].value",
            "source_path": "$.identifier[1].identifier_value",
            "value": BAD,
        }
    ]
    shown = json.dumps(review.as_dict()) + str(review) + review.reason
    assert BAD not in shown and review.as_dict()["error"] == "identifier_review"


def test_a_broken_record_is_still_refused_listing_the_identifier_too() -> None:
    record = copy.deepcopy(BIRTH)
    record["identifier"].append({"identifier_type": "UIN", "identifier_value": BAD})
    record["birth_date"] = "2024-02-30"
    with pytest.raises(MappingError) as caught:
        load_spec("civil_registry_dci_birth").map(record, SANDBOX)
    assert not isinstance(caught.value, IdentifierReview)
    assert [p.rule for p in caught.value.problems] == ["transform:date", "identifier:check_digit"]


def test_a_required_identifier_that_breaks_the_rule_goes_to_review_not_dead_letters() -> None:
    # The registration number is required: without it the record has no key. A value that
    # breaks the profile is a question for a person, like any subject identifier.
    record = copy.deepcopy(BIRTH)
    record["registration_number"] = record["identifier"][0]["identifier_value"] = "BR#1"
    with pytest.raises(IdentifierReview) as caught:
        load_spec("civil_registry_dci_birth").map(record, SANDBOX)
    assert {p.target for p in caught.value.problems} == {
        "registration_number",
        "child.identifiers[system=birth_registration].value",
    }
    assert {p.rule for p in caught.value.problems} == {"identifier:pattern"}


def test_a_dropped_identifier_the_record_needs_sends_it_to_review() -> None:
    # DCI names the mother by identifier only: without her number the birth has no mother.
    record = copy.deepcopy(BIRTH)
    record["parent1_identifier"][0]["identifier_value"] = BAD
    with pytest.raises(IdentifierReview) as caught:
        load_spec("civil_registry_dci_birth").map(record, SANDBOX)
    assert [(p.target, p.rule) for p in caught.value.problems] == [
        ("mother.identifiers[system=national_id].value", "identifier:check_digit")
    ]
    assert [n.target for n in caught.value.notes] == [
        "father.identifiers[system=national_id].value"
    ]
    assert [r["source_path"] for r in caught.value.refused] == [
        "$.parent1_identifier[0].identifier_value"
    ]
    # No mother at all is a broken record, not a question for a person.
    del record["parent1_identifier"]
    with pytest.raises(MappingError) as broken:
        load_spec("civil_registry_dci_birth").map(record, SANDBOX)
    assert not isinstance(broken.value, IdentifierReview)


def test_tax_rows_and_program_lists() -> None:
    row = {
        "RECORD_NO": "7",
        "TAXPAYER_TIN": "110990333",
        "NATIONAL_ID": BAD,
        "TAXPAYER_NAME": "DRAIAIT, Seelle",
        "EMPLOYER_TIN": "12-34",
        "TAX_YEAR": "2024",
        "PERIOD_START": "2024-01-01",
        "PERIOD_END": "2024-12-31",
        "GROSS_INCOME": "10954.00",
        "CURRENCY": "XTS",
        "FILED_ON": "2025-03-08",
    }
    with pytest.raises(IdentifierReview) as caught:  # the taxpayer's own number
        load_spec("tax_income_row").map(row, SANDBOX)
    assert [p.target for p in caught.value.problems] == [
        "taxpayer.identifiers[system=national_id].value"
    ]
    # The employer's tax ID breaks the sandbox's 9-digit rule: dropped, the return is kept.
    assert [n.target for n in caught.value.notes] == ["employer.tax_id"]
    item = {
        "beneficiaryNo": "CCG-000001",
        "programCode": "CCG",
        "status": "ACTIVE",
        "nationalId": GOOD,
        "memberNationalIds": [BAD, GOOD, "12"],
        "fullName": "Tua Grakaboesh",
        "enrolledOn": "2024-01-05",
    }
    result = load_spec("program_enrollment").map(item, SANDBOX)
    assert result.record["member_identifiers"] == [{"system": "national_id", "value": GOOD}]
    assert [(n.source_path, n.rule) for n in result.notes] == [
        ("$.memberNationalIds[0]", "identifier:check_digit"),
        ("$.memberNationalIds[2]", "identifier:pattern"),
    ]
