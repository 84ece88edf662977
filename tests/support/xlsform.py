"""A small household XLSForm built with openpyxl and converted by pyxform, as an administrator's
form would be: the XForm the offline page and the OpenRosa tests fill in."""

from __future__ import annotations

import io

from openpyxl import Workbook
from pyxform.xls2xform import convert

FORM_ID = "household_intake"
FORM_VERSION = "2026120501"
FORM_TITLE = "Household registration"
AREAS = (("PK-01", "District One"), ("PK-02", "District Two"))


def household_xlsform(form_id: str = FORM_ID, version: str = FORM_VERSION) -> bytes:
    """The XLSForm workbook's bytes: head of household, size (1-39), area, a note."""
    book = Workbook()
    survey = book.active
    assert survey is not None
    survey.title = "survey"
    survey.append(["type", "name", "label", "required", "constraint", "constraint_message"])
    survey.append(["text", "head_name", "Name of the household head", "yes", "", ""])
    survey.append(
        [
            "integer",
            "household_size",
            "How many people live in the household?",
            "yes",
            ". > 0 and . < 40",
            "Between 1 and 39",
        ]
    )
    survey.append(["select_one area", "admin_area", "Area", "yes", "", ""])
    survey.append(["text", "notes", "Notes", "", "", ""])
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", "label"])
    for code, label in AREAS:
        choices.append(["area", code, label])
    settings = book.create_sheet("settings")
    settings.append(["form_title", "form_id", "version"])
    settings.append([FORM_TITLE, form_id, version])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def household_xform(form_id: str = FORM_ID, version: str = FORM_VERSION) -> bytes:
    """The ODK XForm pyxform makes of ``household_xlsform`` (no Java validation step)."""
    result = convert(xlsform=io.BytesIO(household_xlsform(form_id, version)), file_type=".xlsx")
    return result.xform.encode("utf-8")
