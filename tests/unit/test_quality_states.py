"""People's actions on a data-quality issue: which state each starts from and leads to, the
reason a dismissal needs, who and when are kept; and the area grouping of the summary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.quality import service
from hub.quality.tables import DataQualityIssue, IssueState

NOW = datetime(2026, 6, 15, 9, 30, tzinfo=UTC)


def issue(state: str = IssueState.OPEN) -> DataQualityIssue:
    return DataQualityIssue(kind="household_size", state=state, reasons=[], details={})


@pytest.mark.parametrize(
    ("state", "allowed"),
    [
        ("open", ["acknowledge", "resolve", "dismiss"]),
        ("acknowledged", ["resolve", "dismiss"]),
        ("resolved", []),
        ("dismissed", []),
    ],
)
def test_the_actions_each_state_allows(state: str, allowed: list[str]) -> None:
    assert service.allowed_actions(state) == allowed


def test_acknowledge_then_resolve_keeps_who_when_and_why() -> None:
    row = issue()
    service.change_state(row, "acknowledge", "amina", None, NOW)
    assert row.state == "acknowledged" and row.resolved_at is None
    assert (row.state_changed_by, row.state_changed_at) == ("amina", NOW)
    service.change_state(row, "resolve", "baraka", " fixed on site ", NOW)
    assert row.state == "resolved" and row.resolved_at == NOW
    assert (row.state_changed_by, row.state_reason) == ("baraka", "fixed on site")


def test_a_refused_action_names_what_the_issue_allows_and_changes_nothing() -> None:
    row = issue(IssueState.ACKNOWLEDGED)
    with pytest.raises(service.TransitionRefused, match=r"possible: resolve, dismiss"):
        service.change_state(row, "acknowledge", "amina", None, NOW)
    assert row.state == "acknowledged" and row.state_changed_by is None
    closed = issue(IssueState.DISMISSED)
    with pytest.raises(service.TransitionRefused, match=r"possible: none"):
        service.change_state(closed, "resolve", "amina", None, NOW)
    with pytest.raises(service.TransitionRefused, match="unknown action"):
        service.change_state(issue(), "delete", "amina", None, NOW)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_dismissing_needs_a_reason(reason: str | None) -> None:
    row = issue()
    with pytest.raises(service.TransitionRefused, match="needs a reason"):
        service.change_state(row, "dismiss", "amina", reason, NOW)
    assert row.state == "open"
    service.change_state(row, "dismiss", "amina", "a twin, checked", NOW)
    assert row.state == "dismissed" and row.state_reason == "a twin, checked"


@pytest.mark.parametrize(
    ("area", "level", "group"),
    [
        ("R01-D02-L003", 1, "R01"),
        ("R01-D02-L003", 2, "R01-D02"),
        ("R01-D02-L003", 6, "R01-D02-L003"),
        (None, 1, "(none)"),
        ("", 2, "(none)"),
    ],
)
def test_areas_group_by_their_first_parts(area: str | None, level: int, group: str) -> None:
    assert service.area_group(area, level) == group
