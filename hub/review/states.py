"""The review states and the one table of allowed transitions.

A review item is one household's submission round as a supervisor sees it::

    submitted ──verify──►  verified   (final)
        │    ──return──►  returned ──resubmission──► submitted
        │                     └─────reject─────────► rejected
        └────reject──────►  rejected   (final)

``returned`` means "go back and fix this" (reasons say what); the field worker's next
submission for the same household brings the item back to ``submitted`` by itself (nobody
decides that). ``verified`` and ``rejected`` are final: a later submission for the household
opens a new item, so a decision is never rewritten. Anything not in the table is refused (the
API answers 409 with the transitions the item allows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from hub.intake.contract import ReviewState

STATES: tuple[ReviewState, ...] = get_args(ReviewState)
Actor = Literal["decision", "resubmission"]


@dataclass(frozen=True)
class Transition:
    source: ReviewState
    target: ReviewState
    by: Actor  # a supervisor's decision, or the field worker's new submission
    reasons_required: bool


TRANSITIONS: tuple[Transition, ...] = (
    Transition("submitted", "verified", "decision", reasons_required=False),
    Transition("submitted", "returned", "decision", reasons_required=True),
    Transition("submitted", "rejected", "decision", reasons_required=True),
    Transition("returned", "rejected", "decision", reasons_required=True),
    Transition("returned", "submitted", "resubmission", reasons_required=False),
)
DECISIONS: tuple[ReviewState, ...] = ("verified", "returned", "rejected")
FINAL: frozenset[ReviewState] = frozenset({"verified", "rejected"})


class TransitionRefused(Exception):
    """A transition the table does not allow; the message says which ones it does."""

    def __init__(self, source: str, target: str, by: Actor = "decision") -> None:
        allowed = allowed_decisions(source) if by == "decision" else ()
        then = (
            f"from {source} a supervisor may decide: {', '.join(allowed)}"
            if allowed
            else f"{source} is final: nothing more may be decided on this item"
            if source in FINAL
            else f"from {source} nothing may be decided until the field worker submits again"
        )
        super().__init__(f"an item that is {source} cannot become {target}; {then}")
        self.source = source
        self.target = target
        self.allowed = allowed


def find(source: str, target: str, by: Actor) -> Transition | None:
    return next(
        (t for t in TRANSITIONS if (t.source, t.target, t.by) == (source, target, by)), None
    )


def allowed_decisions(source: str) -> tuple[str, ...]:
    return tuple(t.target for t in TRANSITIONS if t.source == source and t.by == "decision")


def check(source: str, target: str, by: Actor, reasons: tuple[str, ...] = ()) -> Transition:
    """The transition, or ``TransitionRefused``; ``ValueError`` when reasons are missing."""
    found = find(source, target, by)
    if found is None:
        raise TransitionRefused(source, target, by)
    if found.reasons_required and not reasons:
        raise ValueError(f"an item {target} needs at least one reason the field worker can act on")
    return found


def table_markdown() -> str:
    """The table as the docs show it (a unit test keeps the docs in step)."""
    rows = ["| from | to | by | reasons |", "|---|---|---|---|"]
    for t in TRANSITIONS:
        by = "supervisor's decision" if t.by == "decision" else "field worker's new submission"
        rows.append(
            f"| {t.source} | {t.target} | {by} | {'required' if t.reasons_required else '-'} |"
        )
    return "\n".join(rows)
