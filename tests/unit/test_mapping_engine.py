"""The mapping engine on its own: path language, transforms, code lists, hooks, specs, errors."""

from __future__ import annotations

import json
import tomllib
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mappings import codes, transforms
from mappings.context import Context, HookProblem
from mappings.engine import (
    MappingError,
    SpecError,
    available_specs,
    build_spec,
    load_spec,
    load_spec_file,
    map_record,
)
from mappings.hooks import check_arguments as check_hook_arguments
from mappings.hooks import reference_keys
from mappings.paths import Located, PathSyntaxError, parse, walk
from mappings.transforms import MISSING, TransformError
from mappings.xml_records import element_to_dict, parse_record
from standards.identifiers import IdentifierProfile, parse_profile


def read(record: Any, path: str) -> list[tuple[Any, str]]:
    parsed = parse(path)
    return [(hit.value, hit.path) for hit in walk(Located(record, "$"), parsed.steps)]


def verhoeff_profile() -> IdentifierProfile:
    """The built-in profile with national IDs of 10 digits and a Verhoeff check digit."""
    data = tomllib.loads(
        resources.files("standards.identifiers").joinpath("default.toml").read_text("utf-8")
    )
    data["systems"]["national_id"].update(pattern="[1-9][0-9]{9}", check="verhoeff")
    return parse_profile(data, "test")


def spec(fields: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "spec": {"name": "sample", "version": 3, "output_schema": "inbound/area.json"},
        "fields": fields,
        **extra,
    }


def area_fields(**value_field: Any) -> list[dict[str, Any]]:
    """Fields making a valid inbound/area.json record, with a chosen admin_area_code field."""
    return [
        {"target": "admin_area_code", **value_field},
        {"target": "attributes[name=flood_risk].domain", "const": "other"},
        {
            "target": "attributes[name=flood_risk].value",
            "from": "$.risk",
            "transforms": ["number"],
            "required": True,
        },
    ]


# ---------------------------------------------------------------------------- paths

RECORD = {
    "id": "b1",
    "entry": [
        {"resource": {"resourceType": "Composition", "id": "c"}},
        {
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {"type": {"coding": [{"code": "X"}, {"code": "NATIONAL_ID"}]}, "value": "n1"},
                    {"type": "BRN", "value": "b1"},
                    {"type": {"coding": [{"code": "NATIONAL_ID"}]}, "value": "n2"},
                ],
                "name": [{"given": ["Ada", "Grace", ""], "family": "Lovelace"}],
                "active": True,
            }
        },
    ],
    "odd key": {"x": 1},
    "single": {"field": "name", "match": "true"},
}


def test_dotted_keys_and_indexes_give_concrete_paths() -> None:
    assert read(RECORD, "$.entry[1].resource.name[0].family") == [
        ("Lovelace", "$.entry[1].resource.name[0].family")
    ]
    assert read(RECORD, "id") == [("b1", "$.id")]
    assert read(RECORD, "$.entry[-1].resource.resourceType") == [
        ("Patient", "$.entry[1].resource.resourceType")
    ]
    assert read(RECORD, "$.entry[5].resource") == []
    assert read(RECORD, "$.id.nothing") == []


def test_filters_match_nested_and_fanned_out_keys_in_order() -> None:
    hits = read(RECORD, "$.entry[*].resource.identifier[type.coding[*].code=NATIONAL_ID].value")
    assert hits == [
        ("n1", "$.entry[1].resource.identifier[0].value"),
        ("n2", "$.entry[1].resource.identifier[2].value"),
    ]
    assert read(RECORD, "$.entry[1].resource.identifier[type=BRN].value") == [
        ("b1", "$.entry[1].resource.identifier[1].value")
    ]
    assert [v for v, _ in read(RECORD, "$.entry[1].resource.identifier[type!=BRN].value")] == [
        "n1",
        "n2",
    ]
    assert read(RECORD, "$.entry[resource.active=true].resource.resourceType") == [
        ("Patient", "$.entry[1].resource.resourceType")
    ]


