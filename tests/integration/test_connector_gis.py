"""The GIS connector against the live GIS mock: look-ups, layer refresh, and a partner that fails.

Households of the synthetic population come with a point inside their locality: the look-up
must name that locality and its layer values. The refresh must publish one record per locality
and, later, only what changed. With the mock down the connector retries, opens its circuit,
shows it in its status, and recovers without losing a refresh; a garbled answer is reported
with a reason, never a crash.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine

from connectors.base import (
    CircuitOpenError,
    ConnectorContext,
    FakeClock,
    InMemoryCheckpointStore,
    PullRunner,
    TransientPartnerError,
)
from connectors.base.errors import PartnerProtocolError
from connectors.base.testing import BatchCollectingPublisher
from connectors.gis import GisConnector
from hub.checkpoints import SqlCheckpointStore
from mappings.engine import map_record
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.gis import GisConfig, create_app
from sandbox_mocks.population import AdminArea, iter_households

RESILIENCE = {
    "timeout_seconds": 5,
    "max_attempts": 3,
    "initial_backoff_seconds": 0.5,
    "jitter_seconds": 0,
    "failure_threshold": 4,
    "cooldown_seconds": 30,
}


class GisSandbox:
    def __init__(self, server: MockServer, checkpoints: Any = None) -> None:
        self.server = server
        self.areas: list[AdminArea] = server.app.extensions["gis"]["areas"]
        self.clock = FakeClock()
        self.publisher = BatchCollectingPublisher()
        self.checkpoints = checkpoints or InMemoryCheckpointStore()
        self.connector = self.new_connector()

    def new_connector(self, **extra: Any) -> GisConnector:
        context = ConnectorContext(
            "gis", self.publisher, checkpoints=self.checkpoints, clock=self.clock
        )
        url = self.server.url
        # the launcher's [connectors.gis] section, passed whole
        settings = {"kind": "gis", "url": url, "base_url": url, "api_url": url + "/gis/v1"}
        return GisConnector({**settings, "resilience": RESILIENCE, **extra}, context)

    def faults(self, **config: Any) -> None:
        answer = requests.put(self.server.url + "/_admin/faults", json=config, timeout=10)
        assert answer.status_code == 200, answer.text

    def localities(self) -> list[AdminArea]:
        return [a for a in self.areas if a.level == 3]


@pytest.fixture
def gis() -> Iterator[GisSandbox]:
    with MockServer(create_app(GisConfig(seed=42))) as server:
        sandbox = GisSandbox(server)
        yield sandbox
        sandbox.connector.close()


# --- look-up ---------------------------------------------------------------------------------


def test_locate_names_the_households_locality_and_its_layers(gis: GisSandbox) -> None:
    by_code = {a.code: a for a in gis.areas}
    households = list(iter_households(42, 150))[:12]
    for household in households:
        answer = gis.connector.locate(household.latitude, household.longitude)
        assert answer is not None
        area = by_code[household.locality_code]
        assert answer["locality"]["code"] == area.code
        assert answer["locality"]["flood_risk"] == area.flood_risk
        assert answer["locality"]["poverty_rate"] == area.poverty_rate
        assert answer["district"]["code"] == area.parent_code
    assert gis.publisher.published == []  # a plain look-up publishes nothing
    assert gis.connector.status.snapshot()["counts"]["lookups"] == len(households)


def test_point_outside_the_country_is_none_not_a_failure(gis: GisSandbox) -> None:
    assert gis.connector.locate(-80.0, 170.0) is None
    assert gis.connector.status.state == "up"


def test_bad_coordinates_refused_before_any_call(gis: GisSandbox) -> None:
    with pytest.raises(ValueError, match="lat must be between"):
        gis.connector.locate(123.0, 0.0)
    assert gis.connector.status.snapshot()["counts"]["calls"] == 0


def test_household_lookup_publishes_a_location_record_the_ingest_can_map(
    gis: GisSandbox,
) -> None:
    household = next(iter(iter_households(42, 20)))
    answer = gis.connector.locate_household(
        household.household_key, household.latitude, household.longitude
    )
    assert answer is not None
    [record] = gis.publisher.records("location")
    assert record.headers["household_id"] == household.household_key
    assert record.payload == answer  # raw: the partner's answer unchanged
    mapped = map_record("gis_area", record.payload)
    assert mapped["admin_area_code"] == household.locality_code
    names = {a["name"]: a["value"] for a in mapped["attributes"]}
    assert names["flood_risk"] == answer["locality"]["flood_risk"]


# --- layer refresh ---------------------------------------------------------------------------


def test_refresh_publishes_one_record_per_locality_then_only_changes(gis: GisSandbox) -> None:
    runner = PullRunner(gis.connector)
    first = runner.run_once()
    assert first.error is None
    records = gis.publisher.records("area_layers")
    localities = gis.localities()
    assert sorted(r.headers["admin_area_code"] for r in records) == sorted(
        a.code for a in localities
    )
    for record in records[:5]:
        mapped = map_record("gis_area", record.payload)
        area = next(a for a in localities if a.code == mapped["admin_area_code"])
        values = {a["name"]: a["value"] for a in mapped["attributes"]}
        assert values == {"flood_risk": area.flood_risk, "poverty_rate": area.poverty_rate}
        assert mapped["district_code"] == area.parent_code

    assert runner.run_once().published == 0  # nothing changed

    index = gis.areas.index(localities[7])
    gis.areas[index] = dataclasses.replace(localities[7], poverty_rate=0.999)
    third = runner.run_once()
    assert third.published == 1  # its layers (localities' outlines are not published)
    changed = gis.publisher.records("area_layers")[-1]
    assert changed.headers["admin_area_code"] == localities[7].code
    assert changed.payload["locality"]["poverty_rate"] == 0.999


def test_refresh_publishes_the_outlines_of_regions_and_districts(gis: GisSandbox) -> None:
    assert PullRunner(gis.connector).run_once().error is None
    published = sorted(r.headers["admin_area_code"] for r in gis.publisher.records("admin_area"))
    assert published == sorted(a.code for a in gis.areas if a.level <= 2)


def test_refresh_publishes_every_area_outline_mapped_and_valid(gis: GisSandbox) -> None:
    gis.connector.close()
    gis.connector = gis.new_connector(outline_max_level=3)
    assert PullRunner(gis.connector).run_once().error is None
    records = gis.publisher.records("admin_area")
    assert sorted(r.headers["admin_area_code"] for r in records) == sorted(
        a.code for a in gis.areas
    )
    by_code = {a.code: a for a in gis.areas}
    levels = set()
    for record in records:
        mapped = map_record("gis_admin_area", record.payload)
        area = by_code[mapped["code"]]
        levels.add(mapped["level"])
        assert mapped["level"] == area.level and mapped["name"] == area.name
        assert mapped.get("parent_code") == area.parent_code
        assert mapped["geometry"] == {"type": "Polygon", "coordinates": area.polygon}
        assert mapped["layers"] == {
            "flood_risk": area.flood_risk,
            "poverty_rate": area.poverty_rate,
        }
    assert levels == {1, 2, 3}
    assert PullRunner(gis.connector).run_once().published == 0  # nothing changed
    index = gis.areas.index(next(a for a in gis.areas if a.level == 3))
    gis.areas[index] = dataclasses.replace(gis.areas[index], poverty_rate=0.999)
    assert PullRunner(gis.connector).run_once().published == 2  # its layers and its outline
    outline = gis.publisher.records("admin_area")[-1]
    assert outline.headers["admin_area_code"] == gis.areas[index].code
    assert map_record("gis_admin_area", outline.payload)["layers"]["poverty_rate"] == 0.999


def test_without_area_outlines_the_refresh_publishes_layers_only(gis: GisSandbox) -> None:
    gis.connector.close()
    gis.connector = gis.new_connector(area_outlines=False)
    assert PullRunner(gis.connector).run_once().error is None
    assert gis.publisher.records("admin_area") == []
    assert len(gis.publisher.records("area_layers")) == len(gis.localities())


def test_partner_down_retried_circuit_opens_then_recovers_from_checkpoint(
    gis: GisSandbox, db_engine: Engine
) -> None:
    gis.checkpoints = SqlCheckpointStore(db_engine)
    gis.connector = gis.new_connector()
    runner = PullRunner(gis.connector)
    gis.faults(down=True)

    with pytest.raises(TransientPartnerError):
        gis.connector.locate(0.0, 0.0)
    status = gis.connector.status.snapshot()
    assert status["counts"]["retries"] == 2 and status["counts"]["failures"] == 3
    outcome = runner.run_once()  # the fourth failure in a row opens the circuit
    assert outcome.error and gis.publisher.published == []
    assert gis.checkpoints.load("gis") is None
    status = gis.connector.status.snapshot()
    assert status["circuit"] == "open" and status["state"] == "down"
    assert "http_503" in (status["last_error"] or "") or "circuit" in (status["last_error"] or "")

    calls = status["counts"]["calls"]
    with pytest.raises(CircuitOpenError):  # refused locally: the partner is left alone
        gis.connector.locate(0.0, 0.0)
    assert gis.connector.status.snapshot()["counts"]["calls"] == calls

    gis.faults(down=False)
    gis.clock.advance(31)  # the cool-down passes; the next call is the trial
    outcome = runner.run_once()
    assert outcome.error is None
    assert len(gis.publisher.records("area_layers")) == len(gis.localities())
    saved = gis.checkpoints.load("gis")
    assert len(saved["digests"]) == len(gis.localities())
    status = gis.connector.status.snapshot()
    assert status["circuit"] == "closed" and status["state"] == "up"

    # a restart resumes from the saved checkpoint: nothing re-published, nothing missed
    gis.connector = gis.new_connector()
    assert PullRunner(gis.connector).run_once().published == 0


def test_garbled_answer_reported_with_a_reason_never_a_crash(gis: GisSandbox) -> None:
    gis.faults(malformed_rate=1.0, malformed_mode="garbage")
    outcome = PullRunner(gis.connector).run_once()
    assert outcome.error is not None and "bad_json" in outcome.error
    assert gis.publisher.published == []
    household = next(iter(iter_households(42, 20)))
    with pytest.raises(PartnerProtocolError):
        gis.connector.locate(household.latitude, household.longitude)
    status = gis.connector.status.snapshot()
    assert "bad_json" in (status["last_error"] or "")
    assert status["circuit"] == "closed"  # it answered: a protocol error is not "down"


def test_settings_accept_the_sandbox_launchers_section(tmp_path: Any) -> None:
    from sandbox_mocks.launcher import SandboxConfig, start_sandbox

    config = SandboxConfig(
        people=100, only=["gis"], ports={"gis": 0}, work_dir=tmp_path, write_connectors=False
    )
    with start_sandbox(config) as running:
        connector = GisConnector(
            running.connectors()["gis"], ConnectorContext("gis", BatchCollectingPublisher())
        )
        household = next(iter(iter_households(42, 20)))
        answer = connector.locate(household.latitude, household.longitude)
        connector.close()
    assert answer is not None and answer["locality"]["code"] == household.locality_code
