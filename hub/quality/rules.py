"""The anomaly checks: one pure function per kind of data-quality issue.

Each rule reads the facts of one subject (a person or a household, gathered by
``hub.quality.facts``) and the registry-wide ``Thresholds`` (``settings.quality``), and
returns a ``Finding`` or ``None``. No database and no clock here: the caller passes ``today``,
so every edge (the 120th birthday, a death on the day of birth) is tested as plain data.

A finding names *why* with reason codes; ``REASONS`` says, for each code, what is wrong and
what a person can do about it (the dashboard and the API show that text). Its ``details`` hold
numbers and registry ids only — ages, counts, ratios, program codes — never names, birth dates
or identifier values, because issues are listed to people who may not see the record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any


class Kind:
    """The kinds of issue, one rule each."""

    IMPOSSIBLE_AGE = "impossible_age"
    IMPOSSIBLE_DATE = "impossible_date"
    HOUSEHOLD_SIZE = "household_size"
    HOUSEHOLD_COMPOSITION = "household_composition"
    MULTIPLE_HOUSEHOLDS = "multiple_households"
    INCOME_MISMATCH = "income_mismatch"
    DECEASED_NOTIFIED = "deceased_notified"
    PERSON = (IMPOSSIBLE_AGE, IMPOSSIBLE_DATE, MULTIPLE_HOUSEHOLDS, DECEASED_NOTIFIED)
    HOUSEHOLD = (HOUSEHOLD_SIZE, HOUSEHOLD_COMPOSITION, INCOME_MISMATCH)
    ALL = PERSON + HOUSEHOLD


class Severity:
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    ALL = (INFO, WARNING, ERROR)
    RANK = {INFO: 0, WARNING: 1, ERROR: 2}


# reason code -> (severity, what is wrong and what to do). Kept short: one line on a page.
REASONS: dict[str, tuple[str, str]] = {
    "born_in_future": (
        Severity.ERROR,
        "The birth date is after today. Correct it from the person's birth certificate or ID.",
    ),
    "older_than_max": (
        Severity.WARNING,
        "The age is beyond the oldest plausible age. Check the birth year against an ID "
        "document; if the person has died, record the death.",
    ),
    "death_in_future": (
        Severity.ERROR,
        "The date of death is after today. Correct it from the death record.",
    ),
    "death_before_birth": (
        Severity.ERROR,
        "The date of death is before the birth date. One of the two is wrong: check both "
        "against the civil registry.",
    ),
    "no_current_members": (
        Severity.WARNING,
        "The household has no current member. Add its members, or dissolve it if it no "
        "longer exists.",
    ),
    "too_few_members": (
        Severity.WARNING,
        "The household has fewer members than the smallest plausible household. Check "
        "whether members are missing.",
    ),
    "too_many_members": (
        Severity.WARNING,
        "The household has more members than a plausible household. Check for members "
        "registered twice or belonging to another household; split it if it is two.",
    ),
    "no_head": (
        Severity.WARNING,
        "No current member is the head of the household. Name a head.",
    ),
    "several_heads": (
        Severity.WARNING,
        "More than one current member is recorded as head. Keep one head and correct the "
        "others' relationship.",
    ),
    "head_too_young": (
        Severity.WARNING,
        "The head is younger than the youngest plausible head. Check the head's birth date, "
        "or name an adult member head.",
    ),
    "child_too_old": (
        Severity.INFO,
        "A child of the head is too close in age to the head (or older). Check the "
        "relationship and both birth dates.",
    ),
    "parent_too_young": (
        Severity.INFO,
        "A parent of the head is too close in age to the head (or younger). Check the "
        "relationship and both birth dates.",
    ),
    "deceased_member": (
        Severity.ERROR,
        "A current member has died. End the membership with the date of death (the civil "
        "registry's death record does this on its own).",
    ),
    "several_active_households": (
        Severity.ERROR,
        "The person is a current member of more than one active household. Find where they "
        "live and end the other membership.",
    ),
    "declared_far_from_tax": (
        Severity.WARNING,
        "The income the household declared is far from the income the tax authority "
        "reported for its members. Ask the household at the next visit or recertification.",
    ),
    "notified_after_death": (
        Severity.ERROR,
        "Events about this person were delivered to programs after their death. Check that "
        "the death reached the programs and that the person left every household.",
    ),
}


@dataclass(frozen=True)
class Thresholds:
    """What is plausible (``settings.quality``, docs/data-quality.md)."""

    max_age_years: int = 120
    min_household_size: int = 1
    max_household_size: int = 20
    min_head_age_years: int = 14
    min_parent_gap_years: int = 12
    income_tolerance_ratio: float = 0.5
    income_min_difference: float = 1200.0
    deceased_grace_days: int = 30


@dataclass(frozen=True)
class PersonFacts:
    """What the person rules read about one person."""

    person_id: uuid.UUID
    birth_date: date | None
    death_date: date | None
    is_deceased: bool
    # Non-dissolved households the person is a current member of, sorted.
    active_households: tuple[uuid.UUID, ...] = ()
    # The household to file the issue under (a current one, else the latest) and its area.
    household_id: uuid.UUID | None = None
    area: str | None = None
    # Deliveries to programs of events naming the person, later than death + grace: how many,
    # to which subscriptions, and the latest one's days after death.
    late_deliveries: int = 0
    late_subscriptions: tuple[str, ...] = ()
    latest_days_after_death: int = 0


@dataclass(frozen=True)
class MemberFacts:
    """A current member as the household rules read them."""

    person_id: uuid.UUID
    relationship: str
    birth_date: date | None
    is_deceased: bool


@dataclass(frozen=True)
class HouseholdFacts:
    """What the household rules read about one household."""

    household_id: uuid.UUID
    status: str
    area: str | None
    head_person_id: uuid.UUID | None
    members: tuple[MemberFacts, ...] = ()
    # Yearly incomes: the latest declared one (any non-tax source) and the tax authority's
    # total over the current members for its latest tax year (None: not known).
    declared_annual_income: float | None = None
    tax_annual_income: float | None = None
    tax_period: str | None = None


@dataclass(frozen=True)
class Finding:
    """One issue a rule found about one subject."""

    kind: str
    subject_type: str  # person | household
    subject_id: uuid.UUID
    reasons: tuple[str, ...]
    household_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = None
    area: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """The gravest of its reasons' severities."""
        return max((REASONS[r][0] for r in self.reasons), key=Severity.RANK.__getitem__)

    @property
    def dedupe_key(self) -> str:
        """One issue per kind and subject: a re-run finds the same row, never a new one."""
        return dedupe_key(self.kind, self.subject_id)


