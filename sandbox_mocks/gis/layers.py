"""The GIS service's view of the areas: JSON and GeoJSON shapes, thematic layers.

Pure functions over ``AdminArea`` so the Flask routes stay thin and these stay testable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox_mocks.population import AdminArea

LAYERS: dict[str, dict[str, str]] = {
    "flood-risk": {
        "attribute": "flood_risk",
        "unit": "share of the area in a flood zone (0..1)",
        "title": "Flood risk",
    },
    "poverty-rate": {
        "attribute": "poverty_rate",
        "unit": "share of people below the national poverty line (0..1)",
        "title": "Poverty rate",
    },
}
LEVEL_NAMES = {1: "region", 2: "district", 3: "locality"}


def area_summary(area: AdminArea) -> dict[str, Any]:
    return {
        "code": area.code,
        "name": area.name,
        "level": area.level,
        "level_name": LEVEL_NAMES.get(area.level, str(area.level)),
        "parent_code": area.parent_code,
        "flood_risk": area.flood_risk,
        "poverty_rate": area.poverty_rate,
    }


def feature(area: AdminArea, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = area_summary(area)
    if extra:
        properties.update(extra)
    return {
        "type": "Feature",
        "id": area.code,
        "geometry": {"type": "Polygon", "coordinates": area.polygon},
        "properties": properties,
    }


def feature_collection(areas: Iterable[AdminArea], layer: str | None = None) -> dict[str, Any]:
    features = []
    for area in areas:
        extra = None
        if layer is not None:
            extra = {"layer": layer, "value": getattr(area, LAYERS[layer]["attribute"])}
        features.append(feature(area, extra))
    return {"type": "FeatureCollection", "features": features}


def layer_values(layer: str, areas: Iterable[AdminArea]) -> dict[str, float]:
    attribute = LAYERS[layer]["attribute"]
    return {area.code: getattr(area, attribute) for area in areas}
