"""The data-quality rules as plain data: each rule's edges (the 120th birthday, a death on the
day of birth, exactly the tolerance), severities, and details without personal data."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from hub.quality import rules
from hub.quality.rules import (
    REASONS,
    HouseholdFacts,
    Kind,
    MemberFacts,
    PersonFacts,
    Thresholds,
    age_in_years,
)

TODAY = date(2026, 6, 15)
LIMITS = Thresholds()
HID = uuid.UUID("00000000-0000-0000-0000-0000000000aa")


def person(**kw: object) -> PersonFacts:
    base: dict[str, object] = {
        "person_id": uuid.uuid4(),
        "birth_date": date(1980, 1, 1),
        "death_date": None,
        "is_deceased": False,
        "household_id": HID,
        "area": "R01-D02",
    }
    base.update(kw)
    return PersonFacts(**base)  # type: ignore[arg-type]


def member(relationship: str, birth: date | None, deceased: bool = False) -> MemberFacts:
    return MemberFacts(uuid.uuid4(), relationship, birth, deceased)


def household(members: list[MemberFacts], **kw: object) -> HouseholdFacts:
    head = next((m.person_id for m in members if m.relationship == "head"), None)
    base: dict[str, object] = {
        "household_id": HID,
        "status": "active",
        "area": "R01-D02-L003",
        "head_person_id": head,
        "members": tuple(members),
    }
    base.update(kw)
    return HouseholdFacts(**base)  # type: ignore[arg-type]


# --- age arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "on", "years"),
    [
        (date(1906, 6, 15), date(2026, 6, 15), 120),  # birthday today
        (date(1906, 6, 16), date(2026, 6, 15), 119),  # birthday tomorrow
        (date(2000, 2, 29), date(2025, 2, 28), 24),  # leap-day birth, common year
        (date(2000, 2, 29), date(2025, 3, 1), 25),
        (date(2027, 1, 1), date(2026, 6, 15), -1),  # not yet born
    ],
)
def test_age_in_years(birth: date, on: date, years: int) -> None:
    assert age_in_years(birth, on) == years


# --- impossible_age ---------------------------------------------------------------------------


def test_a_person_aged_exactly_the_maximum_is_plausible_and_one_day_older_is_not() -> None:
    assert rules.impossible_age(person(birth_date=date(1906, 6, 15)), LIMITS, TODAY) is None
    found = rules.impossible_age(person(birth_date=date(1905, 6, 14)), LIMITS, TODAY)
    assert found is not None and found.reasons == ("older_than_max",)
    assert found.details == {"age_years": 121, "max_age_years": 120}
    assert found.severity == "warning" and found.subject_type == "person"


def test_a_birth_after_today_is_an_error_and_today_is_fine() -> None:
    assert rules.impossible_age(person(birth_date=TODAY), LIMITS, TODAY) is None
    found = rules.impossible_age(person(birth_date=date(2026, 6, 16)), LIMITS, TODAY)
    assert found is not None and found.reasons == ("born_in_future",)
    assert found.severity == "error"


def test_a_deceased_person_is_aged_at_death() -> None:
    long_dead = person(birth_date=date(1850, 1, 1), death_date=date(1930, 1, 1), is_deceased=True)
    assert rules.impossible_age(long_dead, LIMITS, TODAY) is None
    alive_on_paper = person(birth_date=date(1850, 1, 1))
    assert rules.impossible_age(alive_on_paper, LIMITS, TODAY) is not None


def test_the_maximum_age_is_a_setting_and_no_birth_date_is_not_an_issue() -> None:
    strict = Thresholds(max_age_years=100)
    found = rules.impossible_age(person(birth_date=date(1925, 1, 1)), strict, TODAY)
    assert found is not None and found.details["max_age_years"] == 100
    assert rules.impossible_age(person(birth_date=None), LIMITS, TODAY) is None


# --- impossible_date --------------------------------------------------------------------------


def test_death_on_the_day_of_birth_is_possible() -> None:
    same_day = person(birth_date=date(2020, 5, 5), death_date=date(2020, 5, 5), is_deceased=True)
    assert rules.impossible_date(same_day, LIMITS, TODAY) is None


def test_death_before_birth_and_death_in_the_future_are_both_named() -> None:
    found = rules.impossible_date(
        person(birth_date=date(2030, 1, 1), death_date=date(2027, 1, 1)), LIMITS, TODAY
    )
    assert found is not None
    assert found.reasons == ("death_in_future", "death_before_birth")
    assert found.kind == Kind.IMPOSSIBLE_DATE and found.severity == "error"
    assert rules.impossible_date(person(death_date=TODAY), LIMITS, TODAY) is None
    assert rules.impossible_date(person(death_date=None), LIMITS, TODAY) is None


# --- multiple_households ----------------------------------------------------------------------


def test_one_active_household_is_fine_two_are_an_issue_listing_both() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert rules.multiple_households(person(active_households=(a,)), LIMITS, TODAY) is None
    found = rules.multiple_households(person(active_households=(a, b)), LIMITS, TODAY)
    assert found is not None and found.details["households"] == 2
    assert found.details["household_ids"] == [str(a), str(b)]
    assert found.severity == "error"


# --- deceased_notified ------------------------------------------------------------------------


def test_a_deceased_person_with_late_deliveries_is_an_issue_a_living_one_is_not() -> None:
    dead = person(
        death_date=date(2026, 1, 1),
        is_deceased=True,
        late_deliveries=3,
        late_subscriptions=("cash-transfer",),
        latest_days_after_death=95,
    )
    found = rules.deceased_notified(dead, LIMITS, TODAY)
    assert found is not None and found.reasons == ("notified_after_death",)
    assert found.details == {
        "deliveries": 3,
        "subscriptions": ["cash-transfer"],
        "latest_days_after_death": 95,
        "grace_days": 30,
    }
    no_late = person(death_date=date(2026, 1, 1), is_deceased=True, late_deliveries=0)
    assert rules.deceased_notified(no_late, LIMITS, TODAY) is None
    living = person(late_deliveries=2)
    assert rules.deceased_notified(living, LIMITS, TODAY) is None


# --- household_size ---------------------------------------------------------------------------


def test_household_size_bounds_are_inclusive() -> None:
    limits = Thresholds(min_household_size=2, max_household_size=3)
    adult = date(1980, 1, 1)
    one = household([member("head", adult)])
    two = household([member("head", adult), member("spouse", adult)])
    four = household([member("head", adult)] + [member("child", date(2010, 1, 1))] * 3)
    assert rules.household_size(two, limits, TODAY) is None
    few = rules.household_size(one, limits, TODAY)
    assert few is not None and few.reasons == ("too_few_members",)
    many = rules.household_size(four, limits, TODAY)
    assert many is not None and many.reasons == ("too_many_members",)
    assert many.details == {"size": 4, "min_size": 2, "max_size": 3}


def test_an_empty_active_household_is_its_own_reason_and_a_dissolved_one_is_not_checked() -> None:
    empty = rules.household_size(household([]), LIMITS, TODAY)
    assert empty is not None and empty.reasons == ("no_current_members",)
    assert rules.household_size(household([], status="dissolved"), LIMITS, TODAY) is None


# --- household_composition --------------------------------------------------------------------


def test_a_plausible_family_has_no_composition_issue() -> None:
    family = household(
        [
            member("head", date(1980, 1, 1)),
            member("spouse", date(1982, 1, 1)),
            member("child", date(2010, 1, 1)),
            member("parent", date(1950, 1, 1)),
        ]
    )
    assert rules.household_composition(family, LIMITS, TODAY) is None


def test_no_head_is_an_issue_of_an_active_household_only() -> None:
    members = [member("spouse", date(1980, 1, 1))]
    found = rules.household_composition(household(members), LIMITS, TODAY)
    assert found is not None and found.reasons == ("no_head",)
    waiting = household(members, status="needs_review")  # its status already says so
    assert rules.household_composition(waiting, LIMITS, TODAY) is None


def test_several_heads_a_young_head_and_age_gaps() -> None:
    head = member("head", date(2013, 1, 1))  # 13 on TODAY
    found = rules.household_composition(
        household(
            [
                head,
                member("head", date(1990, 1, 1)),
                member("child", date(2005, 1, 1)),  # older than the head
                member("parent", date(2003, 1, 1)),  # 10 years older: too close
            ],
            head_person_id=head.person_id,
        ),
        LIMITS,
        TODAY,
    )
    assert found is not None
    assert found.reasons == ("several_heads", "head_too_young", "child_too_old", "parent_too_young")
    assert found.details == {
        "heads": 2,
        "head_age_years": 13,
        "smallest_child_gap_years": -8,
        "smallest_parent_gap_years": 10,
    }
    assert found.severity == "warning"


def test_the_parent_gap_is_inclusive_at_the_threshold() -> None:
    exactly = household([member("head", date(2000, 1, 1)), member("child", date(2012, 1, 1))])
    assert rules.household_composition(exactly, LIMITS, TODAY) is None
    closer = household([member("head", date(2000, 1, 1)), member("child", date(2011, 12, 31))])
    found = rules.household_composition(closer, LIMITS, TODAY)
    assert found is not None and found.reasons == ("child_too_old",)
    assert found.severity == "info"


def test_a_deceased_current_member_is_an_error() -> None:
    found = rules.household_composition(
        household([member("head", date(1980, 1, 1)), member("spouse", date(1979, 1, 1), True)]),
        LIMITS,
        TODAY,
    )
    assert found is not None and found.reasons == ("deceased_member",)
    assert found.details == {"deceased_members": 1} and found.severity == "error"


# --- income_mismatch --------------------------------------------------------------------------


def _incomes(declared: float | None, tax: float | None) -> HouseholdFacts:
    return household(
        [member("head", date(1980, 1, 1))],
        declared_annual_income=declared,
        tax_annual_income=tax,
        tax_period="2025",
    )


def test_income_far_from_tax_is_an_issue_both_ways() -> None:
    low = rules.income_mismatch(_incomes(1200.0, 24000.0), LIMITS, TODAY)
    assert low is not None and low.reasons == ("declared_far_from_tax",)
    assert low.details == {
        "declared_annual": 1200.0,
        "tax_annual": 24000.0,
        "tax_period": "2025",
        "difference_ratio": 0.95,
        "tolerance_ratio": 0.5,
    }
    high = rules.income_mismatch(_incomes(24000.0, 1200.0), LIMITS, TODAY)
    assert high is not None and high.details["difference_ratio"] == 0.95


def test_income_within_the_tolerance_ratio_or_the_minimum_difference_is_fine() -> None:
    assert rules.income_mismatch(_incomes(10000.0, 20000.0), LIMITS, TODAY) is None  # 0.5
    assert rules.income_mismatch(_incomes(9999.0, 20000.0), LIMITS, TODAY) is not None
    tiny = Thresholds(income_min_difference=1200.0)
    assert rules.income_mismatch(_incomes(100.0, 1200.0), tiny, TODAY) is None  # 1100 apart


def test_income_is_only_compared_when_both_are_known() -> None:
    assert rules.income_mismatch(_incomes(None, 24000.0), LIMITS, TODAY) is None
    assert rules.income_mismatch(_incomes(1200.0, None), LIMITS, TODAY) is None
    assert rules.income_mismatch(_incomes(0.0, 0.0), LIMITS, TODAY) is None


# --- the catalogue ----------------------------------------------------------------------------


def test_every_rule_is_listed_once_and_every_reason_says_what_to_do() -> None:
    assert set(rules.PERSON_RULES) == set(Kind.PERSON)
    assert set(rules.HOUSEHOLD_RULES) == set(Kind.HOUSEHOLD)
    for severity, text in REASONS.values():
        assert severity in rules.Severity.ALL
        assert text.endswith(".") and len(text) < 240


def test_a_finding_keeps_no_personal_data_and_dedupes_by_kind_and_subject() -> None:
    subject = person(birth_date=date(1890, 3, 4))
    found = rules.check_person(subject, LIMITS, TODAY)
    assert [f.kind for f in found] == [Kind.IMPOSSIBLE_AGE]
    assert found[0].dedupe_key == f"impossible_age:{subject.person_id}"
    text = repr(found[0].details)
    assert "1890" not in text and "03-04" not in text
