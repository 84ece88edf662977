"""What a change request may name as its target, and when two values are the same value."""

from __future__ import annotations

import pytest

from hub.corrections.targets import Target, TargetProblem, check_subject, same_value
from hub.settings.corrections import DEFAULT_DIRECT_TARGETS
from registry_core.precedence import SourcePrecedence


@pytest.mark.parametrize(
    ("text", "kind", "field"),
    [
        ("household.address", "household", "address"),
        ("person.birth_date", "person", "birth_date"),
        ("attribute.income.monthly_income", "attribute", "income.monthly_income"),
    ],
)
def test_targets_parse_into_kind_and_field(text: str, kind: str, field: str) -> None:
    target = Target.parse(text)
    assert (target.kind, target.field, target.name) == (kind, field, text)


@pytest.mark.parametrize(
    "text",
    [
        "person.identifiers",  # identifiers have their own services
        "person.death_date",  # deaths come from the civil registry
        "household.status",
        "attribute.income",  # no name
        "attribute.salary.monthly_income",  # no such domain
        "attribute.income.Monthly",
        "household.address ",
    ],
)
def test_anything_else_is_refused_with_the_list_of_targets(text: str) -> None:
    with pytest.raises(TargetProblem, match="target must be"):
        Target.parse(text)


def test_the_default_direct_corrections_are_valid_targets() -> None:
    assert all(Target.parse(t).name == t for t in DEFAULT_DIRECT_TARGETS)


def test_values_compare_as_json_with_numbers_by_value() -> None:
    assert same_value(450, 450.0)
    assert not same_value(450, 450.5)
    assert not same_value(True, 1)  # a yes is not a count
    assert same_value({"lat": 1.5, "lon": 2}, {"lon": 2, "lat": 1.5})
    assert not same_value("450", 450)
    assert same_value(None, None) and not same_value(None, "")


def test_a_person_target_names_a_current_member_and_a_household_target_none() -> None:
    household = {"members": [{"id": "p1"}]}
    check_subject(Target.parse("person.sex"), household, "p1")
    check_subject(Target.parse("attribute.other.phone_number"), household, None)
    with pytest.raises(TargetProblem, match="needs person_id"):
        check_subject(Target.parse("person.sex"), household, None)
    with pytest.raises(TargetProblem, match="without person_id"):
        check_subject(Target.parse("household.address"), household, "p1")
    with pytest.raises(TargetProblem, match="not a current member"):
        check_subject(Target.parse("attribute.income.wage"), household, "p2")


def test_corrections_outrank_declared_and_form_values_but_not_the_identity_registries() -> None:
    table = SourcePrecedence.default()
    for field in ("given_name", "family_name", "birth_date", "sex"):
        ranking = table.ranking("person", field)
        assert ranking.index("correction") < ranking.index("intake")
        assert ranking.index("correction") < ranking.index("registry_staff")
        assert ranking.index("correction") > ranking.index("national_id")
    for field in ("address", "location", "admin_area_code", "attributes.income.wage"):
        assert table.ranking("household", field)[0] == "correction"
    assert "correction" not in table.ranking("person", "death_date")
