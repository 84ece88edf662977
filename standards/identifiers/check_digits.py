"""Check-digit schemes of identifiers, as pure functions every layer may use.

Why several: countries chose different schemes for their numbers, and a country profile
(``standards.identifiers.profile``) names the one each identifier system carries.

- **Verhoeff** (India's Aadhaar and many national IDs): catches every single-digit error and
  every swap of two adjacent digits.
- **Luhn** (mod 10; card numbers, many tax and health numbers): catches every single-digit error
  and most adjacent swaps (not 09 <-> 90).
- **ISO/IEC 7064 MOD 11-2** (ORCID, ISNI, China's resident ID): one check character, 0-9 or X,
  catches every single error and every adjacent swap.

Each scheme has ``compute(body) -> check character`` and ``is_valid(number) -> bool`` (check
character last). Both take ASCII digits only: normalisation (separators, case) is the profile's
job, before the check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Verhoeff tables: multiplication in the dihedral group D5, and the position permutation.
_D5: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_PERMUTATION: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INVERSE: tuple[int, ...] = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def _digits(text: str) -> bool:
    return bool(text) and text.isascii() and text.isdigit()


def _require_body(body: str, scheme: str) -> None:
    if not _digits(body):
        raise ValueError(f"a {scheme} body is a non-empty string of decimal digits")


# ---------------------------------------------------------------------------- Verhoeff


def _verhoeff_state(digits: str, offset: int) -> int:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D5[check][_PERMUTATION[(position + offset) % 8][int(char)]]
    return check


def verhoeff_check_digit(body: str) -> str:
    """The Verhoeff check digit to append to ``body`` (decimal digits only)."""
    _require_body(body, "Verhoeff")
    return str(_INVERSE[_verhoeff_state(body, 1)])


def verhoeff_is_valid(number: str) -> bool:
    """True when ``number`` (digits, check digit last) passes the Verhoeff check."""
    return len(number) >= 2 and _digits(number) and _verhoeff_state(number, 0) == 0


# ---------------------------------------------------------------------------- Luhn


def _luhn_sum(digits: str, double_first: bool) -> int:
    """Sum of the Luhn digits, from the right; ``double_first`` doubles the rightmost one."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if (position % 2 == 0) == double_first:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total


def luhn_check_digit(body: str) -> str:
    """The Luhn (mod 10) check digit to append to ``body``."""
    _require_body(body, "Luhn")
    return str((10 - _luhn_sum(body, double_first=True) % 10) % 10)


def luhn_is_valid(number: str) -> bool:
    """True when ``number`` (digits, check digit last) passes the Luhn check."""
    return len(number) >= 2 and _digits(number) and _luhn_sum(number, double_first=False) % 10 == 0


# ---------------------------------------------------------------------------- ISO 7064 MOD 11-2


def iso7064_mod11_2_check_char(body: str) -> str:
    """The ISO/IEC 7064 MOD 11-2 check character (``0``-``9`` or ``X``) for ``body``.

    Pure system, radix 2, modulus 11: each digit is added and the total doubled, left to
    right; the check character brings the whole number to 1 modulo 11.
    """
    _require_body(body, "ISO 7064 MOD 11-2")
    total = 0
    for char in body:
        total = (total + int(char)) * 2
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def iso7064_mod11_2_is_valid(number: str) -> bool:
    """True when ``number`` (digits, then a check character 0-9 or X) passes MOD 11-2."""
    if len(number) < 2 or not _digits(number[:-1]):
        return False
    return iso7064_mod11_2_check_char(number[:-1]) == number[-1]


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class CheckDigitScheme:
    """A named scheme a country profile can give an identifier system."""

    name: str
    title: str  # for messages: "the Verhoeff check digit is wrong"
    compute: Callable[[str], str]
    is_valid: Callable[[str], bool]


CHECK_DIGITS: dict[str, CheckDigitScheme] = {
    scheme.name: scheme
    for scheme in (
        CheckDigitScheme("verhoeff", "Verhoeff", verhoeff_check_digit, verhoeff_is_valid),
        CheckDigitScheme("luhn", "Luhn", luhn_check_digit, luhn_is_valid),
        CheckDigitScheme(
            "iso7064_mod11_2",
            "ISO 7064 MOD 11-2",
            iso7064_mod11_2_check_char,
            iso7064_mod11_2_is_valid,
        ),
    )
}
NO_CHECK = "none"


def register_check_digit(scheme: CheckDigitScheme) -> None:
    """Add a scheme a profile can name (for a country whose numbers use another one).

    Register it before the profile is loaded: the loader refuses names it does not know.
    """
    if scheme.name == NO_CHECK or not scheme.name.isidentifier():
        raise ValueError(f"{scheme.name!r} cannot name a check-digit scheme")
    CHECK_DIGITS[scheme.name] = scheme


def scheme_names() -> list[str]:
    """Every name a profile may give ``check``: ``none`` and the registered schemes."""
    return [NO_CHECK, *sorted(CHECK_DIGITS)]
