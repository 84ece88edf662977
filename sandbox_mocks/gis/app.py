"""Flask app of the GIS mock: admin areas, point look-up, thematic layers (REST/JSON).

Routes (all GET, JSON; errors are ``{"error": {"code", "message"}}``)
    ``/health``
    ``/gis/v1/areas?level=&parent=``            area list (no geometry)
    ``/gis/v1/areas/<code>``                    one area, its parent and children codes
    ``/gis/v1/areas/<code>/geojson``            one area as a GeoJSON Feature
    ``/gis/v1/geojson?level=&parent=``          GeoJSON FeatureCollection
    ``/gis/v1/lookup?lon=&lat=``                region, district and locality of a point
    ``/gis/v1/layers``                          the layers on offer
    ``/gis/v1/layers/<layer>?level=&format=``   flood-risk | poverty-rate, values per area
                                                (``format=geojson`` for a FeatureCollection)
    ``/_admin/faults``                          fault injection
"""

from __future__ import annotations

import math
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox_mocks.common.faults import install_faults
from sandbox_mocks.gis.config import GisConfig
from sandbox_mocks.gis.layers import (
    LAYERS,
    area_summary,
    feature,
    feature_collection,
    layer_values,
)
from sandbox_mocks.population import AdminArea, AreaLocator, generate_areas

PREFIX = "/gis/v1"
EXTENSION_KEY = "gis"


class GisError(Exception):
    """An error that knows its HTTP status and renders as the mock's JSON error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _float_arg(name: str, low: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        raise GisError(400, "bad_request", f"query parameter '{name}' is required")
    try:
        value = float(raw)
    except ValueError:
        raise GisError(400, "bad_request", f"'{name}' must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise GisError(400, "bad_request", f"'{name}' must be between {low} and {high}")
    return value


def _level_arg() -> int | None:
    raw = request.args.get("level")
    if raw in (None, ""):
        return None
    if raw not in ("1", "2", "3"):
        raise GisError(400, "bad_request", "'level' must be 1 (region), 2 (district) or 3")
    return int(raw)


def create_app(config: GisConfig | None = None) -> Flask:
    config = config or GisConfig()
    app = Flask("sandbox_gis")
    areas = generate_areas(
        config.seed, config.regions, config.districts_per_region, config.localities_per_district
    )
    by_code = {area.code: area for area in areas}
    children: dict[str, list[str]] = {}
    for area in areas:
        if area.parent_code:
            children.setdefault(area.parent_code, []).append(area.code)
    locator = AreaLocator(areas)
    app.extensions[EXTENSION_KEY] = {"areas": areas, "locator": locator}
    install_faults(app, config.faults)

    def selected() -> list[AdminArea]:
        level = _level_arg()
        parent = request.args.get("parent")
        if parent and parent not in by_code:
            raise GisError(404, "not_found", f"no area with code {parent[:40]!r}")
        return [
            a
            for a in areas
            if (level is None or a.level == level) and (not parent or a.parent_code == parent)
        ]

    def area_or_404(code: str) -> AdminArea:
        area = by_code.get(code)
        if area is None:
            raise GisError(404, "not_found", f"no area with code {code[:40]!r}")
        return area

    @app.errorhandler(GisError)
    def _render(error: GisError) -> ResponseReturnValue:
        return jsonify({"error": {"code": error.code, "message": error.message}}), error.status

    @app.errorhandler(404)
    def _not_found(_error: Exception) -> ResponseReturnValue:
        return jsonify({"error": {"code": "not_found", "message": "no such resource"}}), 404

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "service": "gis", "areas": len(areas)}

    @app.get(f"{PREFIX}/areas")
    def list_areas() -> dict[str, Any]:
        chosen = selected()
        return {"count": len(chosen), "areas": [area_summary(a) for a in chosen]}

    @app.get(f"{PREFIX}/areas/<code>")
    def get_area(code: str) -> dict[str, Any]:
        area = area_or_404(code)
        return {**area_summary(area), "children": children.get(code, [])}

    @app.get(f"{PREFIX}/areas/<code>/geojson")
    def get_area_geojson(code: str) -> dict[str, Any]:
        return feature(area_or_404(code))

    @app.get(f"{PREFIX}/geojson")
    def geojson() -> dict[str, Any]:
        return feature_collection(selected())

    @app.get(f"{PREFIX}/lookup")
    def lookup() -> dict[str, Any]:
        lon = _float_arg("lon", -180.0, 180.0)
        lat = _float_arg("lat", -90.0, 90.0)
        chain = locator.locate(lon, lat)
        if not chain:
            raise GisError(404, "outside", "the point is outside every admin area")
        answer: dict[str, Any] = {"point": {"lon": lon, "lat": lat}}
        for area in chain:
            answer[{1: "region", 2: "district", 3: "locality"}[area.level]] = area_summary(area)
        return answer

    @app.get(f"{PREFIX}/layers")
    def list_layers() -> dict[str, Any]:
        return {"layers": [{"id": key, **meta} for key, meta in LAYERS.items()]}

    @app.get(f"{PREFIX}/layers/<layer>")
    def get_layer(layer: str) -> dict[str, Any]:
        if layer not in LAYERS:
            raise GisError(404, "not_found", f"no layer {layer[:40]!r}; see {PREFIX}/layers")
        chosen = selected()
        if request.args.get("format") == "geojson":
            return feature_collection(chosen, layer)
        return {"layer": layer, **LAYERS[layer], "values": layer_values(layer, chosen)}

    return app
