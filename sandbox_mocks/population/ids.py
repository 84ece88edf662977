"""Identifier formats of the synthetic country, and the check digit of the national ID.

Why a check digit: real national ID numbers carry one so that a mistyped number is caught at the
counter instead of matching some other person. The sandbox's country profile
(``identifier_profile.toml``, read with ``standards.identifiers``) gives its national and virtual
IDs the Verhoeff scheme (as India's Aadhaar does): unlike Luhn it catches every single-digit
error *and* every swap of two adjacent digits, the two commonest keying errors. The generator
takes the scheme from the profile, and the validity checks here are the profile's.

Why a permutation: identifiers must be unique and look random (sequential numbers leak the
enrolment order and make every adjacent number valid), yet the generator must make them without a
table of numbers already issued. An affine map ``n -> (a*n + b) mod m`` with ``gcd(a, m) == 1``
is a bijection on ``0..m-1``, so distinct person numbers give distinct identifiers.
"""

from __future__ import annotations

import math
import random
from functools import cache
from pathlib import Path

# The rules every partner and the hub agree on are the sandbox's country profile, read with
# the standards package's loader (the same file `srhub run` gives the hub with the sandbox on).
from standards.identifiers import IdentifierProfile, load_profile

SANDBOX_PROFILE_PATH = Path(__file__).with_name("identifier_profile.toml")
NATIONAL_ID_LENGTH = 10  # 9 digits of body + 1 check digit (the profile's scheme: Verhoeff)
VID_LENGTH = 16  # virtual ID: 15 digits + check digit (MOSIP VIDs are 16 digits)


@cache
def sandbox_profile() -> IdentifierProfile:
    """The sandbox's identifier profile (``identifier_profile.toml`` beside this module)."""
    return load_profile(SANDBOX_PROFILE_PATH)


def check_character(system: str, body: str) -> str:
    """The check character the sandbox profile's ``system`` appends to ``body`` ("" if none)."""
    scheme = sandbox_profile().rule(system).check
    return scheme.compute(body) if scheme is not None else ""


def national_id_check_digit(body: str) -> str:
    """Check digit of a national ID body (9 digits), by the sandbox profile's scheme."""
    if len(body) != NATIONAL_ID_LENGTH - 1:
        raise ValueError(f"a national ID body has {NATIONAL_ID_LENGTH - 1} digits")
    return check_character("national_id", body)


def _follows(system: str, value: str | None) -> bool:
    """``value`` is written exactly as the profile normalises it and breaks none of its rules."""
    if not isinstance(value, str):
        return False
    rule = sandbox_profile().rule(system)
    return rule.normalise(value) == value and rule.problem(value) is None


def is_valid_national_id(nid: str | None) -> bool:
    """A national ID as the sandbox profile defines it: 10 digits, no leading zero, and a
    correct Verhoeff check digit."""
    return _follows("national_id", nid)


def is_valid_vid(vid: str | None) -> bool:
    """A virtual ID as the sandbox profile defines it: 16 digits with a Verhoeff digit."""
    return _follows("virtual_id", vid)


class Scrambler:
    """A seeded bijection from ``0..size-1`` onto ``offset..offset+size-1``.

    Used to turn a person's sequence number into an identifier that looks random but can never
    collide with another person's.
    """

    __slots__ = ("_a", "_b", "_offset", "size")

    def __init__(self, rng: random.Random, size: int, offset: int = 0) -> None:
        self.size = size
        self._offset = offset
        while True:
            a = rng.randrange(size // 3, size - 1)
            if math.gcd(a, size) == 1:
                break
        self._a = a
        self._b = rng.randrange(size)

    def __call__(self, n: int) -> int:
        if not 0 <= n < self.size:
            raise ValueError("sequence number out of range")
        return (self._a * n + self._b) % self.size + self._offset


class IdentifierFactory:
    """All identifier formats of one synthetic world (one seed).

    Formats (documented here because other mocks parse them):

    - national ID: 10 digits, first digit 1-9, the profile's check digit (Verhoeff) last;
    - birth registration number (BRN): ``BR`` + registration year + 8 digits; numbers of people
      already registered at the start start with 0-8, those issued during the simulated period
      with 9 (sequential per year, in registration order);
    - death registration number (DRN): ``DR`` + year + 8 digits, sequential per year;
    - tax ID (TIN) of a person: 9 digits, first digit 1-8; of an employer: ``9`` + 8 digits.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"identifiers:{seed}")
        self._nid = Scrambler(rng, 9 * 10**8, 10**8)
        self._brn = Scrambler(rng, 9 * 10**7)
        self._tin = Scrambler(rng, 8 * 10**8, 10**8)

    def national_id(self, person_number: int) -> str:
        body = str(self._nid(person_number))
        return body + check_character("national_id", body)

    def birth_registration_number(self, person_number: int, year: int) -> str:
        return f"BR{year:04d}{self._brn(person_number):08d}"

    def tax_id(self, person_number: int) -> str:
        return str(self._tin(person_number))


def new_birth_registration_number(year: int, sequence: int) -> str:
    """BRN issued during the simulated period: ``BR<year>9<7-digit sequence>``."""
    return f"BR{year:04d}9{sequence:07d}"


def new_death_registration_number(year: int, sequence: int) -> str:
    return f"DR{year:04d}{sequence:08d}"
