"""Reading a country profile from TOML, refusing a faulty one with every key and reason.

Why strict: a profile decides which records the registry accepts and how identifiers are
hashed. A typo (``check = "verhof"``, a pattern that does not compile, a missing system) must
stop the hub at start, naming the key, rather than let records through unchecked or hash the
same number two ways.

File format (documented with examples in ``docs/identifiers.md``)::

    [profile]
    name = "example"                     # shown at start and in docs
    description = "..."

    [normalise]                          # defaults for every system (and unnamed ones)
    remove = " -./"                      # removed anywhere; whitespace always is
    case = "upper"                       # upper | lower | keep
    leading_zeros = "keep"               # keep | strip

    [systems.national_id]
    description = "National identity number (UIN)"
    label = "national ID"                # for people; default: the code with spaces
    pattern = "[1-9][0-9]{9}"            # must match the whole normalised value
    format = "10 digits, the first not 0"
    check = "verhoeff"                   # none | verhoeff | luhn | iso7064_mod11_2
    dci_identifier_type = "UIN"
    fhir_system = "https://example.gov/id/national-id"
    normalise = { leading_zeros = "keep" }   # overrides [normalise] for this system
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from standards.identifiers.check_digits import CHECK_DIGITS, NO_CHECK, scheme_names
from standards.identifiers.profile import (
    MAX_LENGTH,
    IdentifierProfile,
    IdentifierRule,
    Normalisation,
)

# Every profile names these: the registry, the mappings and the APIs use them by code.
REQUIRED_SYSTEMS: tuple[str, ...] = (
    "national_id",
    "birth_registration",
    "death_registration",
    "tax_id",
    "program_beneficiary_id",
)
DEFAULT_PROFILE = "default.toml"

_SYSTEM_CODE = re.compile(r"[a-z][a-z0-9_]{1,63}")  # as the canonical schema's identifier.system
_DCI_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_URI = re.compile(r"(https?://[^\s/]+(/\S*)?|urn:[a-z0-9][a-z0-9-]{0,31}:\S+)", re.IGNORECASE)
_TOP_KEYS = ("profile", "normalise", "systems")
_PROFILE_KEYS = ("name", "description")
_NORMALISE_KEYS = ("remove", "case", "leading_zeros")
_SYSTEM_KEYS = (
    "description",
    "label",
    "pattern",
    "format",
    "check",
    "normalise",
    "dci_identifier_type",
    "fhir_system",
)
_CHOICES = {"case": ("upper", "lower", "keep"), "leading_zeros": ("keep", "strip")}


class ProfileError(ValueError):
    """A profile file is unusable; ``problems`` lists (key, reason), every one of them."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        listing = "; ".join(f"{key}: {reason}" for key, reason in problems)
        super().__init__(f"{source}: {listing}")
        self.source = source
        self.problems = problems


