"""Area scope as a SQL condition, so list queries return only what a caller may see.

``Principal.may_touch_area`` answers for one household; lists need the same rule inside the
query, or a page of results would be filtered after the fact and leak counts. Prefixes are
matched by ``registry_core.areas.within_areas`` (LIKE confirmed by an exact
comparison: SQLite's LIKE ignores case, and ``ke-30`` is not ``KE-30``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false
from sqlalchemy.sql.elements import ColumnElement

from hub.auth.roles import UNSCOPED_AREA_ROLES, Principal
from registry_core.areas import within_areas


def area_condition(principal: Principal, column: Any) -> ColumnElement[bool] | None:
    """A WHERE condition on ``column`` (an admin area code) for ``principal``.

    None means no restriction (admins, registry staff, auditors). Callers without any area
    access (program and partner systems) get a condition that matches nothing.
    """
    if not principal.area_scoped:
        return None if principal.has_any(UNSCOPED_AREA_ROLES) else false()
    return within_areas(column, principal.admin_areas)
