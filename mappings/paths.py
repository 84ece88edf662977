"""A small, safe path language for reading partner records (and writing canonical ones).

Why our own: a mapping must say *where* a fact sits in a partner record and, when the fact is
wrong, point a person at that exact place (``$.entry[2].resource.birthDate``). JSONPath
libraries evaluate expressions we would have to trust; this grammar is parsed once, by hand,
and never evaluated as code.

Grammar (``$`` is the record; ``@name`` a binding the spec defined earlier)::

    path     := ( "$" | "@" name | key ) step*
    step     := "." key | "[" index "]" | "[" "*" "]" | "[" start? ":" end? "]"
              | "[" subpath ( "=" | "!=" ) literal "]"
    key      := [A-Za-z_@#][A-Za-z0-9_-]*   |   "'" any text but ' "'"

A filter keeps the list items where ``subpath`` (itself a path, which may fan out with ``[*]``)
yields a value equal to ``literal`` (compared as text; booleans as ``true``/``false``).
Reading yields every match in order; a single-valued field takes the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_KEY = re.compile(r"[A-Za-z_@#][A-Za-z0-9_\-]*")
MAX_PATH_LENGTH = 500


class PathSyntaxError(ValueError):
    """A path in a spec cannot be parsed; the message says where and why."""


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    index: int


@dataclass(frozen=True)
class Slice:
    start: int | None
    end: int | None


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Filter:
    key: Path
    literal: str
    negate: bool = False


Step = Key | Index | Slice | Wildcard | Filter


@dataclass(frozen=True)
class Path:
    """A parsed path: where it starts (``$`` or a binding name) and its steps."""

    root: str | None  # None: the record itself; else a binding name
    steps: tuple[Step, ...]
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def is_simple(self) -> bool:
        """Only keys and ``[field=value]`` filters: what a *target* path may use."""
        return all(isinstance(s, Key | Filter) for s in self.steps)


@dataclass(frozen=True)
class Located:
    """A value read from a record, with the concrete path it was found at."""

    value: Any
    path: str


@lru_cache(maxsize=2048)
def parse(text: str, *, allow_root: bool = True) -> Path:
    """Parse ``text`` into a ``Path`` or raise ``PathSyntaxError`` naming the position.

    Cached: paths are immutable, and hooks build the same few paths for every record.
    """
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError("a path must be a non-empty string")
    if len(text) > MAX_PATH_LENGTH:
        raise PathSyntaxError(f"a path must be at most {MAX_PATH_LENGTH} characters")
    pos = 0
    root: str | None = None
    steps: list[Step] = []
    if text.startswith("$"):
        if not allow_root:
            raise PathSyntaxError(f"{text!r}: a filter path is relative; drop the '$'")
        pos = 1
    elif text.startswith("@") and allow_root:
        match = _KEY.match(text, 1)
        if match is None:
            raise PathSyntaxError(f"{text!r}: expected a binding name after '@'")
        root, pos = match.group(), match.end()
    else:
        key, pos = _read_key(text, pos)
        steps.append(Key(key))
    while pos < len(text):
        char = text[pos]
        if char == ".":
            key, pos = _read_key(text, pos + 1)
            steps.append(Key(key))
        elif char == "[":
            end = _closing_bracket(text, pos)
            steps.append(_bracket(text, text[pos + 1 : end], pos))
            pos = end + 1
        else:
            raise PathSyntaxError(f"{text!r}: unexpected {char!r} at position {pos}")
    return Path(root, tuple(steps), text)


def _read_key(text: str, pos: int) -> tuple[str, int]:
    if pos < len(text) and text[pos] == "'":
        end = text.find("'", pos + 1)
        if end <= pos + 1:
            raise PathSyntaxError(f"{text!r}: unterminated or empty quoted key at {pos}")
        return text[pos + 1 : end], end + 1
    match = _KEY.match(text, pos)
    if match is None:
        raise PathSyntaxError(f"{text!r}: expected a field name at position {pos}")
    return match.group(), match.end()


def _closing_bracket(text: str, start: int) -> int:
    depth = 0
    for pos in range(start, len(text)):
        if text[pos] == "[":
            depth += 1
        elif text[pos] == "]":
            depth -= 1
            if depth == 0:
                return pos
    raise PathSyntaxError(f"{text!r}: '[' at position {start} is never closed")


_INT = re.compile(r"-?[0-9]+")


def _bracket(text: str, inner: str, pos: int) -> Step:
    inner = inner.strip()
    if inner == "*":
        return Wildcard()
    if _INT.fullmatch(inner):
        return Index(int(inner))
    if ":" in inner and "=" not in inner:
        start, _, end = inner.partition(":")
        if (start and not _INT.fullmatch(start)) or (end and not _INT.fullmatch(end)):
            raise PathSyntaxError(f"{text!r}: bad slice [{inner}] at position {pos}")
        return Slice(int(start) if start else None, int(end) if end else None)
    depth = 0
    for i, char in enumerate(inner):
        depth += char == "["
        depth -= char == "]"
        if depth == 0 and char == "=":
            negate = i > 0 and inner[i - 1] == "!"
            left = inner[: i - 1] if negate else inner[:i]
            literal = inner[i + 1 :].strip()
            if not left.strip():
                raise PathSyntaxError(f"{text!r}: filter at position {pos} has no field")
            return Filter(parse(left.strip(), allow_root=False), literal, negate)
    raise PathSyntaxError(
        f"{text!r}: [{inner}] at position {pos} is not an index, '*', a slice or a filter"
    )


def is_blank(value: Any) -> bool:
    """Missing for a mapping: None, blank text, an empty list or object.

    Real partner records carry ``""`` for facts nobody entered; treating them as present would
    put empty names into the registry.
    """
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict):
        return not value
    return False


def text_of(value: Any) -> str:
    """How a filter compares values: booleans as JSON spells them, the rest as ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _key_path(base: str, key: str) -> str:
    if _KEY.fullmatch(key):
        return f"{base}.{key}"
    return f"{base}.'{key}'"


