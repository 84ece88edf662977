"""Who the registration cross-check checks: pure decisions, one table of outcomes.

``decide(policy, facts)`` answers for one person, on one triggering event:

| policy | no national ID | already checked¹ | no consent | otherwise |
|---|---|---|---|---|
| never | not checked (policy) | unchanged | not checked (policy) | not checked (policy) |
| first | not checked (no ID) | unchanged (skip) | not checked (no consent) | **check** |
| always | not checked (no ID) | **check** (if consent) | not checked (no consent) | **check** |

¹ ``first`` treats as already checked: a person with any earlier verification result, a
verified national ID, or a check already asked for (pending). A deceased person is never
checked. "Unchanged" writes nothing: the person's last outcome stays what it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.settings.intake import CrossCheckPolicy

# The consent the national ID check needs (MOSIP eKYC: the person agrees that the registry
# asks the ID authority about them). Any active consent of this purpose covers the person:
# their own, or their household's (``registry_core.consent``'s rule). The registry records the
# registration's own consent under its own program code.
IDENTITY_CHECK_PURPOSE = "identity_verification"
REGISTRY_PROGRAM = "registry"

Decision = Literal["check", "skip", "no_national_id", "no_consent", "policy_never", "deceased"]

# What "not checked" says on the household for each reason.
NOT_CHECKED_REASONS: dict[str, str] = {
    "no_national_id": "no national ID recorded: nothing to check",
    "no_consent": "no consent to the national ID check recorded",
    "policy_never": "the registration cross-check is off (crosscheck_policy = never)",
    "deceased": "the person is recorded as deceased",
}


@dataclass(frozen=True)
class PersonFacts:
    """What the registry knows of one person when a registration event arrives."""

    has_national_id: bool
    national_id_verified: bool = False
    has_result: bool = False  # an earlier verified / failed outcome
    pending: bool = False  # a check asked for and not answered yet
    consent: bool = False
    deceased: bool = False

    @property
    def checked_before(self) -> bool:
        return self.has_result or self.national_id_verified or self.pending


def decide(policy: CrossCheckPolicy, facts: PersonFacts) -> Decision:
    """What to do for one person on one registration event (see the module's table)."""
    if policy == "first" and facts.checked_before:
        return "skip"
    if policy == "never":
        return "skip" if facts.checked_before else "policy_never"
    if facts.deceased:
        return "deceased"
    if not facts.has_national_id:
        return "no_national_id"
    if not facts.consent:
        return "no_consent"
    return "check"
