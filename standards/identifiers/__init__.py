"""Identifier systems as configuration: check-digit schemes and the country profile.

``check_digits``: Verhoeff, Luhn, ISO 7064 MOD 11-2 (pure functions). ``profile``: how each
system is normalised and checked. ``loader``: reading a profile file (``load_profile``) or the
built-in one (``default_profile``). See docs/identifiers.md.
"""

from standards.identifiers.check_digits import (
    CHECK_DIGITS,
    CheckDigitScheme,
    iso7064_mod11_2_check_char,
    iso7064_mod11_2_is_valid,
    luhn_check_digit,
    luhn_is_valid,
    register_check_digit,
    verhoeff_check_digit,
    verhoeff_is_valid,
)
from standards.identifiers.loader import (
    REQUIRED_SYSTEMS,
    ProfileError,
    default_profile,
    load_profile,
    parse_profile,
)
from standards.identifiers.profile import (
    IdentifierProblem,
    IdentifierProfile,
    IdentifierRule,
    InvalidIdentifier,
    Normalisation,
)

__all__ = [
    "CHECK_DIGITS",
    "REQUIRED_SYSTEMS",
    "CheckDigitScheme",
    "IdentifierProblem",
    "IdentifierProfile",
    "IdentifierRule",
    "InvalidIdentifier",
    "Normalisation",
    "ProfileError",
    "default_profile",
    "iso7064_mod11_2_check_char",
    "iso7064_mod11_2_is_valid",
    "load_profile",
    "luhn_check_digit",
    "luhn_is_valid",
    "parse_profile",
    "register_check_digit",
    "verhoeff_check_digit",
    "verhoeff_is_valid",
]
