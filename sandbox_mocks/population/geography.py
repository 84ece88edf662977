"""The fictional country's admin areas: regions, districts, localities as GeoJSON polygons.

Layout: the country is a box split into a grid of regions, each region into a grid of
districts, each district into vertical strips (localities) whose shared borders are zig-zag
lines, so point-in-polygon is a real test and not a comparison of two numbers. Borders are
shared exactly (same vertices on both sides): every point of the country lies in one locality.

Flood risk follows a river that meanders across the country (high near it); poverty rates vary
by region with local noise and rise slightly with flood risk. District and region values are
population-weighted means of their localities.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sandbox_mocks.population.geometry import bbox, point_in_polygon
from sandbox_mocks.population.model import AdminArea
from sandbox_mocks.population.names import place_name

# Bounding box of the fictional country (a stretch of ocean-free longitudes/latitudes).
WEST, SOUTH, EAST, NORTH = 20.0, -10.0, 24.0, -6.0
ZIGZAG_STEPS = 4


@dataclass(frozen=True)
class Geography:
    """Areas plus what the generator needs to place people: locality population weights."""

    areas: list[AdminArea]
    localities: list[AdminArea]
    locality_weights: list[float]  # relative population, same order as ``localities``


def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


Box = tuple[float, float, float, float]  # west, south, east, north


def _cells(box: Box, n: int) -> list[Box]:
    x0, y0, x1, y1 = box
    cols, rows = _grid(n)
    w, h = (x1 - x0) / cols, (y1 - y0) / rows
    cells: list[Box] = []
    for k in range(n):
        row, col = divmod(k, cols)
        top = y1 - row * h  # codes run west to east, north to south, as maps are read
        cells.append((x0 + col * w, top - h, x0 + (col + 1) * w, top))
    return cells


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[list[float]]]:
    # Counter-clockwise exterior ring (RFC 7946).
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def _river_distance(lon: float, lat: float) -> float:
    """Distance in degrees (roughly) from the meandering river y = f(x)."""
    mid = (SOUTH + NORTH) / 2
    river_lat = mid + 0.8 * math.sin((lon - WEST) * 1.7) + 0.3 * math.sin((lon - WEST) * 4.1)
    return abs(lat - river_lat)


def _strips(rng: random.Random, box: Box, n: int) -> list[list[list[list[float]]]]:
    """Split a district box into ``n`` west-to-east strips with shared zig-zag borders."""
    x0, y0, x1, y1 = box
    w = (x1 - x0) / n
    ys = [y0 + (y1 - y0) * j / ZIGZAG_STEPS for j in range(ZIGZAG_STEPS + 1)]
    borders: list[list[list[float]]] = [[[x0, y] for y in ys]]
    for k in range(1, n):
        base = x0 + k * w
        borders.append([[round(base + rng.uniform(-0.3, 0.3) * w, 6), y] for y in ys])
    borders.append([[x1, y] for y in ys])
    polygons = []
    for k in range(n):
        left, right = borders[k], borders[k + 1]
        ring = [list(p) for p in right] + [list(p) for p in reversed(left)]
        ring.append(list(ring[0]))
        polygons.append([ring])
    return polygons


def _centroid(polygon: list[list[list[float]]]) -> tuple[float, float]:
    ring = polygon[0][:-1]
    return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def build_geography(
    seed: int, regions: int = 4, districts_per_region: int = 4, localities_per_district: int = 5
) -> Geography:
    """Deterministic for a seed: same seed, same names, borders, risks and weights."""
    if min(regions, districts_per_region, localities_per_district) < 1:
        raise ValueError("every level needs at least one area")
    rng = random.Random(f"geography:{seed}")
    used: set[str] = set()

    def unique_name() -> str:
        while True:
            name = place_name(rng)
            if name not in used:
                used.add(name)
                return name

    # Localities first: their values roll up into districts and regions.
    raw: list[tuple[str, str, int, str | None, list, float, float, float]] = []
    locality_rows: list[tuple[str, str, str, list, float, float, float]] = []
    for r, rbox in enumerate(_cells((WEST, SOUTH, EAST, NORTH), regions), start=1):
        rcode = f"R{r:02d}"
        region_poverty = rng.uniform(0.12, 0.5)
        raw.append((rcode, unique_name(), 1, None, _rect(*rbox), 0.0, 0.0, 0.0))
        for d, dbox in enumerate(_cells(rbox, districts_per_region), start=1):
            dcode = f"{rcode}-D{d:02d}"
            raw.append((dcode, unique_name(), 2, rcode, _rect(*dbox), 0.0, 0.0, 0.0))
            for k, poly in enumerate(_strips(rng, dbox, localities_per_district), start=1):
                lon, lat = _centroid(poly)
                flood = max(
                    0.0,
                    min(
                        1.0,
                        0.9 * math.exp(-_river_distance(lon, lat) / 0.35)
                        + rng.uniform(-0.05, 0.08),
                    ),
                )
                poverty = max(
                    0.03, min(0.85, region_poverty + rng.uniform(-0.1, 0.1) + 0.15 * flood)
                )
                weight = rng.lognormvariate(0.0, 0.8)  # a few big towns, many small places
                locality_rows.append(
                    (
                        f"{dcode}-L{k:03d}",
                        unique_name(),
                        dcode,
                        poly,
                        round(flood, 3),
                        round(poverty, 3),
                        weight,
                    )
                )

    weight_of = {row[0]: row[6] for row in locality_rows}
    stats: dict[str, list[float]] = {}
    for _code, _name, parent, _poly, flood, poverty, weight in locality_rows:
        for key in (parent, parent.split("-")[0]):
            acc = stats.setdefault(key, [0.0, 0.0, 0.0])
            acc[0] += weight * flood
            acc[1] += weight * poverty
            acc[2] += weight

    areas: list[AdminArea] = []
    for code, name, level, parent_code, poly, *_ in raw:
        flood_sum, poverty_sum, weight_sum = stats[code]
        flood, poverty = flood_sum / weight_sum, poverty_sum / weight_sum
        areas.append(
            AdminArea(code, name, level, parent_code, poly, round(flood, 3), round(poverty, 3))
        )
    localities = [
        AdminArea(code, name, 3, parent, poly, flood, poverty)
        for code, name, parent, poly, flood, poverty, _w in locality_rows
    ]
    areas.extend(localities)
    areas.sort(key=lambda a: a.code)
    localities.sort(key=lambda a: a.code)
    return Geography(areas, localities, [weight_of[a.code] for a in localities])


def generate_areas(
    seed: int, regions: int = 4, districts_per_region: int = 4, localities_per_district: int = 5
) -> list[AdminArea]:
    """All admin areas, sorted by code (a region's code sorts before its districts')."""
    return build_geography(seed, regions, districts_per_region, localities_per_district).areas


def random_point_in(
    rng: random.Random, area: AdminArea, box: tuple[float, float, float, float] | None = None
) -> tuple[float, float]:
    """A uniform random (lon, lat) inside the area's polygon, by rejection from its box.

    Coordinates are rounded to 6 decimals (about 10 cm) and tested *after* rounding, so the
    stored point is inside the polygon, never a hair across the border.
    """
    x0, y0, x1, y1 = box or bbox(area.polygon)
    for _ in range(1000):
        lon, lat = round(rng.uniform(x0, x1), 6), round(rng.uniform(y0, y1), 6)
        if point_in_polygon(lon, lat, area.polygon):
            return lon, lat
    raise RuntimeError(f"could not place a point in {area.code}")  # degenerate polygon
