"""Input hygiene: values no record may hold, whatever its schema says.

JSON Schema's ``number`` admits NaN and Infinity when a parser produced them (Python's does by
default), and its ``string`` admits anything Python can hold. Each of these broke something:

- NaN/Infinity: SQLite stored them, and every later read answered a document that is not JSON
  (or it silently stored NULL for a location); PostgreSQL refused the statement (a 500).
- a lone surrogate (``"\\ud800"`` is legal JSON text but not Unicode) cannot be encoded for the
  database or a response: a 500;
- NUL: PostgreSQL refuses it in text (a 500);
- other control characters and the bidirectional overrides and isolates (U+202A-U+202E,
  U+2066-U+2069) were stored as given: a name that displays as something else than it is
  (the "Trojan source" trick) in the dashboard and in exports;
- a name of spaces alone is no name.

One walk over a record finds them all and names each by its JSON path, with a reason that never
repeats the value. ``standards.validation.violations`` adds these to every schema check (so the
registry services refuse them whatever the caller), and the HTTP edge runs it over every JSON
body before a view sees it (``hub.api.requests.json_object``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "NAME_FIELDS",
    "TextProblem",
    "hygiene_problems",
    "text_problem",
]

# Fields holding a person's name: one line, and something besides white space.
NAME_FIELDS = frozenset({"given_name", "family_name", "other_names", "name"})

_SURROGATE = re.compile("[\ud800-\udfff]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# C0 controls (tab, line feed and carriage return allowed in free text), DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile("[\t\n\r\u2028\u2029]")

REASON_NOT_FINITE = "must be a finite number (NaN and Infinity are not JSON)"
REASON_SURROGATE = "holds a lone surrogate, which is not valid Unicode text"
REASON_NUL = "holds a NUL character"
REASON_CONTROL = "holds a control character"
REASON_BIDI = "holds a bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069)"
REASON_LINE_BREAK = "holds a tab or line break, which a name may not"
REASON_BLANK = "is blank (white space only)"


class TextProblem(tuple[str, str]):
    """``(rule, reason)`` of one problem; a tuple so callers can unpack it."""

    __slots__ = ()

    @property
    def rule(self) -> str:
        return self[0]

    @property
    def reason(self) -> str:
        return self[1]


def text_problem(text: str, *, name: bool = False) -> TextProblem | None:
    """What is wrong with ``text`` (None when nothing is); ``name`` adds the rules for names
    (one line, not blank). The reason never quotes the text."""
    if _SURROGATE.search(text):
        return TextProblem(("unicode", REASON_SURROGATE))
    if "\x00" in text:
        return TextProblem(("control", REASON_NUL))
    if _BIDI.search(text):
        return TextProblem(("bidi", REASON_BIDI))
    if _CONTROL.search(text):
        return TextProblem(("control", REASON_CONTROL))
    if name:
        if _LINE_BREAK.search(text):
            return TextProblem(("control", REASON_LINE_BREAK))
        if text and not text.strip():
            return TextProblem(("blank", REASON_BLANK))
    return None


def _key_path(path: str, key: object) -> str:
    text = str(key)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        return f"{path}.{text}"
    return f"{path}[?]"  # a key that is no identifier is not echoed (it may be anything)


def hygiene_problems(value: Any, path: str = "$") -> Iterator[tuple[str, str, str]]:
    """Every ``(path, rule, reason)`` of ``value`` (a decoded JSON document or part of one)."""
    stack: list[tuple[str, Any, bool]] = [(path, value, False)]
    while stack:
        where, item, is_name = stack.pop()
        if isinstance(item, str):
            found = text_problem(item, name=is_name)
            if found is not None:
                yield where, found.rule, found.reason
        elif isinstance(item, float):
            if not math.isfinite(item):
                yield where, "finite", REASON_NOT_FINITE
        elif isinstance(item, dict):
            children: list[tuple[str, Any, bool]] = []
            for key, child in item.items():
                child_path = _key_path(where, key)
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem is not None:
                        yield child_path, problem.rule, "the field name " + problem.reason
                        continue
                children.append((child_path, child, key in NAME_FIELDS))
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(
                (f"{where}[{index}]", child, is_name)
                for index, child in reversed(list(enumerate(item)))
            )
