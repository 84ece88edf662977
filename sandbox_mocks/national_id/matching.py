"""Per-field demographic matching, the way an ID authority's yes/no check works.

Why strict but normalised: the authority answers yes or no per field and never says what it
holds. Case, accents, punctuation and name order do not matter (counter staff write names in
either order); anything else does, so a typo in the authority's copy is a real mismatch the hub
has to handle.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from sandbox_mocks.national_id.store import IdentityRecord

_GENDERS = {
    "m": "male",
    "male": "male",
    "mle": "male",
    "f": "female",
    "female": "female",
    "fle": "female",
}
_WORD = re.compile(r"[^\W\d_]+|\d+")


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers, accents removed."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORD.findall(plain)


def match_name(given: str, record: IdentityRecord) -> bool:
    wanted = sorted(tokens(given))
    return bool(wanted) and wanted == sorted(tokens(f"{record.given_name} {record.family_name}"))


def match_dob(given: date, record: IdentityRecord) -> bool:
    return given == record.birth_date


def normalise_gender(value: str) -> str | None:
    return _GENDERS.get(value.strip().casefold())


def match_gender(given: str, record: IdentityRecord) -> bool:
    return normalise_gender(given) == record.sex


def match_phone(given: str, record: IdentityRecord) -> bool:
    digits = re.sub(r"\D", "", given)
    held = re.sub(r"\D", "", record.phone or "")
    return len(digits) >= 7 and bool(held) and held.endswith(digits[-9:])


def match_address(given: str, record: IdentityRecord) -> bool:
    """Every word given must appear in the address held (so 'Street 12' is not enough)."""
    wanted = set(tokens(given))
    return len(wanted) >= 2 and wanted <= set(tokens(record.full_address))
