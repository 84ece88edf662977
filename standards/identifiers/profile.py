"""A country profile: how each identifier system is written, and what a valid one looks like.

Why configuration: identifier rules differ by country (Verhoeff in one, Luhn or ISO 7064 in
another, letters and leading zeros in a third) and even by deployment (the sandbox's synthetic
IDs carry a Verhoeff digit; real OpenCRVS bundles carry IDs with none). Hard-wired rules
refused real records while the API took the same values. One profile, applied by every path
(API, mappings, DCI and FHIR searches, the matcher, the national ID connector), makes a value
valid or invalid everywhere at once, and makes ``12-34 56`` and ``123456`` the same key for the
look-up hash everywhere.

An ``IdentifierRule`` normalises (removes separators, sets the case, keeps or strips leading
zeros) and then checks (length, pattern, check digit). Reasons name the system and the rule,
never the value: they reach logs, dead letters and partner systems.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache

from standards.identifiers.check_digits import CheckDigitScheme

MAX_LENGTH = 64  # the canonical schema's limit for identifier values
DEFAULT_REMOVE = " -./"  # separators people type inside numbers (whitespace always goes too)

# The rules a value can break, in the order they are checked.
RULE_TYPE = "type"
RULE_EMPTY = "empty"
RULE_LENGTH = "length"
RULE_PATTERN = "pattern"
RULE_CHECK_DIGIT = "check_digit"


@dataclass(frozen=True)
class IdentifierProblem:
    """Why a value is not a valid identifier of ``system``: the rule and a reason to act on."""

    system: str
    rule: str  # type | empty | length | pattern | check_digit
    reason: str  # starts with the system, never contains the value

    def as_dict(self) -> dict[str, str]:
        return {"system": self.system, "rule": self.rule, "reason": self.reason}


class InvalidIdentifier(ValueError):
    """A value broke its system's rule; carries the ``IdentifierProblem`` (no value)."""

    def __init__(self, problem: IdentifierProblem) -> None:
        super().__init__(problem.reason)
        self.problem = problem

    @property
    def system(self) -> str:
        return self.problem.system

    @property
    def rule(self) -> str:
        return self.problem.rule


@dataclass(frozen=True)
class Normalisation:
    """How a value is written before it is checked, stored or hashed."""

    remove: str = DEFAULT_REMOVE  # characters removed anywhere; whitespace is always removed
    case: str = "upper"  # upper | lower | keep
    leading_zeros: str = "keep"  # keep | strip

    def apply(self, value: str) -> str:
        text = "".join(ch for ch in value if ch not in self.remove and not ch.isspace())
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if self.leading_zeros == "strip" and text:
            text = text.lstrip("0") or "0"
        return text


@dataclass(frozen=True)
class IdentifierRule:
    """One identifier system of the profile."""

    system: str
    description: str
    label: str  # for people: "national ID"
    normalisation: Normalisation = Normalisation()
    pattern: str | None = None  # must match the whole normalised value
    format: str | None = None  # the pattern for people: "10 digits, the first not 0"
    check: CheckDigitScheme | None = None
    dci_identifier_type: str | None = None  # e.g. UIN (DCI code directory cd.com.01)
    fhir_system: str | None = None  # the FHIR Identifier.system URI

    @property
    def compiled(self) -> re.Pattern[str] | None:
        return None if self.pattern is None else _compile(self.pattern)

    def normalise(self, value: str) -> str:
        return self.normalisation.apply(value)

    def problem_of_normalised(self, text: str) -> IdentifierProblem | None:
        """The first rule ``text`` (already normalised) breaks, or None."""
        if not text:
            return self._problem(RULE_EMPTY, "the value is empty once separators are removed")
        if len(text) > MAX_LENGTH:
            return self._problem(RULE_LENGTH, f"longer than {MAX_LENGTH} characters")
        compiled = self.compiled
        if compiled is not None and not compiled.fullmatch(text):
            shape = f"{self.format} (pattern {self.pattern})" if self.format else self.pattern
            return self._problem(RULE_PATTERN, f"does not have the expected form: {shape}")
        if self.check is not None and not self.check.is_valid(text):
            return self._problem(
                RULE_CHECK_DIGIT,
                f"the {self.check.title} check digit is wrong "
                "(a character mistyped or two swapped)",
            )
        return None

    def problem(self, value: object) -> IdentifierProblem | None:
        """Why ``value`` is not a valid identifier of this system, or None when it is."""
        if not isinstance(value, str):
            return self._problem(RULE_TYPE, "an identifier value must be text")
        return self.problem_of_normalised(self.normalise(value))

    def _problem(self, rule: str, reason: str) -> IdentifierProblem:
        return IdentifierProblem(self.system, rule, f"{self.system} ({self.label}): {reason}")


@cache
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class IdentifierProfile:
    """The identifier systems of one country (or of the sandbox), by system code.

    A system the profile does not name gets ``fallback``: normalisation only, no pattern and no
    check digit, so a system registered later still hashes the same way on every path.
    """

    def __init__(
        self,
        name: str,
        rules: Mapping[str, IdentifierRule],
        fallback: Normalisation = Normalisation(),
        *,
        source: str = "",
        description: str = "",
    ) -> None:
        self.name = name
        self.source = source
        self.description = description
        self._rules = dict(rules)
        self._fallback = fallback
        self._by_dci = {
            r.dci_identifier_type: r.system for r in self._rules.values() if r.dci_identifier_type
        }

    def __repr__(self) -> str:
        return f"IdentifierProfile({self.name!r}, systems={sorted(self._rules)})"

    def __contains__(self, system: object) -> bool:
        return system in self._rules

    def __iter__(self) -> Iterator[IdentifierRule]:
        return iter(self._rules.values())

    @property
    def systems(self) -> list[str]:
        return sorted(self._rules)

    def rule(self, system: str) -> IdentifierRule:
        """The rule of ``system``; an unnamed system gets the fallback normalisation only."""
        found = self._rules.get(system)
        if found is None:
            found = IdentifierRule(
                system, system, system.replace("_", " "), normalisation=self._fallback
            )
        return found

    def normalise(self, system: str, value: str) -> str:
        """The form ``value`` is stored, hashed and compared in (no check)."""
        return self.rule(system).normalise(value)

    def problem(self, system: str, value: object) -> IdentifierProblem | None:
        return self.rule(system).problem(value)

    def check(self, system: str, value: object) -> str:
        """``value`` normalised, or ``InvalidIdentifier`` naming the system and the rule."""
        rule = self.rule(system)
        if not isinstance(value, str):
            raise InvalidIdentifier(rule._problem(RULE_TYPE, "an identifier value must be text"))
        text = rule.normalise(value)
        found = rule.problem_of_normalised(text)
        if found is not None:
            raise InvalidIdentifier(found)
        return text

    def system_for_dci_type(self, identifier_type: str) -> str | None:
        """The system whose DCI ``identifier_type`` is ``identifier_type``, if any."""
        return self._by_dci.get(identifier_type)
