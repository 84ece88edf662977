"""Writes household_registration.xlsx, the sample XLSForm ``srhub run`` loads.

Kept as code so reviewers read the questions as text; run it after changing them:
``python -m hub.intake.sample_forms.make_household_registration``. Raise VERSION with every
change: a version is uploaded once. Core question names follow mappings/specs/intake_*.toml;
every other question becomes a household or person attribute.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openpyxl import Workbook

FORM_ID = "household_registration"
VERSION = "2026120501"
TITLE = "Household registration"

SURVEY = [
    (
        "type",
        "name",
        "label",
        "hint",
        "required",
        "constraint",
        "constraint_message",
        "relevant",
        "appearance",
    ),
    ("start", "start", "", "", "", "", "", "", ""),
    ("end", "end", "", "", "", "", "", "", ""),
    ("hidden", "household_id", "", "", "", "", "", "", ""),
    ("hidden", "base_version", "", "", "", "", "", "", ""),
    (
        "text",
        "admin_area_code",
        "Administrative area code",
        "e.g. R01-D02-L003",
        "yes",
        "regex(., '^[A-Za-z0-9][A-Za-z0-9-]{0,63}$')",
        "Letters, digits and '-' only, as on the area list",
        "",
        "",
    ),
    ("text", "address", "Address or directions", "", "", "string-length(.) <= 500", "", "", ""),
    ("geopoint", "location", "Location of the dwelling", "", "", "", "", "", ""),
    (
        "select_one yes_no",
        "consent_national_id_check",
        "Does the household agree that the registry checks members' national IDs with the "
        "national ID authority?",
        "",
        "yes",
        "",
        "",
        "",
        "",
    ),
    (
        "begin_repeat",
        "members",
        "Household member",
        "Start with the head of household",
        "",
        "",
        "",
        "",
        "",
    ),
    ("text", "given_name", "Given name", "", "yes", "", "", "", ""),
    ("text", "family_name", "Family name", "", "yes", "", "", "", ""),
    ("text", "other_names", "Other names", "", "", "", "", "", ""),
    ("select_one sex", "sex", "Sex", "", "yes", "", "", "", ""),
    (
        "date",
        "birth_date",
        "Date of birth",
        "",
        "yes",
        ". <= today()",
        "The date of birth cannot be in the future",
        "",
        "",
    ),
    (
        "select_one relationship",
        "relationship",
        "Relationship to the head",
        "",
        "yes",
        "",
        "",
        "",
        "",
    ),
    (
        "text",
        "national_id",
        "National ID number",
        "Leave empty if the person has none",
        "",
        "regex(., '^[0-9]{6,20}$')",
        "Digits only",
        "",
        "",
    ),
    (
        "select_one yes_no",
        "disability",
        "Does this person have a disability?",
        "",
        "",
        "",
        "",
        "",
        "",
    ),
    ("end_repeat", "", "", "", "", "", "", "", ""),
    ("begin_group", "dwelling", "Dwelling", "", "", "", "", "", ""),
    ("select_one roof", "roof_material", "Main roof material", "", "yes", "", "", "", ""),
    (
        "integer",
        "rooms",
        "Number of rooms used for sleeping",
        "",
        "yes",
        ". >= 1 and . <= 30",
        "Between 1 and 30",
        "",
        "",
    ),
    ("end_group", "", "", "", "", "", "", "", ""),
    ("begin_group", "income", "Income", "", "", "", "", "", ""),
    (
        "decimal",
        "monthly_income",
        "Household income last month",
        "",
        "",
        ". >= 0",
        "Cannot be negative",
        "",
        "",
    ),
    (
        "select_one yes_no",
        "receives_transfers",
        "Does the household receive cash transfers?",
        "",
        "",
        "",
        "",
        "",
        "",
    ),
    ("end_group", "", "", "", "", "", "", "", ""),
]

CHOICES = [
    ("list_name", "name", "label"),
    ("yes_no", "yes", "Yes"),
    ("yes_no", "no", "No"),
    ("sex", "male", "Male"),
    ("sex", "female", "Female"),
    ("sex", "other", "Other"),
    ("relationship", "head", "Head of household"),
    ("relationship", "spouse", "Spouse or partner"),
    ("relationship", "child", "Child"),
    ("relationship", "parent", "Parent"),
    ("relationship", "grandchild", "Grandchild"),
    ("relationship", "grandparent", "Grandparent"),
    ("relationship", "sibling", "Brother or sister"),
    ("relationship", "other_relative", "Other relative"),
    ("relationship", "non_relative", "Not related"),
    ("roof", "metal", "Metal sheets"),
    ("roof", "tiles", "Tiles"),
    ("roof", "concrete", "Concrete"),
    ("roof", "thatch", "Thatch or leaves"),
    ("roof", "other", "Other"),
]

SETTINGS = [("form_title", "form_id", "version"), (TITLE, FORM_ID, VERSION)]


def build() -> Workbook:
    workbook = Workbook()
    survey = workbook.active
    survey.title = "survey"
    for row in SURVEY:
        survey.append(list(row))
    choices = workbook.create_sheet("choices")
    for choice in CHOICES:
        choices.append(list(choice))
    settings = workbook.create_sheet("settings")
    for setting in SETTINGS:
        settings.append(list(setting))
    return workbook


def main(argv: list[str]) -> None:
    target = (
        Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("household_registration.xlsx")
    )
    build().save(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv)
