"""Turn raw person fields into the comparable form the matcher works on.

Why one place: every path into the matcher (CSV batch, ingest worker, registry look-ups) must
fold text the same way, or the same person gets different blocking keys on two paths and is
never compared. Normalisation is deliberately lossy (case, accents, punctuation, spacing) but
never guesses: a value that cannot be read raises :class:`FieldError` naming the field, so the
caller can skip the row with a reason and no personal data in the message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from registry_core.matching.phonetic import soundex

#: The columns a person record may carry, in output order.
FIELDS: tuple[str, ...] = (
    "id",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "address",
    "locality",
    "postcode",
    "national_id",
)

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_DATE_SEPARATED = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$")
_SEX = {
    "m": "m",
    "male": "m",
    "man": "m",
    "1": "m",
    "f": "f",
    "female": "f",
    "woman": "f",
    "2": "f",
    "u": None,
    "unknown": None,
    "other": None,
    "x": None,
    "9": None,
}


class FieldError(ValueError):
    """A field value that cannot be read. ``column`` names it; the value itself is not kept."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


def fold_text(value: str | None) -> str:
    """Lower-case, strip accents, turn punctuation into spaces and collapse runs of spaces.

    ``"  O'Brien-Smith "`` becomes ``"o brien smith"``; ``"Zoë"`` becomes ``"zoe"``. Letters that
    NFKD cannot decompose (e.g. ``ß``) are case-folded rather than dropped.
    """
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", stripped).strip()


def fold_name(value: str | None) -> str:
    """A name as one comparable token: folded and with its inner spaces removed.

    Why no spaces: "van der berg", "vanderberg" and "van-der-berg" are the same name written
    three ways; comparing them joined keeps the similarity high for all of them.
    """
    return fold_text(value).replace(" ", "")


def fold_code(value: str | None) -> str:
    """Identifiers and postcodes: letters and digits only, upper-case (spacing is formatting)."""
    return fold_text(value).replace(" ", "").upper()


def parse_birth_date(value: str | None, *, lenient: bool = False) -> str | None:
    """Read a birth date as ``YYYYMMDD`` (FEBRL) or ISO ``YYYY-MM-DD`` (also ``/`` or ``.``).

    Returns the date as an 8-digit ``YYYYMMDD`` string, or None when empty. A value that is not a
    real calendar date raises :class:`FieldError`, unless ``lenient``: then eight digits are kept
    as they are (the comparators work on digits, so a typo such as day 31 in a 30-day month still
    counts as evidence) and anything else becomes None.
    """
    text = (value or "").strip()
    if not text:
        return None
    match = _DATE_SEPARATED.match(text)
    if match:
        year, month, day = match.groups()
        digits = f"{year}{int(month):02d}{int(day):02d}"
    elif len(text) == 8 and text.isdigit():
        digits = text
    else:
        if lenient:
            return None
        raise FieldError("birth_date", "not a date in YYYYMMDD or YYYY-MM-DD form")
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        if lenient:
            return digits
        raise FieldError("birth_date", "not a real calendar date") from None
    return digits


def normalise_sex(value: str | None) -> str | None:
    """``m``/``f`` or None when unknown; an unreadable code is an error, not a silent None."""
    text = fold_text(value)
    if not text:
        return None
    if text not in _SEX:
        raise FieldError("sex", "expected one of m, f, male, female, 1, 2, u, unknown")
    return _SEX[text]


@dataclass(slots=True)
class PersonRecord:
    """A person reduced to the fields the matcher compares, plus values derived once.

    Derived fields (phonetic codes, joined address) are computed at construction so that the
    pairwise comparison loop, which runs millions of times in a batch, only reads attributes.
    """

    id: str
    given: str = ""
    family: str = ""
    birth: str | None = None
    sex: str | None = None
    address: str = ""
    locality: str = ""
    postcode: str = ""
    national_id: str = ""
    given_sx: str = field(default="", init=False)
    family_sx: str = field(default="", init=False)
    address_joined: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.given_sx = soundex(self.given)
        self.family_sx = soundex(self.family)
        self.address_joined = self.address.replace(" ", "")


def make_person(
    record_id: str,
    *,
    given_name: str | None = None,
    family_name: str | None = None,
    birth_date: str | date | None = None,
    sex: str | None = None,
    address: str | None = None,
    locality: str | None = None,
    postcode: str | None = None,
    national_id: str | None = None,
    lenient_dates: bool = False,
) -> PersonRecord:
    """Build a :class:`PersonRecord` from raw values, normalising each one."""
    birth = (
        birth_date.strftime("%Y%m%d")
        if isinstance(birth_date, date)
        else parse_birth_date(birth_date, lenient=lenient_dates)
    )
    return PersonRecord(
        id=record_id,
        given=fold_name(given_name),
        family=fold_name(family_name),
        birth=birth,
        sex=normalise_sex(sex),
        address=fold_text(address),
        locality=fold_text(locality),
        postcode=fold_code(postcode),
        national_id=fold_code(national_id),
    )


def person_from_mapping(
    row: Mapping[str, str | None], *, lenient_dates: bool = False
) -> PersonRecord:
    """Build a record from a mapping keyed by :data:`FIELDS` (missing keys are empty fields)."""
    record_id = (row.get("id") or "").strip()
    if not record_id:
        raise FieldError("id", "empty")
    return make_person(
        record_id,
        given_name=row.get("given_name"),
        family_name=row.get("family_name"),
        birth_date=row.get("birth_date"),
        sex=row.get("sex"),
        address=row.get("address"),
        locality=row.get("locality"),
        postcode=row.get("postcode"),
        national_id=row.get("national_id"),
        lenient_dates=lenient_dates,
    )
