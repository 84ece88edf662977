"""Recording and reading admin areas (``Registry.record_admin_area``, ``Registry.admin_areas``).

A record comes from the GIS connector's layer refresh through the ingest (mapping spec
``gis_admin_area``, schema ``inbound/admin_area.json``), so it was checked against the schema
before it gets here; the ring rules the schema cannot state are checked here. Recording the
same area twice changes nothing (a redelivered message is a no-op).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.errors import InvalidRecord, Violation
from registry_core.geography.geometry import GeometryError, check_geometry
from registry_core.geography.tables import AdminAreaShape
from standards.timeutil import utcnow
from standards.validation import validate

SCHEMA = "inbound/admin_area.json"


def check_admin_area(record: Mapping[str, Any]) -> list[float]:
    """Check ``record`` (schema, then rings) before any transaction; its bounding box."""
    validate(SCHEMA, dict(record))
    try:
        return check_geometry(record["geometry"])
    except GeometryError as error:
        raise InvalidRecord([Violation("$.geometry", "geometry", str(error))]) from None


def record_admin_area(
    session: Session, record: Mapping[str, Any], source_system: str, box: list[float]
) -> bool:
    """Insert or replace one area checked by ``check_admin_area``; True when it changed."""
    code = record["code"].strip().upper()
    parent = record.get("parent_code")
    wanted = {
        "level": int(record["level"]),
        "name": record.get("name"),
        "parent_code": parent.strip().upper() if isinstance(parent, str) and parent else None,
        "geometry": record["geometry"],
        "layers": dict(record.get("layers") or {}),
        "bbox": box,
    }
    row = session.get(AdminAreaShape, code)
    if row is not None and all(getattr(row, k) == v for k, v in wanted.items()):
        return False
    if row is None:
        row = AdminAreaShape(code=code)
        session.add(row)
    for name, value in wanted.items():
        setattr(row, name, value)
    row.source_system = source_system
    row.updated_at = utcnow()
    session.flush()
    return True


def admin_areas(session: Session, level: int | None = None) -> list[dict[str, Any]]:
    """Areas (of one level, or all), by code, each with its geometry and layers."""
    query = select(AdminAreaShape).order_by(AdminAreaShape.code)
    if level is not None:
        query = query.where(AdminAreaShape.level == level)
    return [
        {
            "code": row.code,
            "level": row.level,
            "name": row.name,
            "parent_code": row.parent_code,
            "geometry": row.geometry,
            "layers": dict(row.layers or {}),
            "bbox": list(row.bbox),
            "updated_at": row.updated_at,
        }
        for row in session.scalars(query)
    ]


def area_levels(session: Session) -> list[int]:
    """The levels that have at least one area drawn."""
    found = session.scalars(select(AdminAreaShape.level).distinct())
    return sorted(int(level) for level in found)
