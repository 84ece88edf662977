"""The review state machine: one table decides, reasons are required to return or reject, and
the docs show the same table."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.review import states

DOCS = Path(__file__).resolve().parents[2] / "docs" / "field-collection.md"


@pytest.mark.parametrize("target", ["verified", "returned", "rejected"])
def test_a_submitted_item_may_be_decided_every_way(target):
    reasons = ("photo of ID missing",) if target != "verified" else ()
    assert states.check("submitted", target, "decision", reasons).target == target


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("verified", "returned"),
        ("verified", "rejected"),
        ("rejected", "verified"),
        ("returned", "verified"),
        ("returned", "returned"),
        ("submitted", "submitted"),
    ],
)
def test_transitions_outside_the_table_are_refused_with_what_is_allowed(source, target):
    with pytest.raises(states.TransitionRefused) as refused:
        states.check(source, target, "decision", ("a reason",))
    message = str(refused.value)
    assert f"cannot become {target}" in message
    assert refused.value.allowed == states.allowed_decisions(source)
    if source in states.FINAL:
        assert "final" in message


def test_only_a_new_submission_brings_a_returned_item_back():
    assert states.check("returned", "submitted", "resubmission").by == "resubmission"
    with pytest.raises(states.TransitionRefused):
        states.check("returned", "submitted", "decision")
    with pytest.raises(states.TransitionRefused):
        states.check("verified", "submitted", "resubmission")


@pytest.mark.parametrize("target", ["returned", "rejected"])
def test_returning_or_rejecting_needs_a_reason(target):
    with pytest.raises(ValueError, match="reason"):
        states.check("submitted", target, "decision", ())


def test_the_docs_show_the_table_the_code_enforces():
    assert states.table_markdown() in DOCS.read_text(encoding="utf-8")
