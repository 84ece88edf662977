"""Administrative areas as a hierarchy of segments: the one rule for "inside this area".

Area codes are built from segments joined by ``-``, from the widest to the narrowest:
``R01`` (a region), ``R01-D02`` (a district in it), ``R01-D02-L003`` (a locality). An area
contains itself and every code that continues it *after a separator*. A raw string prefix
is wrong: ``R01`` would then contain ``R011-D01`` (another region) and a field worker of
``R01`` could read ``R011`` households or register one in ``R010-EVIL``.

Every area check uses this module: in Python (``is_within``, ``within_any``, the rule of
``Principal.may_touch_area`` and of subscription area filters) and in SQL (``within_areas``,
the same rule inside a query so a page is filtered before it is counted, on SQLite and
PostgreSQL alike).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_

SEPARATOR = "-"


def normalise(area: str | None) -> str:
    """An area as compared: trimmed, without a trailing separator (``R01-`` is ``R01``)."""
    return (area or "").strip().rstrip(SEPARATOR)


def is_within(code: str | None, area: str | None) -> bool:
    """Whether ``code`` is ``area`` or inside it (segment by segment). An empty area
    contains nothing: a grant without an area must not mean everywhere."""
    wanted = normalise(area)
    if not code or not wanted:
        return False
    return code == wanted or code.startswith(wanted + SEPARATOR)


def within_any(code: str | None, areas: Iterable[str]) -> bool:
    """Whether ``code`` is inside one of ``areas``."""
    return any(is_within(code, area) for area in areas)


def narrowed(requested: str, own: Iterable[str]) -> list[str]:
    """The parts of ``requested`` a caller holding the areas ``own`` may see: ``requested``
    itself when it lies inside one of them, else those of ``own`` that lie inside it."""
    found = {
        normalise(requested) if is_within(requested, area) else normalise(area)
        for area in own
        if is_within(requested, area) or is_within(area, requested)
    }
    return sorted(found)


def within_areas(column: Any, areas: Sequence[str]) -> ColumnElement[bool]:
    """``column`` (an admin area code) is one of ``areas`` or inside one: ``is_within`` as
    SQL. No usable area matches nothing.

    ``LIKE 'R01-%'`` with ``%`` and ``_`` escaped (an area code never acts as a wildcard, and
    an index can serve it), confirmed with an exact ``substr`` comparison because SQLite's
    LIKE ignores case (``ke-30`` is not ``KE-30``).
    """
    usable = sorted({normalise(area) for area in areas} - {""})
    if not usable:
        return false()
    conditions: list[ColumnElement[bool]] = [column.in_(usable)]
    for area in usable:
        prefix = area + SEPARATOR
        conditions.append(
            and_(
                column.startswith(prefix, autoescape=True),
                func.substr(column, 1, len(prefix)) == prefix,
            )
        )
    return or_(*conditions)
