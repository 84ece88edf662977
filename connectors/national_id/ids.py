"""National ID and VID formats, checked before any partner is called.

Why check locally: a mistyped number must be refused at the counter with a clear reason, not
sent to the authority (which would log a failed look-up against somebody else's number) or
matched to another person. The country's numbers carry a Verhoeff check digit, which catches
every single-digit error and every swap of two adjacent digits.
"""

from __future__ import annotations

import re

# Verhoeff: multiplication table of the dihedral group D5, position permutation, inverses.
_MULTIPLY = (
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
_PERMUTE = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INVERSE = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)

NATIONAL_ID_RE = re.compile(r"[1-9][0-9]{9}")  # 9 digits of body + the check digit
VID_RE = re.compile(r"[1-9][0-9]{15}")  # MOSIP-like virtual ID: 15 digits + check digit


def verhoeff_valid(number: str) -> bool:
    """True when ``number`` (ASCII digits, check digit last) passes the Verhoeff check."""
    if not number or not number.isascii() or not number.isdigit():
        return False
    check = 0
    for position, char in enumerate(reversed(number)):
        check = _MULTIPLY[check][_PERMUTE[position % 8][ord(char) - 48]]
    return check == 0


def verhoeff_digit(body: str) -> str:
    """The check digit to append to ``body`` (used by tests to build wrong numbers)."""
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError("the body of an identifier must be decimal digits")
    check = 0
    for position, char in enumerate(reversed(body)):
        check = _MULTIPLY[check][_PERMUTE[(position + 1) % 8][ord(char) - 48]]
    return str(_INVERSE[check])


def national_id_problem(value: object, id_type: str = "UIN") -> str | None:
    """Why ``value`` is not a valid national ID (``UIN``) or ``VID``; None when it is.

    The reason says what is wrong without repeating the number (it may be somebody's).
    """
    if id_type not in ("UIN", "VID"):
        return f"identifier type must be UIN or VID, not {str(id_type)[:10]!r}"
    if not isinstance(value, str):
        return "the national ID must be a string of digits"
    pattern, length = (NATIONAL_ID_RE, 10) if id_type == "UIN" else (VID_RE, 16)
    if not pattern.fullmatch(value):
        return f"a {id_type} is {length} digits and does not start with 0"
    if not verhoeff_valid(value):
        return f"the {id_type}'s check digit is wrong (a digit is mistyped or two are swapped)"
    return None


def is_valid_national_id(value: object) -> bool:
    return national_id_problem(value, "UIN") is None