def test_slices_wildcards_quoted_keys_and_single_objects_as_lists() -> None:
    assert [v for v, _ in read(RECORD, "$.entry[1].resource.name[0].given[1:]")] == ["Grace", ""]
    assert [v for v, _ in read(RECORD, "$.entry[*].resource.resourceType")] == [
        "Composition",
        "Patient",
    ]
    assert read(RECORD, "$.'odd key'.x") == [(1, "$.'odd key'.x")]
    # XML-as-dict and DCI reg_records: one object where a list is expected is a list of one.
    assert read(RECORD, "$.single[match=true].field") == [("name", "$.single.field")]
    assert read(RECORD, "$.single[0].field") == [("name", "$.single.field")]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("$.entry[0", "never closed"),
        ("$.entry[=x]", "has no field"),
        ("$.entry[a:b]", "bad slice"),
        ("$.entry.", "expected a field name"),
        ("$.entry[0]x", "unexpected 'x'"),
        ("@", "binding name"),
        ("", "non-empty"),
        ("$." + "a" * 600, "at most"),
        ("$.a[$.b=1]", "relative"),
    ],
)
def test_bad_paths_are_refused_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(PathSyntaxError, match=fragment.replace("[", r"\[")):
        parse(text)


def test_paths_never_evaluate_code() -> None:
    # A path is data: something that would be code elsewhere is just a missing key here.
    with pytest.raises(PathSyntaxError):
        parse("$.__import__('os').system('true')")
    assert read({"a": {"b": 1}}, "$.a[b=__import__]") == []


# ---------------------------------------------------------------------------- transforms


def test_trim_blank_is_missing_and_whitespace_collapses() -> None:
    assert transforms.trim("  Ada   Grace ") == "Ada Grace"
    assert transforms.trim("   ") is MISSING
    assert transforms.trim(5) == 5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020-02-29", "2020-02-29"),
        ("20200229", "2020-02-29"),
        ("29/02/2020", "2020-02-29"),
        ("29-02-2020", "2020-02-29"),
        ("1.3.2020", "2020-03-01"),
        ("2020-03-05T23:30:00+02:00", "2020-03-05"),  # the local day, not shifted to UTC
        ("2020-03-05T09:00:00Z", "2020-03-05"),
        ("2020-03-05T09:00:00.123+00:00", "2020-03-05"),
        (date(2021, 1, 2), "2021-01-02"),
        (datetime(2021, 1, 2, 23, 0), "2021-01-02"),
    ],
)
def test_dates_in_every_accepted_format(raw: Any, expected: str) -> None:
    assert transforms.to_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("31/02/2020", "no such calendar day"),
        ("2021-02-29", "no such calendar day"),
        ("2020-13-01", "no such calendar day"),
        ("02/31/2020", "no such calendar day"),  # month-first is not guessed
        ("2020-03", "partial date"),
        ("yesterday", "not a date in any accepted format"),
        (12, "not a date in any accepted format"),
        (True, "expected text"),
    ],
)
def test_impossible_partial_and_foreign_dates_are_refused(raw: Any, fragment: str) -> None:
    with pytest.raises(TransformError, match=fragment):
        transforms.to_date(raw)


def test_date_formats_can_be_restricted_and_future_dates_refused() -> None:
    with pytest.raises(TransformError, match=r"\(YYYY-MM-DD\)"):
        transforms.to_date("05/03/2020", formats=["iso"])
    tomorrow = (transforms.today() + timedelta(days=1)).isoformat()
    with pytest.raises(TransformError, match="future"):
        transforms.to_date(tomorrow, not_future=True)
    assert transforms.to_date(tomorrow) == tomorrow


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("M", "male"),
        ("f", "female"),
        ("1", "male"),
        ("2", "female"),
        (" Female ", "female"),
        ("MALE", "male"),
        ("0", "unknown"),
        ("x", "other"),
        ("Not Known", "unknown"),
    ],
)
def test_sex_code_list(raw: str, expected: str) -> None:
    assert transforms.code(raw, list="sex") == expected