def _matches(item: Any, flt: Filter, base: str) -> bool:
    found = any(
        not isinstance(hit.value, dict | list) and text_of(hit.value) == flt.literal
        for hit in walk(Located(item, base), flt.key.steps)
    )
    return found != flt.negate


def walk(start: Located, steps: tuple[Step, ...]) -> Iterator[Located]:
    """Every value ``steps`` reach from ``start``, in document order, with concrete paths."""
    if not steps:
        yield start
        return
    step, rest = steps[0], steps[1:]
    value, base = start.value, start.path
    if isinstance(step, Key):
        if isinstance(value, dict) and step.name in value:
            yield from walk(Located(value[step.name], _key_path(base, step.name)), rest)
        return
    if isinstance(value, dict):
        # One object where a list was expected counts as a list of one: XML turned into dicts
        # cannot tell a single child from a list, and DCI's reg_records comes both ways. Its
        # path stays the object's own path.
        items = [(value, base)]
    elif isinstance(value, list):
        items = [(item, f"{base}[{index}]") for index, item in enumerate(value)]
    else:
        return
    if isinstance(step, Index):
        index = step.index if step.index >= 0 else len(items) + step.index
        if 0 <= index < len(items):
            yield from walk(Located(*items[index]), rest)
        return
    if isinstance(step, Slice):
        items = items[step.start : step.end]
    for item, path in items:
        if isinstance(step, Filter) and not _matches(item, step, path):
            continue
        yield from walk(Located(item, path), rest)


def describe_missing(base: str, path: Path) -> str:
    """Where a missing value was looked for: the binding's concrete path plus the rest."""
    rest = path.text
    if path.root is not None:
        rest = rest[len(path.root) + 1 :]
    elif rest.startswith("$"):
        rest = rest[1:]
    if rest and not rest.startswith((".", "[")):
        rest = "." + rest
    return base + rest
