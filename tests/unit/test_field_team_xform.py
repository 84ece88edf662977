"""The simulated field team fills XForms as a device does: repeats expanded from answers, the
template copy gone, groups nested, a fresh instanceID."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from sandbox_mocks.field_team.xform import FormTemplate, XFormError, instance_id_of

openpyxl = pytest.importorskip("openpyxl")
xls2xform = pytest.importorskip("pyxform.xls2xform")


def _xform(tmp_path: Path) -> bytes:
    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    for row in [
        ["type", "name", "label"],
        ["text", "area", "Area"],
        ["begin_group", "address", "Address"],
        ["text", "street", "Street"],
        ["end_group", "", ""],
        ["begin_repeat", "member", "Member"],
        ["text", "given_name", "Given name"],
        ["integer", "age", "Age"],
        ["end_repeat", "", ""],
        ["select_multiple yn", "assets", "Assets"],
    ]:
        survey.append(row)
    choices = book.create_sheet("choices")
    choices.append(["list_name", "name", "label"])
    choices.append(["yn", "radio", "Radio"])
    choices.append(["yn", "tv", "TV"])
    settings = book.create_sheet("settings")
    settings.append(["form_id", "version", "form_title"])
    settings.append(["hh", "7", "Households"])
    path = tmp_path / "form.xlsx"
    book.save(path)
    return xls2xform.convert(xlsform=str(path)).xform.encode()


def test_fill_expands_repeats_nests_groups_and_sets_an_instance_id(tmp_path: Path) -> None:
    template = FormTemplate.from_xform(_xform(tmp_path))
    assert (template.form_id, template.version, template.title) == ("hh", "7", "Households")
    answers = {
        "area": "KE-30",
        "address": {"street": "Main"},
        "member": [{"given_name": "Ana", "age": 40}, {"given_name": "Ben", "age": 9}],
        "assets": ["radio", "tv"],
    }
    instance = etree.fromstring(template.fill(answers))
    assert instance.get("id") == "hh" and instance.get("version") == "7"
    members = instance.findall("member")
    assert [m.findtext("given_name") for m in members] == ["Ana", "Ben"]
    assert [m.findtext("age") for m in members] == ["40", "9"]
    assert all(m.get("{http://openrosa.org/javarosa}template") is None for m in members)
    assert instance.findtext("address/street") == "Main"
    assert instance.findtext("assets") == "radio tv"
    assert instance_id_of(etree.tostring(instance)).startswith("uuid:")


def test_no_members_means_no_repeat_item_and_a_given_instance_id_is_kept(
    tmp_path: Path,
) -> None:
    template = FormTemplate.from_xform(_xform(tmp_path))
    filled = template.fill({"area": "X"}, instance_id="uuid:fixed")
    assert etree.fromstring(filled).findall("member") == []
    assert instance_id_of(filled) == "uuid:fixed"


def test_a_document_that_is_not_an_xform_is_refused_with_a_reason() -> None:
    with pytest.raises(XFormError, match="primary instance"):
        FormTemplate.from_xform(b"<html xmlns='http://www.w3.org/1999/xhtml'/>")
    with pytest.raises(XFormError, match="not XML"):
        FormTemplate.from_xform(b"<unclosed")