def test_relationship_and_marital_status_code_lists() -> None:
    assert transforms.code("Wife", list="relationship") == "spouse"
    assert transforms.code("daughter", list="relationship") == "child"
    assert transforms.code("HOH", list="relationship") == "head"
    assert transforms.code("NOT_STATED", list="marital_status") == "unknown"
    assert transforms.code("W", list="marital_status") == "widowed"
    with pytest.raises(TransformError, match="not a known relationship code"):
        transforms.code("landlord", list="relationship")
    assert transforms.code("landlord", list="relationship", fallback="non_relative") == (
        "non_relative"
    )


def test_code_list_files_refuse_a_synonym_under_two_codes() -> None:
    with pytest.raises(codes.CodeListError, match="both 'male' and 'female'"):
        codes.from_data("bad", {"codes": {"male": ["m"], "female": ["M"]}}, "bad.json")
    with pytest.raises(codes.CodeListError, match="non-empty"):
        codes.from_data("bad", {"codes": {}}, "bad.json")
    with pytest.raises(codes.CodeListError, match="no code list 'nope'"):
        codes.load("nope")


def test_map_transform_with_fallback() -> None:
    assert transforms.map_values("active", values={"ACTIVE": "active"}) == "active"
    assert transforms.map_values("?", values={"A": 1}, fallback=0) == 0
    with pytest.raises(TransformError, match=r"expected codes \(A\)"):
        transforms.map_values("B", values={"A": 1})


@pytest.mark.parametrize(
    ("raw", "form", "parts"),
    [
        ("NGUYEN, Thi Mai", "family_first", ("Thi", "NGUYEN", "Mai")),
        ("Ada Grace Lovelace", "given_first", ("Ada", "Lovelace", "Grace")),
        ("Ada Lovelace", "auto", ("Ada", "Lovelace", MISSING)),
        ("DOE ,  John", "auto", ("John", "DOE", MISSING)),
    ],
)
def test_name_splitting(raw: str, form: str, parts: tuple[Any, Any, Any]) -> None:
    got = tuple(
        transforms.split_name(raw, part=part, form=form)
        for part in ("given_name", "family_name", "other_names")
    )
    assert got == parts


@pytest.mark.parametrize(
    ("raw", "form"),
    [("Madonna", "given_first"), ("Ada Lovelace", "family_first"), ("DOE,", "family_first")],
)
def test_names_that_cannot_be_split_are_refused(raw: str, form: str) -> None:
    with pytest.raises(TransformError):
        transforms.split_name(raw, part="given_name", form=form)


def test_name_case_only_touches_shouted_words() -> None:
    assert transforms.name_case("O'BRIEN-SMITH") == "O'Brien-Smith"
    assert transforms.name_case("McAdam van DYK") == "McAdam van Dyk"


def test_identifier_normalisation_and_check_digits() -> None:
    strict = verhoeff_profile()
    assert (
        transforms.identifier(" br-2025.9000/0001 ", system="birth_registration", profile=strict)
        == "BR202590000001"
    )
    assert transforms.identifier(1234, system="tax_id", profile=strict) == "1234"
    assert transforms.identifier("--", system="tax_id", profile=strict) is MISSING
    assert transforms.identifier("6276278139", system="national_id", profile=strict) == (
        "6276278139"
    )
    with pytest.raises(transforms.IdentifierRuleError, match="check digit is wrong") as caught:
        transforms.identifier("6276278138", system="national_id", profile=strict)
    assert "6276278138" not in str(caught.value)
    assert caught.value.problem.rule == "check_digit"
    with pytest.raises(transforms.IdentifierRuleError, match="expected form"):
        transforms.identifier("12AB", system="national_id", profile=strict)
    # The same number under the built-in profile (no check digit) is accepted.
    assert transforms.apply("identifier", "6276278138", {"system": "national_id"}) == ("6276278138")


