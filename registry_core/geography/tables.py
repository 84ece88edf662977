"""The ``admin_areas`` table: one row per area code, replaced when the GIS redraws it.

Geometry is kept as the GeoJSON the GIS sent (a Polygon or MultiPolygon, checked on the way
in), not as a spatial type: the hub only draws areas and never asks spatial questions of the
database, so PostGIS is not needed, and SQLite keeps working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base
from standards.timeutil import utcnow


class AdminAreaShape(Base):
    """One admin area (``code`` upper-case as the reports group by it)."""

    __tablename__ = "admin_areas"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(String(64))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Layer values the GIS publishes with the area (``{"flood_risk": 0.3, ...}``).
    layers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [min_lon, min_lat, max_lon, max_lat], kept so a map's frame needs no geometry read.
    bbox: Mapped[list[float]] = mapped_column(JSON)
    source_system: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_admin_areas_level", "level"),)
