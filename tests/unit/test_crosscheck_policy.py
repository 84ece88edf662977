"""The registration cross-check's decisions, person by person, for each policy."""

from __future__ import annotations

import pytest

from hub.crosscheck.policy import PersonFacts, decide

NEW = PersonFacts(has_national_id=True, consent=True)
VERIFIED = PersonFacts(
    has_national_id=True, national_id_verified=True, has_result=True, consent=True
)
FAILED_BEFORE = PersonFacts(has_national_id=True, has_result=True, consent=True)
PENDING = PersonFacts(has_national_id=True, pending=True, consent=True)
NO_ID = PersonFacts(has_national_id=False, consent=True)
NO_CONSENT = PersonFacts(has_national_id=True, consent=False)
DECEASED = PersonFacts(has_national_id=True, consent=True, deceased=True)


@pytest.mark.parametrize(
    ("facts", "first", "always", "never"),
    [
        (NEW, "check", "check", "policy_never"),
        (VERIFIED, "skip", "check", "skip"),
        (FAILED_BEFORE, "skip", "check", "skip"),
        (PENDING, "skip", "check", "skip"),
        (NO_ID, "no_national_id", "no_national_id", "policy_never"),
        (NO_CONSENT, "no_consent", "no_consent", "policy_never"),
        (DECEASED, "deceased", "deceased", "policy_never"),
    ],
)
def test_each_policy_decides_as_its_table_says(facts, first, always, never):
    assert decide("first", facts) == first
    assert decide("always", facts) == always
    assert decide("never", facts) == never


def test_a_verified_national_id_counts_as_checked_for_first_even_without_a_result():
    facts = PersonFacts(has_national_id=True, national_id_verified=True, consent=True)
    assert decide("first", facts) == "skip"
    assert decide("always", facts) == "check"


def test_always_still_needs_consent_and_an_id():
    assert decide("always", PersonFacts(has_national_id=True, has_result=True)) == "no_consent"
