"""Comparison levels written twice, once in Python and once as SQL, that must always agree.

Why twice: the hub scores pairs in Python (fast, no database), but a country whose registry
outgrows one machine should be able to run the very same model on splink over DuckDB or Spark.
Each level therefore carries the SQL condition splink evaluates (over ``<column>_l`` and
``<column>_r``, in DuckDB's dialect) and each comparison a Python function that returns the
index of the first level whose condition holds, reading the same normalised columns
(:func:`registry_core.matching.splink_format.splink_rows` builds those columns).

The SQL uses only functions whose results rapidfuzz reproduces: equality, ``substr``,
``length``, ``list_has_any``, ``damerau_levenshtein`` (same integers) and
``jaro_winkler_similarity``. DuckDB's and rapidfuzz's Jaro-Winkler agree to the last bit or
two of the float, and a score can land exactly on a threshold (two 10-letter names with 7
letters in common score exactly 0.8, computed as 0.7999999999999999): so both sides round the
score to 10 decimals before comparing. A score exactly at a threshold then reads as the
threshold on both sides, and a score that rounds differently would have to be a tie at the
11th decimal, which needs strings of 125 characters or more.
SQL's three-valued logic is mirrored: a condition over a NULL column is not true, so it does
not select its level. The round-trip test checks the agreement pair by pair.

Level 0 of every comparison is its null level (a value missing on a side: no evidence); the
last is the "else" level (disagreement).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from registry_core.matching.nicknames import NICKNAME_GROUPS
from registry_core.matching.normalise import PersonRecord

_raw_jw = JaroWinkler.normalized_similarity
_dl = DamerauLevenshtein.distance

#: Jaro-Winkler scores are rounded to this many decimals on both sides (see the module doc).
JW_DECIMALS = 10


def _jw(x: str, y: str) -> float:
    return round(_raw_jw(x, y), JW_DECIMALS)


NAME_CLOSE = 0.92
NAME_LOOSE = 0.8
ADDRESS_CLOSE = 0.9
ADDRESS_LOOSE = 0.8
LOCALITY_CLOSE = 0.9


@dataclass(frozen=True)
class LevelSpec:
    """One comparison level: its SQL condition, chart label and term-frequency column."""

    label: str
    sql: str
    is_null: bool = False
    tf_column: str | None = None


LevelFunction = Callable[[PersonRecord, PersonRecord], int]


@dataclass(frozen=True)
class ComparisonSpec:
    """A compared attribute: its levels (null first, else last) and the Python evaluator."""

    name: str
    description: str
    levels: tuple[LevelSpec, ...]
    level_of: LevelFunction


def _null(*columns: str) -> str:
    return " OR ".join(f'"{c}_l" IS NULL OR "{c}_r" IS NULL' for c in columns)


def _eq(column: str, other: str | None = None) -> str:
    return f'"{column}_l" = "{other or column}_r"'


def _jw_at_least(column: str, threshold: float) -> str:
    similarity = f'jaro_winkler_similarity("{column}_l", "{column}_r")'
    return f"round({similarity}, {JW_DECIMALS}) >= {threshold}"


def _dl_at_most(column: str, distance: int) -> str:
    return f'damerau_levenshtein("{column}_l", "{column}_r") <= {distance}'


def formal_names(given: str) -> list[str] | None:
    """The formal names a given name stands for (sorted), or None if it is in no nickname group.

    Fed to splink as the ``given_formal`` column; two names are nicknames of one another when
    these lists share a name (the SQL ``list_has_any``).
    """
    group = NICKNAME_GROUPS.get(given)
    return sorted(group) if group else None


def _shares_formal(x: str, y: str) -> bool:
    gx = NICKNAME_GROUPS.get(x)
    if gx is None:
        return False
    gy = NICKNAME_GROUPS.get(y)
    return gy is not None and not gx.isdisjoint(gy)


# -- given name ------------------------------------------------------------------------------

_GIVEN_LEVELS = (
    LevelSpec("given name missing", _null("given_name"), is_null=True),
    LevelSpec("exact", _eq("given_name"), tf_column="given_name"),
    LevelSpec(f"Jaro-Winkler >= {NAME_CLOSE}", _jw_at_least("given_name", NAME_CLOSE)),
    LevelSpec("nickname", 'list_has_any("given_formal_l", "given_formal_r")'),
    LevelSpec("equals the other's family name", _eq("given_name", "family_name")),
    LevelSpec(f"Jaro-Winkler >= {NAME_LOOSE}", _jw_at_least("given_name", NAME_LOOSE)),
    LevelSpec(
        "an initial",
        '(length("given_name_l") = 1 OR length("given_name_r") = 1) AND '
        'substr("given_name_l", 1, 1) = substr("given_name_r", 1, 1)',
    ),
    LevelSpec("different", "ELSE"),
)


def given_level(a: PersonRecord, b: PersonRecord) -> int:
    """Level of :data:`_GIVEN_LEVELS` for two records (cheapest checks first)."""
    x, y = a.given, b.given
    if not x or not y:
        return 0
    if x == y:
        return 1
    similarity = _jw(x, y)
    if similarity >= NAME_CLOSE:
        return 2
    if _shares_formal(x, y):
        return 3
    if b.family and x == b.family:
        return 4
    if similarity >= NAME_LOOSE:
        return 5
    if (len(x) == 1 or len(y) == 1) and x[0] == y[0]:
        return 6
    return 7


# -- family name -----------------------------------------------------------------------------

_FAMILY_LEVELS = (
    LevelSpec("family name missing", _null("family_name"), is_null=True),
    LevelSpec("exact", _eq("family_name"), tf_column="family_name"),
    LevelSpec(f"Jaro-Winkler >= {NAME_CLOSE}", _jw_at_least("family_name", NAME_CLOSE)),
    LevelSpec("equals the other's given name", _eq("family_name", "given_name")),
    LevelSpec(f"Jaro-Winkler >= {NAME_LOOSE}", _jw_at_least("family_name", NAME_LOOSE)),
    LevelSpec("different", "ELSE"),
)


def family_level(a: PersonRecord, b: PersonRecord) -> int:
    x, y = a.family, b.family
    if not x or not y:
        return 0
    if x == y:
        return 1
    similarity = _jw(x, y)
    if similarity >= NAME_CLOSE:
        return 2
    if b.given and x == b.given:
        return 3
    if similarity >= NAME_LOOSE:
        return 4
    return 5


# -- birth date ------------------------------------------------------------------------------


def _part(column: str, side: str, start: int, length: int) -> str:
    return f'substr("{column}_{side}", {start}, {length})'


_SAME_YEAR = f"{_part('birth_date', 'l', 1, 4)} = {_part('birth_date', 'r', 1, 4)}"
_SAME_MONTH = f"{_part('birth_date', 'l', 5, 2)} = {_part('birth_date', 'r', 5, 2)}"
_SAME_DAY = f"{_part('birth_date', 'l', 7, 2)} = {_part('birth_date', 'r', 7, 2)}"

_BIRTH_LEVELS = (
    LevelSpec("birth date missing", _null("birth_date"), is_null=True),
    LevelSpec("exact", _eq("birth_date")),
    LevelSpec(
        "day and month transposed",
        f"{_SAME_YEAR} AND "
        f"{_part('birth_date', 'l', 5, 2)} = {_part('birth_date', 'r', 7, 2)} AND "
        f"{_part('birth_date', 'l', 7, 2)} = {_part('birth_date', 'r', 5, 2)}",
    ),
    LevelSpec("one typo", _dl_at_most("birth_date", 1)),
    LevelSpec(
        "two of year, month, day equal",
        f"(CASE WHEN {_SAME_YEAR} THEN 1 ELSE 0 END + CASE WHEN {_SAME_MONTH} THEN 1 ELSE 0 END"
        f" + CASE WHEN {_SAME_DAY} THEN 1 ELSE 0 END) >= 2",
    ),
    LevelSpec("different", "ELSE"),
)


def birth_level(a: PersonRecord, b: PersonRecord) -> int:
    x, y = a.birth, b.birth
    if not x or not y:
        return 0
    if x == y:
        return 1
    same_year = x[0:4] == y[0:4]
    if same_year and x[4:6] == y[6:8] and x[6:8] == y[4:6]:
        return 2
    if _dl(x, y, score_cutoff=1) <= 1:
        return 3
    if same_year + (x[4:6] == y[4:6]) + (x[6:8] == y[6:8]) >= 2:
        return 4
    return 5


# -- sex, identifier, residence -----------------------------------------------------------

_SEX_LEVELS = (
    LevelSpec("sex missing", _null("sex"), is_null=True),
    LevelSpec("exact", _eq("sex")),
    LevelSpec("different", "ELSE"),
)


def sex_level(a: PersonRecord, b: PersonRecord) -> int:
    if not a.sex or not b.sex:
        return 0
    return 1 if a.sex == b.sex else 2


_ID_LEVELS = (
    LevelSpec("identifier missing", _null("national_id"), is_null=True),
    LevelSpec("exact", _eq("national_id")),
    LevelSpec("one typo", _dl_at_most("national_id", 1)),
    LevelSpec("two typos", _dl_at_most("national_id", 2)),
    LevelSpec("different", "ELSE"),
)


def identifier_level(a: PersonRecord, b: PersonRecord) -> int:
    x, y = a.national_id, b.national_id
    if not x or not y:
        return 0
    if x == y:
        return 1
    distance = _dl(x, y, score_cutoff=2)
    if distance <= 1:
        return 2
    return 3 if distance <= 2 else 4


_RESIDENCE_LEVELS = (
    LevelSpec(
        "address, locality and postcode missing",
        f"({_null('address')}) AND ({_null('locality')}) AND ({_null('postcode')})",
        is_null=True,
    ),
    LevelSpec("address equal", _eq("address")),
    LevelSpec(
        "address close",
        f"{_dl_at_most('address', 2)} OR {_jw_at_least('address', ADDRESS_CLOSE)}",
    ),
    LevelSpec("locality and postcode equal", f"{_eq('locality')} AND {_eq('postcode')}"),
    LevelSpec("postcode equal", _eq("postcode")),
    LevelSpec("locality equal", _eq("locality")),
    LevelSpec(
        "address loosely similar, postcode one typo or locality close",
        f"{_jw_at_least('address', ADDRESS_LOOSE)} OR {_dl_at_most('postcode', 1)} OR "
        f"{_jw_at_least('locality', LOCALITY_CLOSE)}",
    ),
    LevelSpec("different", "ELSE"),
)


def residence_level(a: PersonRecord, b: PersonRecord) -> int:
    """Address, locality and postcode judged as one comparison.

    Why one: they are the same fact written three ways. Scored as independent comparisons,
    two members of one household (who share all three) collect the evidence three times and
    outweigh a different given name and birth date; Fellegi-Sunter assumes comparisons are
    independent given the match status, and these are not.
    """
    has_address = bool(a.address and b.address)
    has_locality = bool(a.locality and b.locality)
    has_postcode = bool(a.postcode and b.postcode)
    if not (has_address or has_locality or has_postcode):
        return 0
    similarity = -1.0
    if has_address:
        if a.address == b.address:
            return 1
        if _dl(a.address, b.address, score_cutoff=2) <= 2:
            return 2
        similarity = _jw(a.address, b.address)
        if similarity >= ADDRESS_CLOSE:
            return 2
    same_locality = has_locality and a.locality == b.locality
    same_postcode = has_postcode and a.postcode == b.postcode
    if same_locality and same_postcode:
        return 3
    if same_postcode:
        return 4
    if same_locality:
        return 5
    if similarity >= ADDRESS_LOOSE:
        return 6
    if has_postcode and _dl(a.postcode, b.postcode, score_cutoff=1) <= 1:
        return 6
    if has_locality and _jw(a.locality, b.locality) >= LOCALITY_CLOSE:
        return 6
    return 7


COMPARISONS: tuple[ComparisonSpec, ...] = (
    ComparisonSpec("given_name", "Given name", _GIVEN_LEVELS, given_level),
    ComparisonSpec("family_name", "Family name", _FAMILY_LEVELS, family_level),
    ComparisonSpec("birth_date", "Birth date (YYYYMMDD)", _BIRTH_LEVELS, birth_level),
    ComparisonSpec("sex", "Sex", _SEX_LEVELS, sex_level),
    ComparisonSpec("national_id", "National identifier", _ID_LEVELS, identifier_level),
    ComparisonSpec(
        "residence", "Address, locality and postcode", _RESIDENCE_LEVELS, residence_level
    ),
)

_LEVEL_FUNCTIONS = tuple(spec.level_of for spec in COMPARISONS)


def comparison_vector(a: PersonRecord, b: PersonRecord) -> tuple[int, ...]:
    """The level of every comparison for one pair (aligned with :data:`COMPARISONS`)."""
    return tuple(function(a, b) for function in _LEVEL_FUNCTIONS)