def test_numbers_booleans_strings_and_identifier_wrapping() -> None:
    assert transforms.number("54000.00") == 54000
    assert transforms.number("0.25") == 0.25
    assert transforms.number(7) == 7
    for bad in ("12,5", "NaN", "Infinity", True):
        with pytest.raises(TransformError):
            transforms.number(bad)
    with pytest.raises(TransformError, match="whole"):
        transforms.number("1.5", integer=True)
    assert transforms.boolean("Yes") is True
    assert transforms.boolean("0") is False
    with pytest.raises(TransformError):
        transforms.boolean("maybe")
    assert transforms.to_string(12.0) == "12"
    assert transforms.upper("ab") == "AB"
    assert transforms.lower("AB") == "ab"
    assert transforms.as_identifier("X1", system="tax_id", verified=True) == {
        "system": "tax_id",
        "value": "X1",
        "verified": True,
    }


def test_transform_arguments_are_checked() -> None:
    assert "unknown transform 'dat'" in transforms.check_arguments("dat", {})[0]
    assert "needs parameter 'part'" in transforms.check_arguments("split_name", {})[0]
    assert "must be one of" in transforms.check_arguments("split_name", {"part": "surname"})[0]
    assert "must be bool" in transforms.check_arguments("date", {"not_future": "yes"})[0]
    assert (
        "unknown format(s) mm/dd/yyyy"
        in transforms.check_arguments("date", {"formats": ["mm/dd/yyyy"]})[0]
    )
    assert "no code list" in transforms.check_arguments("code", {"list": "caste"})[0]
    assert "needs parameter 'system'" in transforms.check_arguments("identifier", {})[0]
    assert (
        "no parameter 'check'"
        in transforms.check_arguments("identifier", {"system": "national_id", "check": "verhoeff"})[
            0
        ]
    )
    assert "system code" in transforms.check_arguments("identifier", {"system": "National ID"})[0]


# ---------------------------------------------------------------------------- specs


@pytest.mark.parametrize("name", available_specs())
def test_every_shipped_spec_loads(name: str) -> None:
    loaded = load_spec(name)
    assert loaded.name == name
    assert loaded.fields
    assert loaded.output_schema.startswith("inbound/")


def test_the_shipped_specs_are_the_promised_ones() -> None:
    assert set(available_specs()) >= {
        "civil_registry_birth",
        "civil_registry_death",
        "national_id_person",
        "national_id_verification",
        "tax_income_row",
        "gis_area",
        "program_enrollment",
    }


def spec_problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        build_spec(data, "specs/sample.toml")
    assert str(caught.value).startswith("specs/sample.toml: ")
    return caught.value.problems


def test_spec_schema_errors_name_the_json_path() -> None:
    problems = spec_problems(
        {
            "spec": {"name": "Bad Name", "version": 0},
            "fields": [
                {"target": "a"},
                {"target": "b", "from": "$.x", "const": 1},
                {"target": "c", "from": "$.x", "colour": "red"},
            ],
        }
    )
    paths = {path for path, _ in problems}
    assert {
        "$.spec",
        "$.spec.name",
        "$.spec.version",
        "$.fields[0]",
        "$.fields[1]",
        "$.fields[2]",
    } <= paths
    messages = dict(problems)
    assert "exactly one of 'from', 'const' or 'hook'" in messages["$.fields[0]"]
    assert "unknown key(s) colour" in messages["$.fields[2]"]
    problems = spec_problems(
        spec(
            [{"target": "a", "from": 5, "transforms": [7]}],
            bindings={"b": {"from": "$.x", "hook": "fhir_reference"}},
        )
    )
    assert dict(problems) == {
        "$.bindings.b": "a binding needs exactly one of 'from' or 'hook'",
        "$.fields[0].from": "must be a path or a list of paths",
        "$.fields[0].transforms[0]": "a transform is a name or a table with a 'name'",
    }


