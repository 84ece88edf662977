"""The intake core without a database: XLSForm conversion and its refusals, the form's rules
re-checked on instances built from real pyxform XForms, and the mapping onto the canonical
household (a program's new question becomes an attribute)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.intake.contract import SubmissionRejected
from hub.intake.instance import parse_instance
from hub.intake.mapping import SubmissionUnmappable, map_submission
from hub.intake.setup import sample_form_bytes
from hub.intake.validation import unsupported_expressions, validate_instance
from hub.intake.xlsform import FormConversionError, convert_xlsform
from tests.intake_support import head, household, instance, xlsform

FORM = convert_xlsform(xlsform(), "hh.xlsx")


def problems(answers: dict, members: list[dict]) -> list[tuple[str, str]]:
    root = parse_instance(instance(FORM.xform, answers, members), 10**6).root
    return [(v.question, v.rule) for v in validate_instance(FORM.model, root)]


def test_conversion_reads_id_version_and_structure() -> None:
    assert (FORM.form_id, FORM.version, FORM.title) == ("hh_test", "1", "Test household")
    assert FORM.model.repeats == frozenset({"/data/members"})
    assert FORM.model.choices["/data/members/sex"] == frozenset({"male", "female"})
    assert len(FORM.md5) == 32
    rooms = FORM.model.bind("/data/dwelling/rooms")
    assert rooms is not None and rooms.type == "int" and rooms.groups == ("dwelling",)


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (xlsform(version=None), "f.xlsx", "settings sheet: set a version"),
        (xlsform(extra_rows=[("integer", "1st", "Q", "", "", "", "")]), "f.xlsx", "[row : "),
        (xlsform(extra_rows=[("select_one nolist", "q", "Q", "", "", "", "")]), "f.xlsx", "nolist"),
        (xlsform(extra_rows=[("begin_group", "g", "G", "", "", "", "")]), "f.xlsx", "end_group"),
        (b"PK\x03\x04 broken", "f.xlsx", "not a readable"),
        (b"", "f.xlsx", "empty"),
        (xlsform(), "f.docx", "an XLSForm is a"),
    ],
)
def test_conversion_errors_tell_the_author_what_to_fix(
    content: bytes, name: str, expected: str
) -> None:
    with pytest.raises(FormConversionError) as caught:
        convert_xlsform(content, name)
    assert expected in caught.value.reason


def test_a_complete_instance_passes() -> None:
    assert problems(household(location="1 2 0 0"), [head(owns="tv radio")]) == []


def test_required_type_choice_and_constraint() -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    found = problems(
        household(rooms="2.5", admin_area_code="R01 D02"),
        [head(given_name="", sex="x", birth_date=tomorrow, owns="tv car")],
    )
    assert ("rooms", "type") in found  # integer
    assert ("admin_area_code", "constraint") in found  # regex(...)
    assert ("given_name", "required") in found
    assert ("sex", "choice") in found and ("owns", "choice") in found
    assert ("birth_date", "constraint") in found  # . <= today(), compared as dates


def test_relevant_decides_whether_a_question_is_asked() -> None:
    # land_ha is required only when has_land = 'yes'.
    assert problems(household(has_land="no"), [head()]) == []
    assert ("land_ha", "required") in problems(household(has_land="yes"), [head()])
    assert ("land_ha", "constraint") in problems(household(has_land="yes", land_ha="0"), [head()])


def test_instances_are_parsed_safely_and_identified() -> None:
    good = instance(FORM.xform, household(), [head()], instance_id="uuid:abc")
    parsed = parse_instance(good, 10**6)
    assert (parsed.form_id, parsed.version, parsed.instance_id) == ("hh_test", "1", "uuid:abc")
    with pytest.raises(SubmissionRejected) as caught:
        parse_instance(good, 100)
    assert caught.value.status == 413
    bomb = (
        b'<!DOCTYPE d [<!ENTITY a "aaaa">]>'
        b'<data id="x"><meta><instanceID>&a;</instanceID></meta></data>'
    )
    with pytest.raises(SubmissionRejected):
        parse_instance(bomb, 10**6)
    with pytest.raises(SubmissionRejected) as caught:
        parse_instance(b"<data><meta/></data>", 10**6)
    assert "id attribute" in caught.value.reason


def test_core_questions_map_to_the_model_and_others_to_attributes() -> None:
    extra = [
        ("begin_group", "income", "Income", "", "", "", ""),
        ("decimal", "pension", "Pension", "", "", "", ""),
        ("end_group", "", "", "", "", "", ""),
        ("text", "Water-Source", "Water", "", "", "", ""),
    ]
    form = convert_xlsform(xlsform(version="2", extra_rows=extra), "hh.xlsx")
    xml = instance(
        form.xform,
        household(location="-1.5 36.8 0 5", pension="120.5", **{"Water-Source": "well"}),
        [head(national_id="12345678"), head(given_name="Ali", relationship="child", owns="tv")],
    )
    mapped = map_submission(form.model, parse_instance(xml, 10**6).root)
    record = mapped.record
    assert record["admin_area_code"] == "R01-D02"
    assert record["location"] == {"lat": -1.5, "lon": 36.8}
    assert [m["relationship"] for m in record["members"]] == ["head", "child"]
    assert record["members"][0]["identifiers"] == [{"system": "national_id", "value": "12345678"}]
    assert mapped.consent_national_id_check is True and mapped.household_id is None
    facts = {a["name"]: a for a in record["attributes"]}
    assert facts["pension"] == {"domain": "income", "name": "pension", "value": 120.5}
    assert facts["water_source"]["domain"] == "other"  # named after the question
    assert facts["owns"]["member_index"] == 1  # a person attribute: inside the repeat
    assert facts["rooms"]["domain"] == "dwelling"
    assert "consent_national_id_check" not in facts and "admin_area_code" not in facts


def test_unmappable_answers_name_the_member_and_field() -> None:
    xml = instance(FORM.xform, household(), [head(), head(national_id="12-34 !!")])
    with pytest.raises(SubmissionUnmappable) as caught:
        map_submission(FORM.model, parse_instance(xml, 10**6).root)
    where = [p["where"] for p in caught.value.problems]
    assert where and where[0].startswith("members[2]")
    assert "12-34" not in str(caught.value)  # never the value of an identifier


def test_the_sample_form_converts_and_the_server_can_check_all_its_rules() -> None:
    form = convert_xlsform(sample_form_bytes(), "household_registration.xlsx")
    assert form.form_id == "household_registration"
    assert unsupported_expressions(form.model) == []
    names = {b.name for b in form.model.questions}
    assert {"admin_area_code", "given_name", "national_id", "roof_material"} <= names


def test_choices_from_an_external_file_are_not_checked_against_an_empty_list() -> None:
    # select_one_from_file: the choices live in a media file (households.csv), not the form.
    external = convert_xlsform(
        xlsform(extra_rows=[("select_one_from_file villages.csv", "village", "V", "", "", "", "")]),
        "hh.xlsx",
    )
    assert "/data/village" not in external.model.choices
    root = parse_instance(instance(external.xform, household(village="v17"), [head()]), 10**6).root
    assert [(v.question, v.rule) for v in validate_instance(external.model, root)] == []
    # Choices written in the form itself are still checked.
    assert ("sex", "choice") in [
        (v.question, v.rule)
        for v in validate_instance(
            external.model,
            parse_instance(instance(external.xform, household(), [head(sex="x")]), 10**6).root,
        )
    ]
