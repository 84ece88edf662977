"""Admin areas of the fictional country and the point-in-polygon locator."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from sandbox_mocks.population import AreaLocator, generate_areas, point_in_polygon
from sandbox_mocks.population.geometry import bbox


def _signed_area(ring: list[list[float]]) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise(ring)) / 2


@pytest.fixture(scope="module")
def areas():
    return generate_areas(42)


def test_three_levels_with_consistent_codes(areas) -> None:
    levels = [a.level for a in areas]
    assert (levels.count(1), levels.count(2), levels.count(3)) == (4, 16, 80)
    codes = {a.code: a for a in areas}
    for area in areas:
        if area.level == 1:
            assert area.parent_code is None
        else:
            parent = codes[area.parent_code]
            assert parent.level == area.level - 1
            assert area.code.startswith(parent.code + "-")
        assert 0.0 <= area.flood_risk <= 1.0
        assert 0.0 <= area.poverty_rate <= 1.0
    assert len({a.name for a in areas}) == len(areas)


def test_polygons_are_closed_counter_clockwise_and_tile_their_parent(areas) -> None:
    children: dict[str, float] = {}
    for area in areas:
        ring = area.polygon[0]
        assert ring[0] == ring[-1] and len(ring) >= 4
        size = _signed_area(ring)
        assert size > 0  # RFC 7946: exterior rings counter-clockwise
        if area.parent_code:
            children[area.parent_code] = children.get(area.parent_code, 0.0) + size
    for area in areas:
        if area.code in children:
            assert children[area.code] == pytest.approx(_signed_area(area.polygon[0]), rel=1e-9)


def test_parent_values_lie_between_children(areas) -> None:
    for parent in (a for a in areas if a.level < 3):
        kids = [a for a in areas if a.parent_code == parent.code]
        for attr in ("flood_risk", "poverty_rate"):
            values = [getattr(k, attr) for k in kids]
            assert min(values) - 1e-3 <= getattr(parent, attr) <= max(values) + 1e-3


def test_areas_are_deterministic_per_seed(areas) -> None:
    assert generate_areas(42) == areas
    other = generate_areas(43)
    assert [a.code for a in other] == [a.code for a in areas]
    assert [a.name for a in other] != [a.name for a in areas]
    assert [a.polygon for a in other] != [a.polygon for a in areas]


def test_point_in_polygon_concave_and_hole() -> None:
    # A "U" shape: the notch is outside.
    u_shape = [[[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3], [0, 0]]]
    assert point_in_polygon(0.5, 2.5, u_shape)
    assert point_in_polygon(2.5, 2.5, u_shape)
    assert not point_in_polygon(1.5, 2.0, u_shape)
    assert not point_in_polygon(4, 1, u_shape)
    with_hole = [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [1, 3], [3, 3], [3, 1], [1, 1]]]
    assert point_in_polygon(0.5, 0.5, with_hole)
    assert not point_in_polygon(2, 2, with_hole)
    assert not point_in_polygon(0, 0, [])


def test_every_point_of_the_country_is_in_exactly_one_locality(areas) -> None:
    locator = AreaLocator(areas)
    localities = [a for a in areas if a.level == 3]
    x0, y0, x1, y1 = bbox(next(a for a in areas if a.code == "R01").polygon)
    rng = random.Random(3)
    west, south, east, north = 20.0, -10.0, 24.0, -6.0
    points = [(rng.uniform(west, east), rng.uniform(south, north)) for _ in range(1500)]
    # Points exactly on shared zig-zag vertices, where a sloppy test double-counts.
    points += [
        (p[0], p[1])
        for a in localities
        for p in a.polygon[0][1:3]
        if west < p[0] < east and south < p[1] < north
    ]
    for lon, lat in points:
        inside = [a.code for a in localities if point_in_polygon(lon, lat, a.polygon)]
        assert len(inside) == 1, (lon, lat, inside)
        chain = locator.locate(lon, lat)
        assert [a.level for a in chain] == [1, 2, 3]
        assert chain[-1].code == inside[0]
        assert chain[1].code == chain[-1].parent_code and chain[0].code == chain[1].parent_code
    assert locator.locate(west - 1, south) == []
    assert locator.locate(x1 + 100, y1) == []
    del x0, y0