def test_spec_semantic_errors_are_all_listed_with_paths() -> None:
    problems = spec_problems(
        spec(
            [
                {
                    "target": "a",
                    "from": "$.x[",
                    "transforms": ["dat", {"name": "code", "list": "z"}],
                },
                {"target": "b", "from": ["$.ok", "@nobody.x"]},
                {"target": "c[0].d", "from": "$.x"},
                {"target": "e", "hook": "no_such_hook"},
                {"target": "f", "from": "$.x", "join": ",", "skip": 1},
                {"target": "a.g", "from": "$.y"},
            ],
            bindings={"later": {"from": "@earlier.x"}},
        )
        | {"spec": {"name": "sample", "version": 1, "output_schema": "inbound/nothing.json"}}
    )
    listing = "\n".join(f"{p}: {m}" for p, m in problems)
    for expected in [
        "$.spec.output_schema: no schema 'inbound/nothing.json'",
        "$.bindings.later.from: binding @earlier is not defined before",
        "$.fields[0].from: '$.x[': '[' at position 3 is never closed",
        "$.fields[0].transforms[0]: unknown transform 'dat'",
        "$.fields[0].transforms[1]: no code list 'z'",
        "$.fields[1].from: binding @nobody is not defined",
        "$.fields[2].target: a target is dotted keys and [field=value] filters",
        "$.fields[3].hook: unknown hook 'no_such_hook'",
        "$.fields[4].join: 'join' only makes sense with many = true",
        "$.fields[4].skip: 'skip' only makes sense with many = true",
        "$.fields[5].target: overlaps the target 'a'",
    ]:
        assert expected in listing


def test_spec_files_load_from_toml_and_json_and_bad_syntax_is_named(tmp_path: Path) -> None:
    data = spec(area_fields(**{"from": "$.code", "transforms": ["upper"]}))
    json_file = tmp_path / "area.json"
    json_file.write_text(json.dumps(data))
    expected = {
        "admin_area_code": "R01",
        "attributes": [{"name": "flood_risk", "domain": "other", "value": 0.5}],
    }
    assert load_spec_file(json_file).apply({"code": "r01", "risk": "0.5"}) == expected
    toml_file = tmp_path / "area.toml"
    toml_file.write_text(
        '[spec]\nname = "sample"\nversion = 3\noutput_schema = "inbound/area.json"\n'
        '[[fields]]\ntarget = "admin_area_code"\nfrom = "$.code"\ntransforms = ["upper"]\n'
        '[[fields]]\ntarget = "attributes[name=flood_risk].domain"\nconst = "other"\n'
        '[[fields]]\ntarget = "attributes[name=flood_risk].value"\nfrom = "$.risk"\n'
        'transforms = ["number"]\n'
    )
    assert load_spec_file(toml_file).apply({"code": "r01", "risk": "0.5"}) == expected
    bad = tmp_path / "bad.toml"
    bad.write_text("[spec\nname = 1\n")
    with pytest.raises(SpecError, match=r"bad\.toml: \$: not readable"):
        load_spec_file(bad)
    other = tmp_path / "spec.yaml"
    other.write_text("spec: {}")
    with pytest.raises(SpecError, match=r"must end in \.toml or \.json"):
        load_spec_file(other)
    with pytest.raises(KeyError, match="available: "):
        load_spec("no_such_spec")


# ---------------------------------------------------------------------------- applying


def test_a_record_maps_and_provenance_names_the_source_fields() -> None:
    loaded = build_spec(
        spec(
            area_fields(**{"from": ["$.area.code", "$.fallback"], "transforms": ["trim", "upper"]})
        ),
        "t",
    )
    result = loaded.map({"area": {"code": "  "}, "fallback": "r01-d02", "risk": "0.25"})
    assert result.record == {
        "admin_area_code": "R01-D02",
        "attributes": [{"name": "flood_risk", "domain": "other", "value": 0.25}],
    }
    assert result.sources == {
        "$.admin_area_code": "$.fallback",
        "$.attributes[0].domain": "(constant)",
        "$.attributes[0].value": "$.risk",
    }


