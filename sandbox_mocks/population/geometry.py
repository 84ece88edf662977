"""Point-in-polygon and the admin-area locator.

Why our own: the areas are a few dozen small polygons, so an even-odd ray cast with a bounding
box filter is exact and fast enough, and saves a geometry library with native parts (shapely,
GEOS) for one predicate. Edges follow the half-open rule (a vertex counts only for the edge
whose lower end it is), so a point on the border shared by two neighbouring areas lands in
exactly one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sandbox_mocks.population.model import AdminArea

Ring = Sequence[Sequence[float]]
Polygon = Sequence[Ring]


def point_in_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Even-odd test of one closed ring (first point repeated last, as GeoJSON writes it)."""
    inside = False
    n = len(ring)
    x1, y1 = ring[n - 1][0], ring[n - 1][1]
    for i in range(n):
        x2, y2 = ring[i][0], ring[i][1]
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_cross:
                inside = not inside
        x1, y1 = x2, y2
    return inside


def point_in_polygon(lon: float, lat: float, polygon: Polygon) -> bool:
    """Exterior ring first, holes after: inside the exterior and outside every hole."""
    if not polygon or not point_in_ring(lon, lat, polygon[0]):
        return False
    return not any(point_in_ring(lon, lat, hole) for hole in polygon[1:])


def bbox(polygon: Polygon) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of the exterior ring."""
    xs = [p[0] for p in polygon[0]]
    ys = [p[1] for p in polygon[0]]
    return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True)
class _Node:
    area: AdminArea
    box: tuple[float, float, float, float]
    children: tuple[_Node, ...]

    def contains(self, lon: float, lat: float) -> bool:
        x0, y0, x1, y1 = self.box
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        return point_in_polygon(lon, lat, self.area.polygon)


class AreaLocator:
    """Finds the chain region -> district -> locality that contains a point.

    Walks the hierarchy top-down, so a look-up tests a handful of polygons, not all of them.
    """

    def __init__(self, areas: Iterable[AdminArea]) -> None:
        areas = list(areas)
        children: dict[str | None, list[AdminArea]] = {}
        for area in areas:
            children.setdefault(area.parent_code, []).append(area)

        def build(area: AdminArea) -> _Node:
            kids = tuple(build(child) for child in children.get(area.code, []))
            return _Node(area, bbox(area.polygon), kids)

        self._roots = tuple(build(area) for area in children.get(None, []))

    def locate(self, lon: float, lat: float) -> list[AdminArea]:
        """Areas containing the point, outermost first; empty if it is outside the country."""
        chain: list[AdminArea] = []
        level: Sequence[_Node] = self._roots
        while level:
            node = next((n for n in level if n.contains(lon, lat)), None)
            if node is None:
                break
            chain.append(node.area)
            level = node.children
        return chain