def dedupe_key(kind: str, subject_id: uuid.UUID | str) -> str:
    return f"{kind}:{subject_id}"


def age_in_years(birth: date, on: date) -> int:
    """Whole years from ``birth`` to ``on`` (negative when ``on`` is before ``birth``); born
    on 29 February, one turns a year older on 1 March in common years."""
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


def _person_finding(
    kind: str, facts: PersonFacts, reasons: list[str], **details: Any
) -> Finding | None:
    if not reasons:
        return None
    return Finding(
        kind=kind,
        subject_type="person",
        subject_id=facts.person_id,
        reasons=tuple(reasons),
        household_id=facts.household_id,
        person_id=facts.person_id,
        area=facts.area,
        details=details,
    )


def _household_finding(
    kind: str, facts: HouseholdFacts, reasons: list[str], **details: Any
) -> Finding | None:
    if not reasons:
        return None
    return Finding(
        kind=kind,
        subject_type="household",
        subject_id=facts.household_id,
        reasons=tuple(reasons),
        household_id=facts.household_id,
        area=facts.area,
        details=details,
    )


# --- person rules ---------------------------------------------------------------------------


def impossible_age(facts: PersonFacts, limits: Thresholds, today: date) -> Finding | None:
    """Born after today, or older than ``max_age_years`` (a deceased person's age is taken
    at death, so a long-dead ancestor in the civil registry is not an issue)."""
    if facts.birth_date is None:
        return None
    if facts.birth_date > today:
        return _person_finding(Kind.IMPOSSIBLE_AGE, facts, ["born_in_future"])
    on = facts.death_date if facts.death_date and facts.death_date <= today else today
    age = age_in_years(facts.birth_date, on)
    if age > limits.max_age_years:
        return _person_finding(
            Kind.IMPOSSIBLE_AGE,
            facts,
            ["older_than_max"],
            age_years=age,
            max_age_years=limits.max_age_years,
        )
    return None


def impossible_date(facts: PersonFacts, limits: Thresholds, today: date) -> Finding | None:
    """A date of death after today or before the birth date (dying on the day of birth is
    possible, and not an issue)."""
    if facts.death_date is None:
        return None
    reasons = []
    if facts.death_date > today:
        reasons.append("death_in_future")
    if facts.birth_date is not None and facts.death_date < facts.birth_date:
        reasons.append("death_before_birth")
    return _person_finding(Kind.IMPOSSIBLE_DATE, facts, reasons)


def multiple_households(facts: PersonFacts, limits: Thresholds, today: date) -> Finding | None:
    """A current member of two or more households that are not dissolved."""
    if len(facts.active_households) < 2:
        return None
    return _person_finding(
        Kind.MULTIPLE_HOUSEHOLDS,
        facts,
        ["several_active_households"],
        households=len(facts.active_households),
        household_ids=[str(h) for h in facts.active_households],
    )


def deceased_notified(facts: PersonFacts, limits: Thresholds, today: date) -> Finding | None:
    """Events naming a deceased person delivered to programs more than
    ``deceased_grace_days`` after the death (the facts loader counts them)."""
    if not (facts.is_deceased or facts.death_date) or facts.late_deliveries < 1:
        return None
    return _person_finding(
        Kind.DECEASED_NOTIFIED,
        facts,
        ["notified_after_death"],
        deliveries=facts.late_deliveries,
        subscriptions=list(facts.late_subscriptions),
        latest_days_after_death=facts.latest_days_after_death,
        grace_days=limits.deceased_grace_days,
    )


