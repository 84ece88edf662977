"""Admin-area outlines from the GIS mock into ``admin_areas`` through the ingest route of
``gis.admin_area`` (mapping spec ``gis_admin_area``, applier ``admin_area``), on SQLite and
PostgreSQL: every area of every level lands with its level, name, parent, outline and layers;
a redelivery changes nothing; a redrawn area is replaced; outlines that are not drawable
polygons are refused naming why (the ingest dead-letters them: a mapping error when the
schema refuses, an invalid record when a ring is open or has fewer than three corners)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub.pipeline.apply.common import IngestContext
from hub.pipeline.routes import build_routes
from mappings.engine import load_spec
from mappings.results import MappingError
from registry_core.errors import InvalidRecord
from registry_core.service import Registry
from sandbox_mocks.gis import GisConfig, create_app


@pytest.fixture(scope="module")
def features() -> list[dict[str, Any]]:
    """What ``GET /gis/v1/geojson`` serves (the mock's own Flask app, no network)."""
    answer = create_app(GisConfig(seed=42)).test_client().get("/gis/v1/geojson")
    assert answer.status_code == 200
    found: list[dict[str, Any]] = answer.get_json()["features"]
    return found


def _ingest(registry: Registry, feature: dict[str, Any]) -> str:
    """What the ingest worker does with a ``gis.admin_area`` message: map, then apply."""
    route = build_routes()["gis.admin_area"]
    record = load_spec(route.spec).map(feature, registry.identifier_profile).record
    context = IngestContext("m-1", f"outline:{feature['id']}", {})
    return route.apply(registry, record, context)


def test_every_area_lands_with_its_outline_and_a_redelivery_changes_nothing(
    registry: Registry, features: list[dict[str, Any]]
) -> None:
    assert {_ingest(registry, f) for f in features} == {"applied"}
    stored = {a["code"]: a for a in registry.admin_areas()}
    assert len(stored) == len(features)
    for feature in features:
        props = feature["properties"]
        area = stored[props["code"]]
        assert (area["level"], area["name"], area["parent_code"]) == (
            props["level"],
            props["name"],
            props["parent_code"],
        )
        assert area["geometry"] == feature["geometry"]
        assert area["layers"] == {
            "flood_risk": props["flood_risk"],
            "poverty_rate": props["poverty_rate"],
        }
        ring = feature["geometry"]["coordinates"][0]
        assert area["bbox"] == [
            min(p[0] for p in ring),
            min(p[1] for p in ring),
            max(p[0] for p in ring),
            max(p[1] for p in ring),
        ]
    assert {a["code"] for a in registry.admin_areas(2)} == {
        f["properties"]["code"] for f in features if f["properties"]["level"] == 2
    }
    assert _ingest(registry, features[0]) == "already_applied"

    redrawn = copy.deepcopy(features[0])
    redrawn["properties"]["poverty_rate"] = 0.999
    assert _ingest(registry, redrawn) == "applied"
    code = redrawn["properties"]["code"]
    assert registry.admin_areas(redrawn["properties"]["level"])[0]["code"] == code
    again = {a["code"]: a for a in registry.admin_areas()}[code]
    assert again["layers"]["poverty_rate"] == 0.999


def _broken(feature: dict[str, Any], how: str) -> dict[str, Any]:
    bad = copy.deepcopy(feature)
    ring = bad["geometry"]["coordinates"][0]
    if how == "open_ring":
        ring[-1] = [ring[-1][0] + 0.5, ring[-1][1]]
    elif how == "longitude":
        ring[1] = [250.0, ring[1][1]]
    elif how == "point":
        bad["geometry"] = {"type": "Point", "coordinates": ring[0]}
    elif how == "two_corners":
        bad["geometry"]["coordinates"] = [[ring[0], ring[1], ring[0], ring[1], ring[0]]]
    elif how == "text_coordinate":
        ring[1] = ["east", ring[1][1]]
    return bad


@pytest.mark.parametrize(
    ("how", "error", "says"),
    [
        ("open_ring", InvalidRecord, "closed"),
        ("two_corners", InvalidRecord, "three distinct corners"),
        # The mapping checks the spec's output schema: a MappingError, dead-lettered as one.
        ("longitude", MappingError, "$.geometry"),
        ("point", MappingError, "$.geometry"),
        ("text_coordinate", MappingError, "$.geometry"),
    ],
)
def test_an_outline_that_is_no_polygon_is_refused_naming_why(
    registry: Registry,
    features: list[dict[str, Any]],
    how: str,
    error: type[Exception],
    says: str,
) -> None:
    with pytest.raises(error) as caught:
        _ingest(registry, _broken(features[0], how))
    assert says in str(caught.value)
    assert registry.admin_areas() == []
