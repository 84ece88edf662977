"""What the JSON Schema of an area cannot say about its geometry: rings are closed, have at
least three distinct corners, and the whole stays within a size a page can draw."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MAX_POSITIONS = 20_000  # per area; a district outline simplified for maps is far below this


class GeometryError(ValueError):
    """The geometry is not a drawable Polygon or MultiPolygon; the message says why."""


def polygons_of(geometry: dict[str, Any]) -> list[Sequence[Sequence[Sequence[float]]]]:
    """The polygons (each a list of rings) of a Polygon or MultiPolygon."""
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list):
        raise GeometryError("geometry.coordinates must be a list")
    if kind == "Polygon":
        return [coordinates]
    if kind == "MultiPolygon":
        return list(coordinates)
    raise GeometryError("geometry.type must be Polygon or MultiPolygon")


def _position(point: Any) -> tuple[float, float]:
    if not isinstance(point, list | tuple) or len(point) < 2:
        raise GeometryError("a position is [lon, lat]")
    lon, lat = point[0], point[1]
    if isinstance(lon, bool) or isinstance(lat, bool):
        raise GeometryError("a position is [lon, lat] numbers")
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError):
        raise GeometryError("a position is [lon, lat] numbers") from None
    if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
        raise GeometryError("a position must lie within lon -180..180 and lat -90..90")
    return x, y


def check_geometry(geometry: dict[str, Any]) -> list[float]:
    """Check ``geometry`` and return its bounding box ``[min_lon, min_lat, max_lon, max_lat]``.
    Raises ``GeometryError`` naming the first problem."""
    xs: list[float] = []
    ys: list[float] = []
    for polygon in polygons_of(geometry):
        if not isinstance(polygon, list) or not polygon:
            raise GeometryError("a polygon has at least one ring")
        for ring in polygon:
            if not isinstance(ring, list) or len(ring) < 4:
                raise GeometryError("a ring has at least four positions (closed)")
            points = [_position(p) for p in ring]
            if points[0] != points[-1]:
                raise GeometryError("a ring must end where it starts (closed)")
            if len(set(points)) < 3:
                raise GeometryError("a ring needs three distinct corners")
            xs.extend(x for x, _ in points)
            ys.extend(y for _, y in points)
            if len(xs) > MAX_POSITIONS:
                raise GeometryError(f"more than {MAX_POSITIONS} positions in one area")
    return [min(xs), min(ys), max(xs), max(ys)]


def union_box(boxes: Iterable[Sequence[float]]) -> list[float] | None:
    """The box around every box given (None when there are none)."""
    found = [list(b) for b in boxes if len(b) == 4]
    if not found:
        return None
    return [
        min(b[0] for b in found),
        min(b[1] for b in found),
        max(b[2] for b in found),
        max(b[3] for b in found),
    ]
