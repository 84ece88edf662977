"""Area scope as a SQL condition, so list queries return only what a caller may see.

``Principal.may_touch_area`` answers for one household; lists need the same rule inside the
query, or a page of results would be filtered after the fact and leak counts. Prefixes are
matched with LIKE with ``%`` and ``_`` escaped (so an area code never acts as a wildcard, and
an index can serve the prefix), and confirmed with an exact ``substr`` comparison, because
SQLite's LIKE ignores case and ``ke-30`` is not ``KE-30``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, func, or_
from sqlalchemy.sql.elements import ColumnElement

from hub.auth.roles import UNSCOPED_AREA_ROLES, Principal


def area_condition(principal: Principal, column: Any) -> ColumnElement[bool] | None:
    """A WHERE condition on ``column`` (an admin area code) for ``principal``.

    None means no restriction (admins, registry staff, auditors). Callers without any area
    access (program and partner systems) get a condition that matches nothing.
    """
    if not principal.area_scoped:
        return None if principal.has_any(UNSCOPED_AREA_ROLES) else false()
    areas = [area for area in principal.admin_areas if area]
    if not areas:
        return false()
    return or_(
        *(
            and_(
                column.startswith(area, autoescape=True),
                func.substr(column, 1, len(area)) == area,
            )
            for area in areas
        )
    )
