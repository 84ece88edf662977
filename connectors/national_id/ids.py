"""National ID and VID formats, checked before any partner is called.

Why check locally: a mistyped number must be refused at the counter with a clear reason, not
sent to the authority (which would log a failed look-up against somebody else's number) or
matched to another person. The country's numbers carry a Verhoeff check digit, which catches
every single-digit error and every swap of two adjacent digits.
"""

from __future__ import annotations

import re

from standards.identifiers import verhoeff_check_digit, verhoeff_is_valid

NATIONAL_ID_RE = re.compile(r"[1-9][0-9]{9}")  # 9 digits of body + the check digit
VID_RE = re.compile(r"[1-9][0-9]{15}")  # MOSIP-like virtual ID: 15 digits + check digit


def verhoeff_valid(number: str) -> bool:
    """True when ``number`` (ASCII digits, check digit last) passes the Verhoeff check."""
    return verhoeff_is_valid(number)


def verhoeff_digit(body: str) -> str:
    """The check digit to append to ``body`` (used by tests to build wrong numbers)."""
    return verhoeff_check_digit(body)


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
