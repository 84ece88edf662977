"""National ID and VID formats, checked before any partner is called.

Why check locally: a mistyped number must be refused at the counter with a clear reason, not
sent to the authority (which would log a failed look-up against somebody else's number) or
matched to another person. What "well-formed" means is the country's business: the rules come
from the identifier profile the connector is given (``ConnectorContext.identifiers``): the
``national_id`` system for a UIN, ``virtual_id`` for a VID. The sandbox's profile gives both a
Verhoeff check digit; the built-in one checks the form only.
"""

from __future__ import annotations

from standards.identifiers import (
    IdentifierProfile,
    default_profile,
    verhoeff_check_digit,
    verhoeff_is_valid,
)

# The authority's identifier types (MOSIP's individualIdType) -> the profile's systems.
ID_TYPE_SYSTEMS: dict[str, str] = {"UIN": "national_id", "VID": "virtual_id"}


def verhoeff_valid(number: str) -> bool:
    """True when ``number`` (ASCII digits, check digit last) passes the Verhoeff check."""
    return verhoeff_is_valid(number)


def verhoeff_digit(body: str) -> str:
    """The check digit to append to ``body`` (used by tests to build wrong numbers)."""
    return verhoeff_check_digit(body)


def national_id_problem(
    value: object, id_type: str = "UIN", profile: IdentifierProfile | None = None
) -> str | None:
    """Why ``value`` is not a valid national ID (``UIN``) or ``VID`` under ``profile``
    (default: the built-in one); None when it is.

    The reason names the system and the rule, never the number (it may be somebody's).
    """
    system = ID_TYPE_SYSTEMS.get(id_type)
    if system is None:
        return f"identifier type must be UIN or VID, not {str(id_type)[:10]!r}"
    found = (profile or default_profile()).problem(system, value)
    return None if found is None else found.reason


def normalised_national_id(
    value: str, id_type: str = "UIN", profile: IdentifierProfile | None = None
) -> str:
    """``value`` as the profile writes it (separators removed...), the form sent to the
    authority; call ``national_id_problem`` first."""
    return (profile or default_profile()).normalise(ID_TYPE_SYSTEMS.get(id_type, ""), value)


def is_valid_national_id(value: object, profile: IdentifierProfile | None = None) -> bool:
    return national_id_problem(value, "UIN", profile) is None
