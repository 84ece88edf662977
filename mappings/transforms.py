"""The transforms a spec can name: small pure functions from a partner value to a canonical one.

Each transform declares its parameters so a spec is checked when it is loaded, not when the
first record arrives. A transform that cannot convert a value raises ``TransformError`` with a
reason phrased to follow the value (``"31/02/2020" is not a date ...``); the engine decides
whether the value may be shown. Transforms marked ``sensitive`` handle identifiers and full
names, whose values never appear in messages.

``MISSING`` is returned when a value turns out to carry no fact (a blank after trimming): the
engine then treats the field as absent, applying its default or reporting it if required.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings import codes
from standards.identifiers import IdentifierProblem, IdentifierProfile, default_profile


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class TransformError(ValueError):
    """A value could not be transformed; ``reason`` follows the value in the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Param:
    types: tuple[type, ...]
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transform:
    name: str
    fn: Callable[..., Any]
    params: dict[str, Param] = field(default_factory=dict)
    sensitive: bool = False
    check_args: Callable[[dict[str, Any]], list[str]] | None = None
    uses_profile: bool = False  # called with ``profile=`` the country's identifier profile


TRANSFORMS: dict[str, Transform] = {}


def transform(
    name: str,
    params: dict[str, Param] | None = None,
    *,
    sensitive: bool = False,
    check_args: Callable[[dict[str, Any]], list[str]] | None = None,
    uses_profile: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a transform under ``name`` (used by the decorators below)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        TRANSFORMS[name] = Transform(name, fn, params or {}, sensitive, check_args, uses_profile)
        return fn

    return register


def check_arguments(name: str, args: dict[str, Any]) -> list[str]:
    """Problems with a spec's use of transform ``name`` (empty when it is fine)."""
    spec = TRANSFORMS.get(name)
    if spec is None:
        return [f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}"]
    problems = []
    for arg, value in args.items():
        param = spec.params.get(arg)
        if param is None:
            allowed = ", ".join(sorted(spec.params)) or "none"
            problems.append(f"transform {name!r} has no parameter {arg!r}; parameters: {allowed}")
        elif not isinstance(value, param.types) or (
            isinstance(value, bool) and bool not in param.types
        ):
            kinds = " or ".join(t.__name__ for t in param.types)
            problems.append(f"transform {name!r}: {arg!r} must be {kinds}")
        elif param.choices and value not in param.choices:
            problems.append(
                f"transform {name!r}: {arg!r} must be one of {', '.join(param.choices)}"
            )
    for arg, param in spec.params.items():
        if param.required and arg not in args:
            problems.append(f"transform {name!r} needs parameter {arg!r}")
    if not problems and spec.check_args is not None:
        problems.extend(spec.check_args(args))
    return problems


def apply(
    name: str, value: Any, args: dict[str, Any], profile: IdentifierProfile | None = None
) -> Any:
    """Run transform ``name``; those that check identifiers get ``profile`` (default: the
    built-in profile)."""
    spec = TRANSFORMS[name]
    if spec.uses_profile:
        return spec.fn(value, profile=profile or default_profile(), **args)
    return spec.fn(value, **args)


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise TransformError(f"is not {what} (expected text, got {type(value).__name__})")
    return str(value)


# ---------------------------------------------------------------------------- text


@transform("trim")
def trim(value: Any) -> Any:
    """Strip and collapse blanks; a blank string becomes MISSING (real bundles carry "")."""
    if not isinstance(value, str):
        return value
    cleaned = " ".join(value.split())
    return cleaned if cleaned else MISSING


@transform("string")
def to_string(value: Any) -> str:
    """Numbers as text (``1234`` -> ``"1234"``); integral floats without ``.0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _text(value, "text")


@transform("upper")
def upper(value: Any) -> str:
    return _text(value, "text").upper()


@transform("lower")
def lower(value: Any) -> str:
    return _text(value, "text").lower()


def _title_word(word: str) -> str:
    return re.sub(r"[^\W\d_]+", lambda m: m.group().capitalize(), word)


@transform("name_case", sensitive=True)
def name_case(value: Any) -> str:
    """``NGUYEN`` -> ``Nguyen``, ``O'BRIEN-SMITH`` -> ``O'Brien-Smith``; mixed case kept as is.

    Registries shout family names in capitals; the registry stores names as people write them,
    and a name already in mixed case (``McAdam``) is someone's spelling, so it is left alone.
    """
    text = _text(value, "a name")
    return " ".join(_title_word(w) if w.isupper() else w for w in text.split())


@transform(
    "split_name",
    {
        "form": Param((str,), choices=("auto", "family_first", "given_first")),
        "part": Param((str,), required=True, choices=("given_name", "family_name", "other_names")),
    },
    sensitive=True,  # a full name identifies a person as well as a number does
)
def split_name(value: Any, part: str, form: str = "auto") -> Any:
    """One part of a full name.

    ``family_first``: ``"FAMILY, Given Other"`` (the comma separates the family name);
    ``given_first``: ``"Given Other Family"`` (the last word is the family name);
    ``auto``: family first when there is a comma, else given first.
    Returns MISSING for ``other_names`` when there are none.
    """
    text = " ".join(_text(value, "a name").split())
    if form == "auto":
        form = "family_first" if "," in text else "given_first"
    if form == "family_first":
        family, comma, rest = text.partition(",")
        if not comma:
            raise TransformError('is not a name of the form "FAMILY, Given"')
        given_words = rest.split()
        family = family.strip()
    else:
        words = text.split()
        if len(words) < 2:
            raise TransformError("is not a full name (expected given and family names)")
        family, given_words = words[-1], words[:-1]
    if not family or not given_words:
        raise TransformError("is not a full name (expected given and family names)")
    parts = {
        "family_name": family,
        "given_name": given_words[0],
        "other_names": " ".join(given_words[1:]) or MISSING,
    }
    return parts[part]


@transform(
    "map",
    {"values": Param((dict,), required=True), "fallback": Param((str, int, float, bool))},
    check_args=lambda a: [] if a["values"] else ["transform 'map': 'values' must not be empty"],
)
def map_values(value: Any, values: dict[str, Any], fallback: Any = MISSING) -> Any:
    """Translate with a table written in the spec; keys compare without case or blanks."""
    table = {codes.normalise(k): v for k, v in values.items()}
    found = table.get(codes.normalise(_text(value, "a code")), MISSING)
    if found is MISSING:
        if fallback is not MISSING:
            return fallback
        raise TransformError(f"is not one of the expected codes ({', '.join(values)})")
    return found


def _check_codelist(args: dict[str, Any]) -> list[str]:
    try:
        codes.load(args["list"])
    except codes.CodeListError as exc:
        return [str(exc)]
    return []


@transform(
    "code",
    {"list": Param((str,), required=True), "fallback": Param((str,))},
    check_args=_check_codelist,
)
def code(value: Any, list: str, fallback: str | None = None) -> str:
    """Translate through a code list file (``mappings/codelists/<list>.json``)."""
    codelist = codes.load(list)
    found = codelist.resolve(_text(value, "a code"))
    if found is None:
        if fallback is not None:
            return fallback
        raise TransformError(
            f"is not a known {codelist.name} code (canonical codes: {', '.join(codelist.codes)})"
        )
    return found


# ---------------------------------------------------------------------------- dates

DATE_FORMATS: dict[str, tuple[re.Pattern[str], str, tuple[str, str, str]]] = {
    # name: (shape, label, group order year/month/day)
    "iso": (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), "YYYY-MM-DD", ("y", "m", "d")),
    "yyyymmdd": (re.compile(r"(\d{4})(\d{2})(\d{2})"), "YYYYMMDD", ("y", "m", "d")),
    "dd/mm/yyyy": (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})"), "DD/MM/YYYY", ("d", "m", "y")),
    "dd-mm-yyyy": (re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})"), "DD-MM-YYYY", ("d", "m", "y")),
    "dd.mm.yyyy": (re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})"), "DD.MM.YYYY", ("d", "m", "y")),
}
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?"
)
_PARTIAL = re.compile(r"\d{4}(-\d{2})?")
ALL_DATE_FORMATS = (*DATE_FORMATS, "datetime")


def _check_date_formats(args: dict[str, Any]) -> list[str]:
    unknown = [f for f in args.get("formats", []) if f not in ALL_DATE_FORMATS]
    if unknown:
        return [
            f"transform 'date': unknown format(s) {', '.join(map(str, unknown))}; "
            f"known: {', '.join(ALL_DATE_FORMATS)}"
        ]
    return []


def today() -> date:
    """Today in UTC; a function so tests can see how ``not_future`` is decided."""
    return datetime.now(UTC).date()


@transform(
    "date",
    {"formats": Param((list,)), "not_future": Param((bool,))},
    check_args=_check_date_formats,
)
def to_date(value: Any, formats: list[str] | None = None, not_future: bool = False) -> str:
    """A calendar date as ``YYYY-MM-DD``.

    Accepts the listed formats (default: all of ISO, YYYYMMDD, DD/MM/YYYY, DD-MM-YYYY,
    DD.MM.YYYY and ISO/FHIR dateTime, whose date part is kept as written rather than shifted to
    UTC, because the day a birth happened is the local day). Day-first only: a month-first
    partner needs its own format. Impossible days (31 February) and partial dates (``2020-03``)
    are refused rather than guessed.
    """
    if isinstance(value, datetime):
        result = value.date()
    elif isinstance(value, date):
        result = value
    else:
        result = _parse_date(_text(value, "a date").strip(), formats or list(ALL_DATE_FORMATS))
    if not_future and result > today():
        raise TransformError("is a date in the future")
    return result.isoformat()


def _parse_date(text: str, formats: list[str]) -> date:
    labels = []
    for name in formats:
        if name == "datetime":
            labels.append("ISO dateTime")
            match = _DATETIME.fullmatch(text)
            if match:
                return _calendar_day(match.group(1), match.group(2), match.group(3), "dateTime")
            continue
        shape, label, order = DATE_FORMATS[name]
        labels.append(label)
        match = shape.fullmatch(text)
        if match:
            parts = dict(zip(order, match.groups(), strict=True))
            return _calendar_day(parts["y"], parts["m"], parts["d"], label)
    if _PARTIAL.fullmatch(text):
        raise TransformError("is a partial date; a full date (day, month and year) is required")
    raise TransformError(f"is not a date in any accepted format ({', '.join(labels)})")


def _calendar_day(year: str, month: str, day: str, label: str) -> date:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise TransformError(
            f"is not a date in any accepted format (read as {label}, no such calendar day)"
        ) from None


# ---------------------------------------------------------------------------- numbers, flags


@transform("number", {"integer": Param((bool,))})
def number(value: Any, integer: bool = False) -> int | float:
    """``"54000.00"`` -> ``54000``; fractions kept as floats. ``integer`` refuses fractions."""
    if isinstance(value, bool):
        raise TransformError("is not a number")
    if isinstance(value, int):
        return value
    try:
        parsed = Decimal(_text(value, "a number").strip().replace(" ", ""))
    except InvalidOperation:
        raise TransformError("is not a number") from None
    if not parsed.is_finite():
        raise TransformError("is not a finite number")
    if parsed == parsed.to_integral_value():
        return int(parsed)
    if integer:
        raise TransformError("is not a whole number")
    result = float(parsed)
    if not math.isfinite(result):
        raise TransformError("is not a finite number")
    return result


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@transform("boolean")
def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = codes.normalise(_text(value, "a yes/no value"))
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TransformError("is not a yes/no value (true/false, yes/no, 1/0)")


# ---------------------------------------------------------------------------- identifiers


class IdentifierRuleError(TransformError):
    """A value broke its system's rule in the country profile (pattern, check digit...).

    Separate from other transform errors because the engine treats it differently: a bad
    identifier of someone the record only mentions is dropped with a note, a bad identifier of
    the record's subject sends the record to review; neither is a broken record.
    """

    def __init__(self, problem: IdentifierProblem) -> None:
        super().__init__(f"is not a valid {problem.reason}")
        self.problem = problem


_SYSTEM_CODE = re.compile(r"[a-z][a-z0-9_]{1,63}")


def _check_identifier(args: dict[str, Any]) -> list[str]:
    if not _SYSTEM_CODE.fullmatch(args["system"]):
        return ["transform 'identifier': 'system' is an identifier system code such as national_id"]
    return []


@transform(
    "identifier",
    {"system": Param((str,), required=True), "subject": Param((bool,))},
    sensitive=True,
    check_args=_check_identifier,
    uses_profile=True,
)
def identifier(
    value: Any, system: str, subject: bool = False, *, profile: IdentifierProfile
) -> Any:
    """Normalise and check an identifier by the rule the country profile gives ``system``.

    ``123-456 789`` and ``123456789`` are the same number to a person and must be the same key
    to the registry: the profile's normalisation is the one the registry hashes with. ``subject``
    is read by the engine (a bad value of the subject's identifier sends the record to review).
    Messages never include the value (it is personal data).
    """
    del subject  # the engine's business
    text = to_string(value) if isinstance(value, int | float) else _text(value, "an identifier")
    rule = profile.rule(system)
    normalised = rule.normalise(text)
    if not normalised:
        return MISSING
    found = rule.problem_of_normalised(normalised)
    if found is not None:
        raise IdentifierRuleError(found)
    return normalised


@transform(
    "as_identifier",
    {"system": Param((str,), required=True), "verified": Param((bool,))},
    sensitive=True,
)
def as_identifier(value: Any, system: str, verified: bool | None = None) -> dict[str, Any]:
    """Wrap a normalised value as a canonical identifier ``{system, value[, verified]}``."""
    result: dict[str, Any] = {"system": system, "value": _text(value, "an identifier")}
    if verified is not None:
        result["verified"] = verified
    return result