# --- household rules ------------------------------------------------------------------------


def household_size(facts: HouseholdFacts, limits: Thresholds, today: date) -> Finding | None:
    """Fewer current members than ``min_household_size`` (none at all is its own reason), or
    more than ``max_household_size``. Dissolved households are not checked."""
    if facts.status == "dissolved":
        return None
    size = len(facts.members)
    reasons = []
    if size == 0:
        reasons.append("no_current_members")
    elif size < limits.min_household_size:
        reasons.append("too_few_members")
    elif size > limits.max_household_size:
        reasons.append("too_many_members")
    return _household_finding(
        Kind.HOUSEHOLD_SIZE,
        facts,
        reasons,
        size=size,
        min_size=limits.min_household_size,
        max_size=limits.max_household_size,
    )


def household_composition(facts: HouseholdFacts, limits: Thresholds, today: date) -> Finding | None:
    """Who the current members are to each other: no head (an ``active`` household: one in
    ``needs_review`` already says so), several heads, a head too young, a child or parent of
    the head implausibly close in age, a deceased current member. Dissolved and empty
    households are left to ``household_size``."""
    if facts.status == "dissolved" or not facts.members:
        return None
    reasons: list[str] = []
    details: dict[str, Any] = {}
    heads = [m for m in facts.members if m.relationship == "head"]
    head = next((m for m in facts.members if m.person_id == facts.head_person_id), None)
    if head is None and facts.status == "active":
        reasons.append("no_head")
    if len(heads) > 1:
        reasons.append("several_heads")
        details["heads"] = len(heads)
    head = head or (heads[0] if heads else None)
    head_age = (
        age_in_years(head.birth_date, today) if head is not None and head.birth_date else None
    )
    if head_age is not None and 0 <= head_age < limits.min_head_age_years:
        reasons.append("head_too_young")
        details["head_age_years"] = head_age
    if head is not None and head.birth_date is not None:
        gap = limits.min_parent_gap_years
        children = [
            age_in_years(head.birth_date, m.birth_date)
            for m in facts.members
            if m.relationship == "child" and m.birth_date
        ]
        parents = [
            age_in_years(m.birth_date, head.birth_date)
            for m in facts.members
            if m.relationship == "parent" and m.birth_date
        ]
        if any(g < gap for g in children):
            reasons.append("child_too_old")
            details["smallest_child_gap_years"] = min(children)
        if any(g < gap for g in parents):
            reasons.append("parent_too_young")
            details["smallest_parent_gap_years"] = min(parents)
    deceased = sum(1 for m in facts.members if m.is_deceased)
    if deceased:
        reasons.append("deceased_member")
        details["deceased_members"] = deceased
    return _household_finding(Kind.HOUSEHOLD_COMPOSITION, facts, reasons, **details)


def income_mismatch(facts: HouseholdFacts, limits: Thresholds, today: date) -> Finding | None:
    """The declared yearly income against the tax authority's, when both are known: far
    apart means ``|declared - tax| / max(declared, tax)`` above ``income_tolerance_ratio``
    and the difference above ``income_min_difference``."""
    declared, tax = facts.declared_annual_income, facts.tax_annual_income
    if facts.status == "dissolved" or declared is None or tax is None:
        return None
    difference = abs(declared - tax)
    larger = max(declared, tax)
    if larger <= 0 or difference <= limits.income_min_difference:
        return None
    ratio = difference / larger
    if ratio <= limits.income_tolerance_ratio:
        return None
    return _household_finding(
        Kind.INCOME_MISMATCH,
        facts,
        ["declared_far_from_tax"],
        declared_annual=round(declared, 2),
        tax_annual=round(tax, 2),
        tax_period=facts.tax_period,
        difference_ratio=round(ratio, 3),
        tolerance_ratio=limits.income_tolerance_ratio,
    )


PersonRule = Callable[[PersonFacts, Thresholds, date], Finding | None]
HouseholdRule = Callable[[HouseholdFacts, Thresholds, date], Finding | None]

PERSON_RULES: dict[str, PersonRule] = {
    Kind.IMPOSSIBLE_AGE: impossible_age,
    Kind.IMPOSSIBLE_DATE: impossible_date,
    Kind.MULTIPLE_HOUSEHOLDS: multiple_households,
    Kind.DECEASED_NOTIFIED: deceased_notified,
}
HOUSEHOLD_RULES: dict[str, HouseholdRule] = {
    Kind.HOUSEHOLD_SIZE: household_size,
    Kind.HOUSEHOLD_COMPOSITION: household_composition,
    Kind.INCOME_MISMATCH: income_mismatch,
}


def check_person(facts: PersonFacts, limits: Thresholds, today: date) -> list[Finding]:
    """Every person rule's finding about one person."""
    return [f for rule in PERSON_RULES.values() if (f := rule(facts, limits, today))]


def check_household(facts: HouseholdFacts, limits: Thresholds, today: date) -> list[Finding]:
    """Every household rule's finding about one household."""
    return [f for rule in HOUSEHOLD_RULES.values() if (f := rule(facts, limits, today))]
