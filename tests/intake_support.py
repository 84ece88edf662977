"""Real XLSForms for the intake tests, and instances built from the XForms pyxform makes of
them (the way a device fills a form: the primary instance, its repeat template cloned per
member, meta/instanceID set)."""

from __future__ import annotations

import copy
import io
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree
from openpyxl import Workbook

XF = "http://www.w3.org/2002/xforms"
JR = "http://openrosa.org/javarosa"

SURVEY_HEADER = (
    "type",
    "name",
    "label",
    "required",
    "constraint",
    "relevant",
    "constraint_message",
)

HOUSEHOLD_SURVEY: list[tuple[str, ...]] = [
    ("hidden", "household_id", "", "", "", "", ""),
    ("hidden", "base_version", "", "", "", "", ""),
    ("text", "admin_area_code", "Area", "yes", "regex(., '^[A-Za-z0-9-]+$')", "", ""),
    ("text", "address", "Address", "", "", "", ""),
    ("geopoint", "location", "Where", "", "", "", ""),
    ("select_one yes_no", "consent_national_id_check", "Consent", "yes", "", "", ""),
    ("begin_repeat", "members", "Member", "", "", "", ""),
    ("hidden", "person_id", "", "", "", "", ""),
    ("text", "given_name", "Given", "yes", "", "", ""),
    ("text", "family_name", "Family", "yes", "", "", ""),
    ("select_one sex", "sex", "Sex", "yes", "", "", ""),
    ("date", "birth_date", "Born", "yes", ". <= today()", "", "not in the future"),
    ("select_one relationship", "relationship", "Relationship", "yes", "", "", ""),
    ("text", "national_id", "National ID", "", "", "", ""),
    ("select_multiple assets", "owns", "Owns", "", "", "", ""),
    ("end_repeat", "", "", "", "", "", ""),
    ("begin_group", "dwelling", "Dwelling", "", "", "", ""),
    ("integer", "rooms", "Rooms", "yes", ". >= 1 and . <= 30", "", "1 to 30 rooms"),
    ("select_one yes_no", "has_land", "Land?", "", "", "", ""),
    ("decimal", "land_ha", "Hectares", "yes", ". > 0", "${has_land} = 'yes'", ""),
    ("end_group", "", "", "", "", "", ""),
]

CHOICES: list[tuple[str, str, str]] = [
    ("yes_no", "yes", "Yes"),
    ("yes_no", "no", "No"),
    ("sex", "male", "Male"),
    ("sex", "female", "Female"),
    ("relationship", "head", "Head"),
    ("relationship", "spouse", "Spouse"),
    ("relationship", "child", "Child"),
    ("assets", "tv", "TV"),
    ("assets", "radio", "Radio"),
]


def xlsform(
    survey: Sequence[Sequence[str]] = HOUSEHOLD_SURVEY,
    *,
    form_id: str = "hh_test",
    version: str | None = "1",
    choices: Sequence[Sequence[str]] = CHOICES,
    extra_rows: Sequence[Sequence[str]] = (),
) -> bytes:
    """An .xlsx XLSForm; ``extra_rows`` are appended to the survey (a program's new
    questions)."""
    book = Workbook()
    sheet = book.active
    sheet.title = "survey"
    sheet.append(list(SURVEY_HEADER))
    for row in [*survey, *extra_rows]:
        sheet.append(list(row))
    if choices:
        sheet_c = book.create_sheet("choices")
        sheet_c.append(["list_name", "name", "label"])
        for row in choices:
            sheet_c.append(list(row))
    settings = book.create_sheet("settings")
    if version is None:
        settings.append(["form_title", "form_id"])
        settings.append(["Test household", form_id])
    else:
        settings.append(["form_title", "form_id", "version"])
        settings.append(["Test household", form_id, version])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _plain(element: etree._Element) -> etree._Element:
    """A copy without the XForms namespace (submissions carry none)."""
    name = etree.QName(element).localname
    out = etree.Element(name, {k: v for k, v in element.attrib.items() if not k.startswith("{")})
    for child in element:
        if isinstance(child.tag, str):
            out.append(_plain(child))
    return out


def instance(
    xform: bytes,
    answers: Mapping[str, Any],
    members: Sequence[Mapping[str, Any]] = (),
    *,
    instance_id: str | None = None,
) -> bytes:
    """Fill the XForm's primary instance: ``answers`` by question name (anywhere outside the
    members repeat), ``members`` one dict per repeat instance."""
    doc = etree.fromstring(xform)
    primary = doc.find(f".//{{{XF}}}model/{{{XF}}}instance")
    assert primary is not None
    source = primary[0]
    template = next(
        (
            e
            for e in source.iter()
            if isinstance(e.tag, str) and e.get(f"{{{JR}}}template") is not None
        ),
        None,
    )
    root = _plain(source)
    root.set("id", source.get("id", ""))
    if source.get("version"):
        root.set("version", source.get("version", ""))
    for element in list(root.iter("members")):
        element.getparent().remove(element)
    anchor = None
    for index, child in enumerate(source):
        if etree.QName(child).localname == "members":
            anchor = index
            break
    for number, member in enumerate(members):
        assert template is not None
        node = _plain(template)
        for key, value in member.items():
            found = node.find(key)
            assert found is not None, f"no question {key} in the repeat"
            found.text = str(value)
        root.insert((anchor or 0) + number, node)
    for key, value in answers.items():
        found = next((e for e in root.iter(key) if e.getparent().tag != "members"), None)
        assert found is not None, f"no question {key}"
        found.text = str(value)
    meta = root.find("meta")
    assert meta is not None
    meta.find("instanceID").text = instance_id or f"uuid:{uuid.uuid4()}"
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def head(**overrides: Any) -> dict[str, Any]:
    base = {
        "given_name": "Amina",
        "family_name": "Khan",
        "sex": "female",
        "birth_date": "1980-04-02",
        "relationship": "head",
    }
    base.update(overrides)
    return base


def household(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "admin_area_code": "R01-D02",
        "consent_national_id_check": "yes",
        "rooms": "3",
    }
    base.update(overrides)
    return base


def copy_of(data: bytes) -> bytes:
    return copy.copy(data)
