"""The GIS connector: where a point lies (admin area chain) and each locality's risk layers.

Two jobs, one partner:

- **Look-up** (``locate(lat, lon)``, or ``lookup({"lat", "lon", "household_id"})`` from the hub):
  asks ``GET /gis/v1/lookup`` which region, district and locality hold a point; the answer
  carries the locality's ``flood_risk`` and ``poverty_rate``. When the hub asks for a
  household, the answer is also published raw as ``gis.location`` (header ``household_id``),
  so the ingest sets the household's ``admin_area_code`` and layer attributes from it
  (mapping spec ``gis_area``). A point outside every area is an answer, not a failure: None.
- **Layer refresh** (a pull on a schedule): reads the area list (``GET /gis/v1/areas``, which
  carries each area's layer values) and publishes one ``gis.area_layers`` record per locality,
  shaped like a look-up answer without the point (``{"locality", "district", "region"}``,
  each the partner's area object unchanged), so the same ``gis_area`` spec maps it and the
  ingest can put ``flood_risk`` / ``poverty_rate`` onto every household of that locality.
  Only localities whose values changed since the last refresh are published again; the
  checkpoint keeps a digest per locality.
- **Area outlines** (the same refresh, unless ``area_outlines`` is false): reads the areas
  as GeoJSON (``GET /gis/v1/geojson``; levels up to ``outline_max_level``, default 2:
  regions and districts) and publishes one ``gis.admin_area``
  record per area, the partner's Feature unchanged (mapping spec ``gis_admin_area``: code,
  level, name, parent, outline, layer values), so the ingest keeps them in ``admin_areas``
  for the policy pages' maps. Only areas whose Feature changed are published again (a digest
  per area in the checkpoint). Nothing about the outline is trusted here: the spec's schema
  and the registry check it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from connectors.base import (
    Deadline,
    LookupConnector,
    PollResult,
    PullConnector,
    RawRecord,
    RecordType,
    connector_settings_schema,
)
from connectors.base.errors import PartnerProtocolError, PartnerRejected

LOCATION = "location"
AREA_LAYERS = "area_layers"
ADMIN_AREA = "admin_area"
LEVELS = {1: "region", 2: "district", 3: "locality"}
_URL = {"type": "string", "pattern": "^https?://"}

SETTINGS_SCHEMA: dict[str, Any] = connector_settings_schema(
    {
        # the sandbox launcher's [connectors.gis] section
        "url": _URL,
        "base_url": _URL,
        "api_url": _URL,
        "api_prefix": {"type": "string", "pattern": "^(/[A-Za-z0-9._-]+)*$", "default": "/gis/v1"},
        "lookup_timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 120,
            "default": 5,
        },
        "locality_level": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        "area_outlines": {"type": "boolean", "default": True},
        # Outlines of levels 1..N only: maps of regions and districts; finer ones cost writes.
        "outline_max_level": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
        "poll_interval_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 3600,
        },
    },
)
SETTINGS_SCHEMA["anyOf"] = [{"required": ["api_url"]}, {"required": ["base_url"]}]


def _digest(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _coordinate(value: Any, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return number


class GisConnector(LookupConnector, PullConnector):
    """Point look-ups on demand, and a scheduled refresh of per-locality layers."""

    name: ClassVar[str] = "gis"
    kind: ClassVar[str] = "gis"
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA
    # One spec reads both: an area layer record is a look-up answer without the point.
    record_types: ClassVar[Mapping[str, RecordType]] = {
        LOCATION: RecordType("gis_area", "json", "area"),
        AREA_LAYERS: RecordType("gis_area", "json", "area_layers"),
        ADMIN_AREA: RecordType("gis_admin_area", "json", "admin_area"),
    }

    def __init__(self, settings: Mapping[str, Any], context: Any) -> None:
        super().__init__(settings, context)
        api = self.settings.get("api_url") or (
            self.settings["base_url"].rstrip("/") + self.settings["api_prefix"]
        )
        self.client = self.http(api)

    def close(self) -> None:
        self.client.session.close()

    # --- look-up -----------------------------------------------------------------------------

    def lookup(self, request: Any, deadline: Deadline) -> dict[str, Any] | None:
        """``request``: ``{"lat", "lon"}`` and optionally ``"household_id"``. Returns the GIS
        answer (``point``, ``region``, ``district``, ``locality``) or None outside the country.
        With a household id the answer is published raw as ``gis.location`` before returning.
        """
        if not isinstance(request, Mapping):
            raise TypeError("a GIS look-up request is a mapping with lat and lon")
        lat = _coordinate(request.get("lat"), "lat", -90.0, 90.0)
        lon = _coordinate(request.get("lon"), "lon", -180.0, 180.0)
        try:
            response = self.client.get(
                "lookup", params={"lat": repr(lat), "lon": repr(lon)}, deadline=deadline
            )
        except PartnerRejected as error:
            if error.status == 404:  # the route exists: 404 means the point is in no area
                self.status.record_success()
                return None
            raise
        answer = self.client.json_of(response, "GET /lookup")
        if not isinstance(answer, dict) or not any(
            isinstance(answer.get(level), dict) for level in LEVELS.values()
        ):
            raise PartnerProtocolError(
                self.partner, "GET /lookup", "unexpected_shape", "no area in the answer"
            )
        household = request.get("household_id")
        if household is not None:
            household = str(household)
            self.context.publish_raw(
                LOCATION,
                answer,
                source_id=f"household:{household}",
                headers={"household_id": household},
            )
        return answer

    def locate(self, lat: float, lon: float) -> dict[str, Any] | None:
        """The area chain and layers of a point, within ``lookup_timeout_seconds``."""
        return self.lookup_within(
            {"lat": lat, "lon": lon}, float(self.settings["lookup_timeout_seconds"])
        )

    def locate_household(self, household_id: str, lat: float, lon: float) -> dict[str, Any] | None:
        """Locate a household's point and publish the answer for the ingest (``gis.location``)."""
        return self.lookup_within(
            {"lat": lat, "lon": lon, "household_id": household_id},
            float(self.settings["lookup_timeout_seconds"]),
        )

    # --- layer refresh -------------------------------------------------------------------------

    def poll(self, checkpoint: Any | None) -> PollResult:
        areas = self._areas()
        by_code = {area["code"]: area for area in areas}
        previous: Mapping[str, str] = {}
        if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("digests"), Mapping):
            previous = checkpoint["digests"]
        level = int(self.settings["locality_level"])
        digests: dict[str, str] = {}
        records: list[RawRecord] = []
        for area in areas:
            if area.get("level") != level:
                continue
            payload = self._chain(area, by_code)
            digest = _digest(payload)
            digests[area["code"]] = digest
            if previous.get(area["code"]) == digest:
                continue
            records.append(
                RawRecord(
                    AREA_LAYERS,
                    payload,
                    source_id=f"area:{area['code']}",
                    headers={"admin_area_code": str(area["code"])},
                )
            )
        state: dict[str, Any] = {"digests": digests}
        if self.settings["area_outlines"]:
            before: Mapping[str, str] = {}
            if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("outlines"), Mapping):
                before = checkpoint["outlines"]
            outlines, state["outlines"] = self._outlines(before)
            records.extend(outlines)
        state["refreshed_at"] = self.context.clock.now().isoformat()
        return PollResult(records, state, more=False)

    def _outlines(self, before: Mapping[str, str]) -> tuple[list[RawRecord], dict[str, str]]:
        """One ``admin_area`` record per area whose GeoJSON Feature changed since ``before``
        (digests by area code), and the digests now."""
        body = self.client.get_json("geojson")
        features = body.get("features") if isinstance(body, dict) else None
        if not isinstance(features, list) or not all(
            isinstance(f, dict) and isinstance(f.get("properties"), dict) for f in features
        ):
            raise PartnerProtocolError(
                self.partner,
                "GET /geojson",
                "unexpected_shape",
                "expected a FeatureCollection of features with properties",
            )
        digests: dict[str, str] = {}
        records: list[RawRecord] = []
        for item in features:
            code = item["properties"].get("code") or item.get("id")
            if not isinstance(code, str) or not code:
                raise PartnerProtocolError(
                    self.partner, "GET /geojson", "unexpected_shape", "a feature without a code"
                )
            level = item["properties"].get("level")
            if isinstance(level, int) and level > int(self.settings["outline_max_level"]):
                continue
            digest = _digest(item)
            digests[code] = digest
            if before.get(code) == digest:
                continue
            records.append(
                RawRecord(
                    ADMIN_AREA,
                    item,
                    source_id=f"outline:{code}",
                    headers={"admin_area_code": code},
                )
            )
        return records, digests

    def _areas(self) -> list[dict[str, Any]]:
        body = self.client.get_json("areas")
        areas = body.get("areas") if isinstance(body, dict) else None
        if not isinstance(areas, list) or not all(
            isinstance(a, dict) and isinstance(a.get("code"), str) and a["code"] for a in areas
        ):
            raise PartnerProtocolError(
                self.partner, "GET /areas", "unexpected_shape", "expected areas: [{code, ...}]"
            )
        return areas

    @staticmethod
    def _chain(area: dict[str, Any], by_code: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """``{"locality": area, "district": parent, "region": grandparent}`` as the GIS sent
        them, named by each area's own level."""
        chain: dict[str, Any] = {}
        current: dict[str, Any] | None = area
        hops = 0
        while current is not None and hops < 10:
            level = current.get("level")
            name = LEVELS.get(level, f"level_{level}") if isinstance(level, int) else "area"
            chain.setdefault(name, current)
            parent = current.get("parent_code")
            current = by_code.get(parent) if isinstance(parent, str) else None
            hops += 1
        return chain
