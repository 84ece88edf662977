"""The GIS mock over real HTTP: hierarchy, point look-up, GeoJSON and layers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sandbox_mocks.common.server import MockServer
from sandbox_mocks.gis import PREFIX, GisConfig, create_app
from sandbox_mocks.population import iter_households, point_in_polygon

SEED = 9


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(create_app(GisConfig(seed=SEED))) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(http: requests.Session, server: MockServer, path: str, **params: object):
    return http.get(server.url + PREFIX + path, params=params, timeout=5)


def test_households_are_located_in_their_locality(server: MockServer, http) -> None:
    households = list(iter_households(SEED, 600))
    assert len(households) > 100
    for household in households:
        answer = get(http, server, "/lookup", lon=household.longitude, lat=household.latitude)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["locality"]["code"] == household.locality_code
        assert body["district"]["code"] == body["locality"]["parent_code"]
        assert body["region"]["code"] == body["district"]["parent_code"]
        assert household.address.endswith(body["locality"]["name"])


def test_lookup_agrees_with_the_published_polygons(server: MockServer, http) -> None:
    localities = get(http, server, "/geojson", level=3).json()["features"]
    tested = 0
    for feature in localities[::3]:
        ring = feature["geometry"]["coordinates"][0]
        lon = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
        lat = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
        # The vertex mean of a zig-zag strip can fall outside it; only test points inside.
        if point_in_polygon(lon, lat, feature["geometry"]["coordinates"]):
            body = get(http, server, "/lookup", lon=lon, lat=lat).json()
            assert body["locality"]["code"] == feature["id"]
            tested += 1
    assert tested >= 10


def test_lookup_errors(server: MockServer, http) -> None:
    outside = get(http, server, "/lookup", lon=0.0, lat=0.0)
    assert outside.status_code == 404
    assert outside.json()["error"]["code"] == "outside"
    for params in (
        {"lon": 21.0},
        {"lon": "east", "lat": -7.0},
        {"lon": 21.0, "lat": 95},
        {"lon": "nan", "lat": -7.0},
    ):
        bad = get(http, server, "/lookup", **params)
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "bad_request"


def test_hierarchy(server: MockServer, http) -> None:
    counts = {
        level: get(http, server, "/areas", level=level).json()["count"] for level in (1, 2, 3)
    }
    assert counts == {1: 4, 2: 16, 3: 80}
    everything = get(http, server, "/areas").json()
    assert everything["count"] == 100
    region = get(http, server, "/areas/R02").json()
    assert region["level"] == 1 and region["parent_code"] is None
    assert len(region["children"]) == 4
    districts = get(http, server, "/areas", parent="R02").json()["areas"]
    assert sorted(d["code"] for d in districts) == sorted(region["children"])
    assert get(http, server, "/areas/R99").status_code == 404
    assert get(http, server, "/areas", level=7).status_code == 400
    assert get(http, server, "/areas", parent="nope").status_code == 404


def test_geojson(server: MockServer, http) -> None:
    collection = get(http, server, "/geojson", level=2).json()
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 16
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Polygon"
        ring = feature["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1]
        assert feature["properties"]["level"] == 2
    one = get(http, server, "/areas/R01-D01-L001/geojson").json()
    assert one["id"] == "R01-D01-L001" and one["properties"]["parent_code"] == "R01-D01"


def test_layers(server: MockServer, http) -> None:
    listed = {layer["id"] for layer in get(http, server, "/layers").json()["layers"]}
    assert listed == {"flood-risk", "poverty-rate"}
    areas = {a["code"]: a for a in get(http, server, "/areas").json()["areas"]}
    for layer, attribute in (("flood-risk", "flood_risk"), ("poverty-rate", "poverty_rate")):
        values = get(http, server, f"/layers/{layer}", level=3).json()["values"]
        assert len(values) == 80
        assert all(0.0 <= v <= 1.0 for v in values.values())
        assert all(areas[code][attribute] == v for code, v in values.items())
        assert len(set(values.values())) > 10  # a map, not a constant
        geo = get(http, server, f"/layers/{layer}", level=1, format="geojson").json()
        assert [f["properties"]["value"] for f in geo["features"]] == [
            areas[f["id"]][attribute] for f in geo["features"]
        ]
    assert get(http, server, "/layers/earthquakes").status_code == 404


def test_fault_injection_is_installed(server: MockServer, http) -> None:
    broken = http.get(
        server.url + PREFIX + "/areas", headers={"X-Mock-Fault": "error=503"}, timeout=5
    )
    assert broken.status_code == 503
    assert "error" in broken.json()
    assert http.get(server.url + "/health", timeout=5).json()["status"] == "ok"
