"""Check digits of identifiers, as pure functions every layer may use.

Why here: a connector must refuse a mistyped national ID at the edge (a tax row whose ID fails
its check digit would otherwise attach someone's income to a stranger), and the check must not
depend on the sandbox that generates such IDs. The national ID uses the Verhoeff scheme (as
India's Aadhaar does): it catches every single-digit error and every swap of adjacent digits,
which the simpler Luhn check does not.
"""

from __future__ import annotations

import re

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

NATIONAL_ID_RE = re.compile(r"^[1-9][0-9]{9}$")  # 9 digits of body, the Verhoeff digit last


def _verhoeff_state(digits: str, offset: int) -> int:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D5[check][_PERMUTATION[(position + offset) % 8][int(char)]]
    return check


def verhoeff_check_digit(body: str) -> str:
    """The Verhoeff check digit to append to ``body`` (decimal digits only)."""
    if not body.isdigit() or not body.isascii():
        raise ValueError("a Verhoeff body is a non-empty string of decimal digits")
    return str(_INVERSE[_verhoeff_state(body, 1)])


def verhoeff_is_valid(number: str) -> bool:
    """True when ``number`` (digits, check digit last) passes the Verhoeff check."""
    if len(number) < 2 or not number.isdigit() or not number.isascii():
        return False
    return _verhoeff_state(number, 0) == 0


def national_id_problem(value: str) -> str | None:
    """Why ``value`` is not a well-formed national ID, or None when it is.

    The reason never repeats the value: it ends up in reports and logs.
    """
    if not NATIONAL_ID_RE.match(value):
        return "national ID must be 10 digits, not starting with 0"
    if not verhoeff_is_valid(value):
        return "national ID check digit (Verhoeff) is wrong"
    return None
