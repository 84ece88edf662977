"""GIS look-up: the admin area of a point, or an area by its code.

``GET <api_url>/lookup?lon=&lat=`` answers region, district and locality of a point (the shape
the ``gis_area`` mapping reads); ``GET <api_url>/areas/<code>`` describes one area. Both are
read-only and carry no personal data (a point is sent, never who lives there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import requests

from connectors.base import Connector, Deadline, PartnerHttpClient, ResilientCaller
from connectors.base.errors import PartnerProtocolError, PartnerRejected, PermanentPartnerError

AREA_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class AreaNotFound(PermanentPartnerError):
    """No admin area contains the point, or none has the code."""


class AreaLookup:
    def __init__(
        self,
        settings: Mapping[str, Any],
        caller: ResilientCaller,
        *,
        session: requests.Session | None = None,
    ) -> None:
        base = settings.get("api_url")
        if not base and settings.get("base_url"):
            base = str(settings["base_url"]).rstrip("/") + "/gis/v1"
        if not base:
            raise ValueError("gis settings need api_url (e.g. http://host:8104/gis/v1)")
        self.http = PartnerHttpClient(str(base), caller, session=session)

    @classmethod
    def from_connector(cls, connector: Connector) -> AreaLookup:
        return cls(connector.settings, connector.resilience)

    def _get(self, path: str, operation: str, deadline: Deadline | None, **params: Any) -> Any:
        try:
            answer = self.http.get_json(
                path, params=params or None, deadline=deadline, operation=operation
            )
        except PartnerRejected as error:
            if error.status == 404:
                raise AreaNotFound("gis", operation, "not_found", "no such area") from None
            raise
        if not isinstance(answer, dict):
            raise PartnerProtocolError("gis", operation, "bad_answer", "not a JSON object")
        return answer

    def by_point(self, lon: float, lat: float, deadline: Deadline | None = None) -> dict[str, Any]:
        if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
            raise ValueError("a point needs finite lon in [-180, 180] and lat in [-90, 90]")
        return self._get("lookup", "GET /lookup", deadline, lon=f"{lon:.6f}", lat=f"{lat:.6f}")

    def by_code(self, code: str, deadline: Deadline | None = None) -> dict[str, Any]:
        if not AREA_CODE_RE.match(code):
            raise ValueError("an area code is letters, digits, '-' and '_'")
        return self._get(f"areas/{code}", "GET /areas/<code>", deadline)
