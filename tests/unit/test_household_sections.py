"""The household page's sections without a database: provenance grouped per field (the
precedence winner and what it overrode), history lines that carry no personal data, and the
page order a new section joins."""

from __future__ import annotations

from typing import Any

import pytest

from hub.auth.roles import Principal, Role
from hub.ui import household_sections as sections
from hub.ui.household_sections import (
    Section,
    SectionContext,
    _fields,
    _summary,
    display_value,
    household_sections,
)
from registry_core.identifiers import NOTE_FIELD


def _assertion(field: str, value: Any, system: str, at: str, current: bool) -> dict[str, Any]:
    return {
        "field": field,
        "value": value,
        "source_system": system,
        "source_record_id": None,
        "asserted_at": at,
        "current": current,
    }


def test_each_field_shows_its_winner_and_what_it_overrode_newest_first() -> None:
    rows = [
        _assertion("address", "12 Mango Lane", "registry_staff", "2025-01-01T00:00:00Z", True),
        _assertion("address", "Plot 9", "self_declared", "2025-03-01T00:00:00Z", False),
        _assertion("address", "Old Road", "gis", "2024-06-01T00:00:00Z", False),
        _assertion("location", {"lat": -1.3, "lon": 36.8}, "gis", "2025-02-01T00:00:00Z", True),
        _assertion(NOTE_FIELD, {"rule": "x"}, "civil_registry", "2025-02-01T00:00:00Z", False),
    ]
    found = {f["field"]: f for f in _fields(rows)}
    assert list(found) == ["address", "location"]  # notes are not fields
    address = found["address"]
    assert address["value"] == "12 Mango Lane"
    assert address["current"]["source_system"] == "registry_staff"
    assert [o["shown"] for o in address["overridden"]] == ["Plot 9", "Old Road"]
    assert found["location"]["value"] == "-1.3, 36.8" and found["location"]["overridden"] == []


def test_a_field_whose_winner_is_unknown_shows_every_value_as_overridden() -> None:
    rows = [_assertion("sex", "female", "x", "2025-01-01T00:00:00Z", False)]
    (field,) = _fields(rows)
    assert field["current"] is None and field["value"] == ""
    assert [o["shown"] for o in field["overridden"]] == ["female"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, ""), (True, "yes"), (False, "no"), (3, "3"), ({"lat": 1, "lon": 2}, "1, 2")],
)
def test_display_value(value: Any, shown: str) -> None:
    assert display_value(value) == shown


def test_history_lines_keep_only_non_personal_details() -> None:
    data = {
        "household_id": "h",
        "person_id": "p",
        "given_name": "Wanjiku",
        "birth_date": "1984-01-02",
        "changed_fields": ["address", "location"],
        "program_code": "CT",
        "reason": "left",
    }
    line = _summary(data)
    assert line == "changed fields: address, location; reason: left; program code: CT"
    assert "Wanjiku" not in line and "1984" not in line


def test_a_new_builder_adds_its_section_in_page_order(monkeypatch: pytest.MonkeyPatch) -> None:
    def first(ctx: SectionContext) -> Section:
        return Section("first", "First", {"id": str(ctx.household_id)})

    def skipped(ctx: SectionContext) -> None:
        return None

    def issues(ctx: SectionContext) -> Section:
        return Section("issues", "Data-quality issues", {"may_change": ctx.may_change})

    monkeypatch.setattr(sections, "SECTIONS", [first, skipped, issues])
    viewer = Principal("olga", frozenset({Role.registry_staff}))
    household = {"id": "5f1e3a52-8d5e-4a43-9f43-3d4a1f0b7a10", "members": []}
    context = SectionContext(household, viewer, registry=None, sessions=None)  # type: ignore[arg-type]
    built = household_sections(context)
    assert [s.key for s in built] == ["first", "issues"]
    assert built[0].data["id"] == household["id"]
    assert built[1].template == "ui/household/_issues.html" and built[1].data["may_change"]
    auditor = SectionContext(
        household,
        Principal("audrey", frozenset({Role.auditor})),
        registry=None,  # type: ignore[arg-type]
        sessions=None,  # type: ignore[arg-type]
    )
    assert household_sections(auditor)[1].data["may_change"] is False