def test_every_problem_is_listed_with_its_source_path() -> None:
    loaded = build_spec(
        spec(
            [
                {"target": "admin_area_code", "from": "$.code", "required": True},
                {"target": "admin_area_name", "from": "$.when", "transforms": ["date"]},
                {"target": "attributes[name=x].domain", "const": "other"},
                {
                    "target": "attributes[name=x].value",
                    "from": "$.items[*].v",
                    "transforms": ["number"],
                    "many": True,
                    "join": "+",
                },
            ]
        ),
        "t",
    )
    with pytest.raises(MappingError) as caught:
        loaded.apply({"when": "31/02/2020", "items": [{"v": "1"}, {"v": "two"}]})
    error = caught.value
    assert [(p.source_path, p.rule) for p in error.problems] == [
        ("$.code", "required"),
        ("$.when", "transform:date"),
        ("$.items[1].v", "transform:number"),
    ]
    assert str(error.problems[1]) == (
        '$.when: "31/02/2020" is not a date in any accepted format '
        "(read as DD/MM/YYYY, no such calendar day) [-> admin_area_name]"
    )
    assert error.as_dict()["spec_version"] == 3
    assert str(error).startswith("sample v3: 3 problem(s): $.code: is required but missing")


def test_schema_violations_point_back_at_the_source_field() -> None:
    loaded = build_spec(spec(area_fields(**{"from": "$.meta.area"})), "t")
    with pytest.raises(MappingError) as caught:
        loaded.apply({"meta": {"area": "not an area!"}, "risk": 0.1})
    [problem] = caught.value.problems
    assert problem.source_path == "$.meta.area"
    assert problem.target == "admin_area_code"
    assert problem.rule == "schema:pattern"
    # A required output nobody filled is named with the place it was looked for.
    loaded = build_spec(spec([{"target": "admin_area_code", "from": "$.code"}]), "t")
    with pytest.raises(MappingError) as caught:
        loaded.apply({"code": "R01"})
    assert [(p.source_path, p.target, p.rule) for p in caught.value.problems] == [
        (None, "attributes", "schema:required")
    ]


def test_identifier_values_never_appear_in_messages() -> None:
    loaded = build_spec(
        spec(
            [
                {
                    "target": "admin_area_code",
                    "from": "$.nid",
                    "transforms": [
                        {"name": "identifier", "system": "national_id", "subject": True}
                    ],
                },
                {
                    "target": "admin_area_name",
                    "from": "$.secret",
                    "transforms": ["date"],
                    "sensitive": True,
                },
                {
                    "target": "district_code",
                    "from": "$.name",
                    "transforms": [{"name": "split_name", "part": "given_name"}],
                },
            ]
        ),
        "t",
    )
    with pytest.raises(MappingError) as caught:
        loaded.apply(
            {"nid": "6276278138", "secret": "hush-hush", "name": "Zebedaiah"}, verhoeff_profile()
        )
    assert [p.rule for p in caught.value.problems] == [
        "transform:date",
        "transform:split_name",
        "schema:required",
        "identifier:check_digit",
    ]
    text = json.dumps(caught.value.as_dict()) + str(caught.value)
    assert "6276278138" not in text
    assert "hush-hush" not in text
    assert "Zebedaiah" not in text
    assert "the value is not a valid national_id" in text


def test_defaults_constants_and_many_values() -> None:
    loaded = build_spec(
        spec(
            [
                {"target": "admin_area_code", "from": "$.code", "default": "R00"},
                {
                    "target": "admin_area_name",
                    "from": "$.names[*]",
                    "transforms": ["trim"],
                    "many": True,
                    "join": " / ",
                    "skip": 1,
                },
                {"target": "attributes[name=a].domain", "const": "other"},
                {"target": "attributes[name=a].value", "const": True},
            ]
        ),
        "t",
    )
    assert loaded.apply({"names": ["", "West", "North", " ", "Hill "]}) == {
        "admin_area_code": "R00",
        "admin_area_name": "North / Hill",  # blanks never count; skip = 1 drops "West"
        "attributes": [{"name": "a", "domain": "other", "value": True}],
    }


def test_records_that_are_not_objects_are_refused_not_crashed() -> None:
    with pytest.raises(MappingError, match="must be a JSON object"):
        map_record("gis_area", ["not", "a", "dict"])


def test_a_missing_required_binding_is_reported_once() -> None:
    with pytest.raises(MappingError) as caught:
        map_record("gis_area", {"point": {"lat": 1, "lon": 2}})
    assert [(p.source_path, p.target) for p in caught.value.problems] == [("$.locality", "@area")]


