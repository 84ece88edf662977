"""How the dashboard's correction form reads typed text as the registry's JSON values."""

from __future__ import annotations

import pytest

from hub.corrections.form_values import FormValueProblem, read_value, shown_in_form
from hub.corrections.targets import same_value


@pytest.mark.parametrize(
    ("target", "current"),
    [
        ("household.address", "12 Mango Lane"),
        ("household.location", {"lat": -1.28, "lon": 36.82}),
        ("attribute.income.wage", 450),
        ("attribute.income.wage", 450.5),
        ("attribute.dwelling.has_electricity", True),
        ("attribute.other.phone_number", "0712345678"),
        ("person.birth_date", "1984-01-02"),
    ],
)
def test_the_prefilled_value_reads_back_as_the_registrys(target: str, current: object) -> None:
    assert same_value(read_value(target, shown_in_form(current), current), current)


def test_a_number_where_the_registry_holds_text_stays_text() -> None:
    assert read_value("person.given_name", "450", "Amina") == "450"
    assert read_value("attribute.other.phone_number", "0712", None) == "0712"


def test_a_new_fact_typed_as_a_number_or_boolean_is_one() -> None:
    assert read_value("attribute.income.wage", "4500", None) == 4500
    assert read_value("attribute.asset.radio", "true", None) is True
    assert read_value("household.address", "", "x") is None


@pytest.mark.parametrize(
    ("target", "text", "current"),
    [
        ("attribute.income.wage", "four", 450),
        ("attribute.income.wage", "1e999", 450),
        ("attribute.asset.radio", "maybe", False),
        ("household.location", "north", None),
        ("household.location", "1, 2, 3", None),
    ],
)
def test_text_that_cannot_be_the_value_is_refused(target: str, text: str, current: object) -> None:
    with pytest.raises(FormValueProblem):
        read_value(target, text, current)
