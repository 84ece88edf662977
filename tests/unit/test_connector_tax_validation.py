"""Row checks of the tax connector and the country profile's national ID rule they apply."""

from __future__ import annotations

import pytest

from connectors.tax.validation import check_row
from sandbox_mocks.population.ids import sandbox_profile
from standards.identifiers import default_profile, verhoeff_check_digit, verhoeff_is_valid


def test_verhoeff_known_values_and_every_single_digit_error_caught() -> None:
    assert verhoeff_check_digit("236") == "3"  # the textbook example
    assert verhoeff_is_valid("2363") and not verhoeff_is_valid("2364")
    number = "123456789" + verhoeff_check_digit("123456789")
    for position in range(len(number)):
        for digit in "0123456789":
            if digit != number[position]:
                typo = number[:position] + digit + number[position + 1 :]
                assert not verhoeff_is_valid(typo)
    for position in range(len(number) - 1):  # adjacent swaps
        swapped = (
            number[:position] + number[position + 1] + number[position] + number[position + 2 :]
        )
        if swapped != number:
            assert not verhoeff_is_valid(swapped)


def test_national_id_column_follows_the_profile_and_says_why_without_the_value() -> None:
    good = "123456789" + verhoeff_check_digit("123456789")
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    sandbox = sandbox_profile()
    assert check_row({**GOOD, "NATIONAL_ID": good}, "2024", sandbox) == []
    problems = check_row({**GOOD, "NATIONAL_ID": "0" + good[1:]}, "2024", sandbox)
    assert [p.column for p in problems] == ["NATIONAL_ID"]
    assert "10 digits" in problems[0].reason
    reason = check_row({**GOOD, "NATIONAL_ID": wrong}, "2024", sandbox)[0].reason
    assert "Verhoeff" in reason and wrong not in reason
    # The built-in profile has no check digit: the same row passes the tax connector's check.
    assert check_row({**GOOD, "NATIONAL_ID": wrong}, "2024", default_profile()) == []


GOOD = {
    "RECORD_NO": "1",
    "TAXPAYER_TIN": "123456789",
    "NATIONAL_ID": "",
    "TAXPAYER_NAME": "DOE, Jo",
    "EMPLOYER_TIN": "987654321",
    "EMPLOYER_NAME": "Shop",
    "TAX_YEAR": "2024",
    "PERIOD_START": "2024-01-01",
    "PERIOD_END": "2024-12-31",
    "GROSS_INCOME": "100.50",
    "CURRENCY": "XTS",
    "FILED_ON": "2025-02-01",
    "TAX_OFFICE": "Office",
}


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("TAXPAYER_TIN", "", "missing"),
        ("TAXPAYER_TIN", "12345678", "9 digits"),
        ("NATIONAL_ID", "1234567891", "Verhoeff"),
        ("GROSS_INCOME", "-5.00", "negative"),
        ("GROSS_INCOME", "12,345.00", "number"),
        ("GROSS_INCOME", "1.005", "2 decimals"),
        ("FILED_ON", "2024-02-30", "calendar date"),
        ("PERIOD_START", "31/12/2024", "calendar date"),
        ("TAX_YEAR", "24", "four-digit"),
        ("CURRENCY", "xts", "ISO 4217"),
    ],
)
def test_each_bad_value_is_named_by_its_column(column: str, value: str, words: str) -> None:
    problems = check_row({**GOOD, column: value}, "2024", sandbox_profile())
    assert [p.column for p in problems] == [column]
    assert words in problems[0].reason and (not value or value not in problems[0].reason)


def test_good_row_passes_and_year_must_match_the_manifest() -> None:
    assert check_row(GOOD, "2024") == []
    assert [p.column for p in check_row(GOOD, "2023")] == ["TAX_YEAR"]
    assert [p.column for p in check_row({**GOOD, "PERIOD_END": "2023-12-31"})] == ["PERIOD_END"]