# ---------------------------------------------------------------------------- hooks


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("urn:uuid:abc-1", [("url", "urn:uuid:abc-1"), ("id", "abc-1")]),
        ("Patient/p1", [("url", "Patient/p1"), ("typed", "Patient/p1")]),
        (
            "/fhir/Patient/p1/_history/3",
            [("url", "/fhir/Patient/p1/_history/3"), ("typed", "Patient/p1")],
        ),
        (
            "https://crvs.example/fhir/Patient/p1",
            [("url", "https://crvs.example/fhir/Patient/p1"), ("typed", "Patient/p1")],
        ),
    ],
)
def test_reference_forms(reference: str, expected: list[tuple[str, str]]) -> None:
    assert reference_keys(reference) == expected


def bundle(child_ref: str, *, mother_section: bool = True) -> dict[str, Any]:
    sections = [
        {"code": {"coding": [{"code": "child-details"}]}, "entry": [{"reference": child_ref}]}
    ]
    if mother_section:
        sections.append(
            {
                "code": {"coding": [{"code": "mother-details"}]},
                "entry": [{"reference": "Patient/m"}],
            }
        )
    sections.append(
        {
            "code": {"coding": [{"code": "informant-details"}]},
            "entry": [{"reference": "urn:uuid:inf"}],
        }
    )
    return {
        "resourceType": "Bundle",
        "entry": [
            {
                "fullUrl": "urn:uuid:comp",
                "resource": {"resourceType": "Composition", "section": sections},
            },
            {"fullUrl": "/fhir/Patient/c", "resource": {"resourceType": "Patient", "id": "c"}},
            {"fullUrl": "urn:uuid:m", "resource": {"resourceType": "Patient", "id": "m"}},
            {
                "fullUrl": "urn:uuid:inf",
                "resource": {
                    "resourceType": "RelatedPerson",
                    "id": "inf",
                    "patient": {"reference": "Patient/m"},
                    "relationship": [{"coding": [{"code": "MOTHER"}]}],
                },
            },
        ],
    }


@pytest.mark.parametrize("child_ref", ["urn:uuid:c", "Patient/c", "/fhir/Patient/c/_history/2"])
def test_section_entries_resolve_however_the_reference_is_written(child_ref: str) -> None:
    from mappings.hooks import call

    found = call("fhir_section_entry", Context(bundle(child_ref)), {"section": "child-details"})
    assert isinstance(found, Located)
    assert found.path == "$.entry[1].resource"
    assert call("fhir_section_entry", Context(bundle(child_ref)), {"section": "nope"}) is None


def test_mother_comes_from_her_section_or_from_the_informant() -> None:
    from mappings.hooks import call

    for with_section in (True, False):
        found = call(
            "opencrvs_mother", Context(bundle("Patient/c", mother_section=with_section)), {}
        )
        assert isinstance(found, Located)
        assert found.path == "$.entry[2].resource"


def test_a_dangling_reference_is_a_problem_at_its_path() -> None:
    broken = bundle("Patient/ghost")
    with pytest.raises(MappingError) as caught:
        map_record("civil_registry_birth", broken)
    first = caught.value.problems[0]
    assert first.source_path == "$.entry[0].resource.section[0].entry[0].reference"
    assert first.message == "points at no entry of the bundle"
    assert first.rule == "hook:opencrvs_role"


def test_a_hook_that_breaks_on_odd_input_is_reported_not_raised() -> None:
    from mappings import hooks

    def explode(context: Context) -> None:
        raise TypeError("boom")

    hooks.hook("explode_for_test")(explode)
    try:
        loaded = build_spec(spec([{"target": "admin_area_code", "hook": "explode_for_test"}]), "t")
        with pytest.raises(MappingError) as caught:
            loaded.apply({})
        assert caught.value.problems[0].message.startswith("could not be read (TypeError)")
    finally:
        del hooks.HOOKS["explode_for_test"]


# ---------------------------------------------------------------------------- XML records


