"""What every settings section shares: the error that names a faulty setting, and the reader
that builds a typed section from what an operator wrote.

A section is a frozen dataclass (``MonitoringSettings``, ``DciSettings``, ...) whose fields
are the section's settings with their defaults. The reader refuses, at start, a key the
section does not have and a value of the wrong kind or outside its range, naming the key and
the reason: a typo in a threshold must stop the hub, not be ignored until the night it
matters. Values come typed (TOML, JSON) or as text (one environment variable per field).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

ENV_PREFIX = "SRHUB_"

T = TypeVar("T")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True)
class Bounds:
    """The range a number must lie in; ``None`` leaves that side open."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.low == 0 and self.low_open and self.high is None:
            return " greater than 0"
        parts = []
        if self.low is not None:
            parts.append(f"{'above' if self.low_open else 'at least'} {self.low:g}")
        if self.high is not None:
            parts.append(f"at most {self.high:g}")
        return " " + " and ".join(parts) if parts else ""


def ranged(
    default: T, *, low: float | None = None, above: float | None = None, high: float | None = None
) -> T:
    """A numeric field with its default and range: ``low`` (included) or ``above``
    (excluded) and ``high`` (included)."""
    bounds = Bounds(low=above if above is not None else low, low_open=above is not None, high=high)
    return field(default=default, metadata={"bounds": bounds})


def positive(default: T) -> T:
    """A numeric field that must be greater than 0."""
    return ranged(default, above=0)


def non_negative(default: T) -> T:
    """A numeric field that may be 0 (each section says what 0 means)."""
    return ranged(default, low=0)


class Section:
    """Base of the settings sections. Subclasses are frozen dataclasses and set ``name``:
    ``settings.<name>``, the ``[srhub.<name>]`` TOML table and ``SRHUB_<NAME>``."""

    name: ClassVar[str]
    # Fields whose values are never repeated in an error message.
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def retired(cls, key: str, value: object, where: str) -> bool:
        """True when ``key`` is a setting this section no longer has but still accepts (and
        ignores) for old configurations; raise when its value cannot be honoured."""
        return False

    def check(self, label: Callable[[str], str]) -> None:
        """Rules across fields or beyond a field's type; raise ``SettingsError`` naming the
        setting as ``label(field name)`` gives it."""

    def merged(
        self,
        values: object,
        where: str,
        *,
        text: bool = False,
        names: Mapping[str, str] | None = None,
    ) -> Self:
        """A copy with ``values`` (a table) applied, each checked. Messages name a key as
        ``<where>.<key>`` (``where`` is how the operator wrote the table: ``SRHUB_EXTRA:
        extra.dci``), or as ``names`` gives it. ``text``: the values are strings from
        environment variables, read by the field's type."""
        if not isinstance(values, Mapping):
            raise SettingsError(f"{where} must be a table of {self.name} settings")
        hints = typing.get_type_hints(type(self))
        known = {f.name: f for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        changes: dict[str, object] = {}

        def label(key: str) -> str:
            return (names or {}).get(key) or f"{where}.{key}"

        for key, raw in values.items():
            name = label(str(key))
            if key not in known:
                if self.retired(str(key), raw, name):
                    continue
                raise SettingsError(
                    f"{name} is not a setting; the {self.name} settings are: " + ", ".join(known)
                )
            spec = known[key]
            changes[key] = read_value(
                name,
                raw,
                hints[key],
                spec.metadata.get("bounds"),
                text=text,
                secret=key in self.secret_fields,
            )
        result = dataclasses.replace(self, **changes)  # type: ignore[type-var]
        result.check(label)
        return result


def read_value(
    name: str,
    raw: object,
    hint: object,
    bounds: Bounds | None = None,
    *,
    text: bool = False,
    secret: bool = False,
) -> object:
    """``raw`` read as ``hint`` (bool, int, float, str, ``tuple[str, ...]``, or one of these
    ``| None``), or a ``SettingsError`` naming the setting and what it must be."""
    optional = False
    if isinstance(hint, types.UnionType):
        members = [m for m in typing.get_args(hint) if m is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        hint = members[0]
    if optional and (raw is None or (text and str(raw).strip() == "")):
        return None
    echo = isinstance(raw, int | float) or (isinstance(raw, str) and len(raw) <= 40)
    shown = f", not {raw!r}" if echo and not secret else ""
    if text and isinstance(raw, str):
        raw = raw.strip()
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        if text and isinstance(raw, str) and raw.lower() in _TRUE + _FALSE:
            return raw.lower() in _TRUE
        raise SettingsError(f"{name} must be true or false{shown}")
    if hint is int or hint is float:
        value: object = raw
        if text and isinstance(raw, str):
            try:
                value = int(raw) if hint is int else float(raw)
            except ValueError:
                value = None
        whole = hint is int
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        described = ("a whole number" if whole else "a number") + (
            bounds.describe() if bounds else ""
        )
        if not ok or isinstance(value, bool):
            raise SettingsError(f"{name} must be {described}{shown}")
        assert isinstance(value, int | float)
        if bounds is not None and not bounds.admits(value):
            raise SettingsError(f"{name} must be {described}{shown}")
        return float(value) if hint is float else value
    if hint is str:
        if isinstance(raw, str):
            return raw
        raise SettingsError(f"{name} must be a string{shown}")
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        if raw in choices:
            return raw
        allowed = ", ".join(str(c) for c in choices)
        raise SettingsError(f"{name} must be one of {allowed}{shown}")
    if typing.get_origin(hint) is tuple:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, list | tuple) and all(isinstance(v, str) for v in raw):
            return tuple(v.strip() for v in raw if v.strip())
        raise SettingsError(f"{name} must be a list of names or one comma-separated string")
    raise TypeError(f"settings cannot read the type {hint!r} of {name}")  # a programming error
