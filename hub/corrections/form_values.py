"""Values typed into the dashboard's correction form, read as the JSON values the API takes.

A web form sends text; a change request holds JSON values that must compare equal to the
registry's (``targets.same_value``) for the optimistic check to pass. So a typed value is read
by the shape of the value it replaces: a number where the registry holds a number, yes/no where
it holds a boolean, ``lat, lon`` for a location, text otherwise. With no current value, a fact
typed as a plain number or ``true``/``false`` is read as such (an income of ``450`` is a
number), anything else stays text. ``shown_in_form`` is the inverse, for pre-filling the form.
"""

from __future__ import annotations

import math
import re
from typing import Any

_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?$")
_BOOLEANS = {"yes": True, "true": True, "no": False, "false": False}


class FormValueProblem(ValueError):
    """The typed text cannot be the kind of value this target holds (the message says how)."""


def shown_in_form(value: Any) -> str:
    """The registry's value as the form's text box shows it (``None``: empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and {"lat", "lon"} <= value.keys():
        return f"{value['lat']}, {value['lon']}"
    return str(value)


def _number(text: str) -> int | float:
    if not _NUMBER.match(text):
        raise FormValueProblem("type a number, such as 450 or 12.5")
    number = float(text)
    if not math.isfinite(number):
        raise FormValueProblem("type a number, such as 450 or 12.5")
    return int(text) if "." not in text else number


def _location(text: str) -> dict[str, float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise FormValueProblem("type a location as latitude, longitude (e.g. -1.28, 36.82)")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise FormValueProblem(
            "type a location as latitude, longitude (e.g. -1.28, 36.82)"
        ) from None
    return {"lat": lat, "lon": lon}


def read_value(target: str, text: str, like: Any) -> Any:
    """``text`` as the value ``target`` holds, shaped like ``like`` (the registry's current
    value); empty text is ``None`` (no value)."""
    text = text.strip()
    if not text:
        return None
    if target == "household.location":
        return _location(text)
    if isinstance(like, bool):
        if text.lower() not in _BOOLEANS:
            raise FormValueProblem("type yes or no")
        return _BOOLEANS[text.lower()]
    if isinstance(like, int | float):
        return _number(text)
    if like is None and target.startswith("attribute."):
        if text.lower() in ("true", "false"):
            return _BOOLEANS[text.lower()]
        if _NUMBER.match(text):
            return _number(text)
    return text