def test_xml_records_follow_one_dict_convention() -> None:
    record = parse_record(
        b'<R xmlns="urn:x" no="7"><A>x</A><B c="2">y</B><A>z</A><!-- note --><E/></R>'
    )
    assert record == {"@no": "7", "A": ["x", "z"], "B": {"@c": "2", "#text": "y"}, "E": ""}
    from lxml import etree

    assert element_to_dict(etree.fromstring(b"<leaf> t </leaf>")) == "t"


def test_xml_with_a_dtd_or_entities_is_refused() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "boom">]><r>&e;</r>'
    with pytest.raises(ValueError, match="DTD"):
        parse_record(evil)


# ---------------------------------------------------------------------------- schema check

INBOUND_SAMPLES = [
    ("inbound/area.json", {"admin_area_code": "R01", "attributes": []}, True),
    ("inbound/area.json", {"admin_area_code": "r01", "attributes": []}, False),
    ("inbound/area.json", {"admin_area_code": "R01", "attributes": [{"domain": "x"}]}, False),
    (
        "inbound/birth.json",
        {
            "registration_number": "BR1",
            "mother": {"identifiers": [{"system": "national_id", "value": "1"}]},
            "child": {
                "given_name": "A",
                "family_name": "B",
                "sex": "male",
                "birth_date": "2020-01-01",
                "identifiers": [{"system": "birth_registration", "value": "BR1"}],
            },
        },
        True,
    ),
    (
        "inbound/birth.json",
        {
            "registration_number": "BR1",
            "mother": {"given_name": "M"},
            "child": {
                "given_name": "A",
                "family_name": "B",
                "sex": "male",
                "birth_date": "2020-02-30",
                "identifiers": [{"system": "national_id", "value": "1"}],
            },
        },
        False,
    ),
    ("inbound/verification.json", {"verified": False}, False),
    ("inbound/verification.json", {"verified": False, "reason": "no"}, True),
    (
        "inbound/income.json",
        {
            "taxpayer": {"given_name": "A", "family_name": "B", "birth_date": "2000-01-01"},
            "attributes": [{"domain": "income", "name": "x", "value": 1}],
        },
        False,
    ),
    (
        "inbound/enrollment.json",
        {
            "program_code": "CCG",
            "beneficiary_number": "1",
            "status": "active",
            "beneficiary": {"given_name": "A", "family_name": "B"},
        },
        True,
    ),
]


@pytest.mark.parametrize(("name", "record", "valid"), INBOUND_SAMPLES)
def test_the_fast_schema_check_agrees_with_the_standard_validator(
    name: str, record: dict[str, Any], valid: bool
) -> None:
    from mappings.schema_check import check, fast_validator
    from standards.validation import violations

    assert fast_validator(name).is_valid(record) is valid
    assert (violations(name, record) == []) is valid
    assert check(name, record) == violations(name, record)


def test_the_reference_hook_follows_a_reference_at_a_path() -> None:
    from mappings.hooks import call

    record = bundle("Patient/c")
    found = call(
        "fhir_reference", Context(record), {"reference": "$.entry[3].resource.patient.reference"}
    )
    assert isinstance(found, Located)
    assert found.path == "$.entry[2].resource"
    assert call("fhir_reference", Context(record), {"reference": "$.entry[3].nothing"}) is None
    assert check_hook_arguments("fhir_reference", {"reference": 3}) == [
        "hook 'fhir_reference': 'reference' must be str"
    ]
    assert "never closed" in check_hook_arguments("fhir_reference", {"reference": "$.a["})[0]


def test_a_typed_reference_never_resolves_to_another_type() -> None:
    from mappings.hooks import call

    record = bundle("Encounter/c")  # the entry with id "c" is a Patient
    with pytest.raises(HookProblem, match="points at no entry"):
        call("fhir_section_entry", Context(record), {"section": "child-details"})


def test_an_id_shared_by_two_entries_is_not_guessed() -> None:
    from mappings.hooks import call

    record = bundle("Patient/c")
    record["entry"].append(
        {"fullUrl": "urn:uuid:other", "resource": {"resourceType": "Patient", "id": "c"}}
    )
    with pytest.raises(HookProblem, match="points at no entry"):
        call("fhir_section_entry", Context(record), {"section": "child-details"})