def _unknown(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> list[tuple[str, str]]:
    return [
        (f"{where}.{key}" if where else key, f"unknown key; allowed: {', '.join(allowed)}")
        for key in table
        if key not in allowed
    ]


def _normalisation(
    raw: Any, where: str, base: Normalisation, problems: list[tuple[str, str]]
) -> Normalisation:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        problems.append((where, "must be a table (remove, case, leading_zeros)"))
        return base
    problems.extend(_unknown(raw, _NORMALISE_KEYS, where))
    values = {"remove": base.remove, "case": base.case, "leading_zeros": base.leading_zeros}
    if "remove" in raw:
        if not isinstance(raw["remove"], str) or any(ch.isalnum() for ch in raw["remove"]):
            problems.append(
                (f"{where}.remove", "must be text of separator characters (no letters or digits)")
            )
        else:
            values["remove"] = raw["remove"]
    for key, choices in _CHOICES.items():
        if key in raw:
            if raw[key] not in choices:
                problems.append((f"{where}.{key}", f"must be one of {', '.join(choices)}"))
            else:
                values[key] = raw[key]
    return Normalisation(**values)


def _text(
    raw: dict[str, Any],
    key: str,
    where: str,
    problems: list[tuple[str, str]],
    *,
    required: bool = False,
    shape: re.Pattern[str] | None = None,
    what: str = "text",
) -> str | None:
    if key not in raw:
        if required:
            problems.append((f"{where}.{key}", "is required"))
        return None
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        problems.append((f"{where}.{key}", "must be non-empty text"))
        return None
    if shape is not None and not shape.fullmatch(value):
        problems.append((f"{where}.{key}", f"must be {what}"))
        return None
    return value


def _rule(
    code: str, raw: Any, base: Normalisation, problems: list[tuple[str, str]]
) -> IdentifierRule | None:
    where = f"systems.{code}"
    if not _SYSTEM_CODE.fullmatch(code):
        problems.append(
            (
                where,
                "a system code is lower-case letters, digits and _ "
                "(2 to 64, starting with a letter)",
            )
        )
        return None
    if not isinstance(raw, dict):
        problems.append((where, "must be a table"))
        return None
    before = len(problems)
    problems.extend(_unknown(raw, _SYSTEM_KEYS, where))
    description = _text(raw, "description", where, problems, required=True)
    label = _text(raw, "label", where, problems) or code.replace("_", " ")
    pattern = _text(raw, "pattern", where, problems)
    if pattern is not None:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            problems.append((f"{where}.pattern", f"is not a regular expression ({exc})"))
        else:
            if compiled.fullmatch(""):
                problems.append((f"{where}.pattern", "must not match an empty value"))
    check_name = raw.get("check", NO_CHECK)
    scheme = None
    if check_name != NO_CHECK:
        scheme = CHECK_DIGITS.get(check_name) if isinstance(check_name, str) else None
        if scheme is None:
            problems.append(
                (
                    f"{where}.check",
                    f"unknown check {str(check_name)[:40]!r}; known: {', '.join(scheme_names())}",
                )
            )
    rule = IdentifierRule(
        system=code,
        description=description or "",
        label=label,
        normalisation=_normalisation(raw.get("normalise"), f"{where}.normalise", base, problems),
        pattern=pattern,
        format=_text(raw, "format", where, problems),
        check=scheme,
        dci_identifier_type=_text(
            raw,
            "dci_identifier_type",
            where,
            problems,
            shape=_DCI_TYPE,
            what="a code such as UIN (letters, digits, _ or -)",
        ),
        fhir_system=_text(
            raw,
            "fhir_system",
            where,
            problems,
            shape=_URI,
            what="an absolute URI (http://, https:// or urn:)",
        ),
    )
    return rule if len(problems) == before else None


def parse_profile(data: Any, source: str) -> IdentifierProfile:
    """Check ``data`` (a parsed TOML document) and build the profile, or ``ProfileError``."""
    if not isinstance(data, dict):
        raise ProfileError(source, [("$", "a profile is a TOML document")])
    problems: list[tuple[str, str]] = list(_unknown(data, _TOP_KEYS, ""))
    meta = data.get("profile", {})
    if not isinstance(meta, dict):
        problems.append(("profile", "must be a table (name, description)"))
        meta = {}
    problems.extend(_unknown(meta, _PROFILE_KEYS, "profile"))
    name = _text(meta, "name", "profile", problems, required=True) or ""
    description = _text(meta, "description", "profile", problems) or ""
    base = _normalisation(data.get("normalise"), "normalise", Normalisation(), problems)
    systems = data.get("systems")
    rules: dict[str, IdentifierRule] = {}
    if not isinstance(systems, dict):
        problems.append(("systems", "is required: a table with one table per identifier system"))
        systems = {}
    for code, raw in systems.items():
        rule = _rule(code, raw, base, problems)
        if rule is not None:
            rules[code] = rule
    for code in REQUIRED_SYSTEMS:
        if code not in systems:
            problems.append((f"systems.{code}", "is required (the registry uses this system)"))
    for key in ("dci_identifier_type", "fhir_system"):
        seen: dict[str, str] = {}
        for code, raw in systems.items():
            value = raw.get(key) if isinstance(raw, dict) else None
            if not isinstance(value, str):
                continue
            if value in seen:
                problems.append(
                    (f"systems.{code}.{key}", f"{value!r} is already the {key} of {seen[value]}")
                )
            seen[value] = code
    if problems:
        raise ProfileError(source, problems)
    return IdentifierProfile(name, rules, base, source=source, description=description)


def load_profile(path: str | Path) -> IdentifierProfile:
    """Read and check the profile at ``path`` (TOML); ``ProfileError`` lists every fault."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(str(file), [("$", f"cannot be read ({type(exc).__name__})")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(str(file), [("$", f"is not valid TOML ({exc})")]) from None
    return parse_profile(data, str(file))


@cache
def default_profile() -> IdentifierProfile:
    """The built-in profile: realistic patterns, no check digits (``default.toml``)."""
    text = resources.files("standards.identifiers").joinpath(DEFAULT_PROFILE).read_text("utf-8")
    return parse_profile(tomllib.loads(text), f"standards/identifiers/{DEFAULT_PROFILE}")


__all__ = [
    "MAX_LENGTH",
    "REQUIRED_SYSTEMS",
    "ProfileError",
    "default_profile",
    "load_profile",
    "parse_profile",
]
