"""The prefill's REST look-up clients against the live mocks: the tax mock's taxpayer look-up
endpoint, the GIS point and code look-ups, and the errors they map to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connectors.base import PartnerHttpClient, ResilientCaller
from connectors.base.errors import PartnerBusy
from connectors.lookups import AreaLookup, AreaNotFound, TaxpayerLookup, TaxpayerNotFound
from connectors.national_id.ids import verhoeff_digit
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.gis import create_app as create_gis
from sandbox_mocks.population import DEFAULT_AS_OF, iter_households
from sandbox_mocks.population.model import Household
from sandbox_mocks.tax import TaxAuthorityConfig
from sandbox_mocks.tax import create_app as create_tax


@pytest.fixture(scope="module")
def households() -> list[Household]:
    return list(iter_households(42, 300, DEFAULT_AS_OF))


@pytest.fixture(scope="module")
def tax(
    households: list[Household], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MockServer]:
    config = TaxAuthorityConfig(
        drop_folder=Path(tmp_path_factory.mktemp("drops")), households=households, seed=42
    )
    with MockServer(create_tax(config)) as server:
        yield server


def caller(name: str) -> ResilientCaller:
    return ResilientCaller.from_settings(name, {"timeout_seconds": 3, "max_attempts": 1})


def test_tax_endpoint_answers_one_persons_returns_only(tax, households) -> None:
    incomes = [i for h in households for i in h.incomes if i.national_id]
    wanted = incomes[0].national_id
    lookup = TaxpayerLookup({"api_url": tax.url}, caller("tax"))
    answer = lookup.find(wanted)
    expected = sorted(i.amount for i in incomes if i.national_id == wanted)
    assert sorted(int(float(r["GROSS_INCOME"])) for r in answer["returns"]) == expected
    assert {r["NATIONAL_ID"] for r in answer["returns"]} == {wanted}
    [taxpayer] = answer["taxpayers"]
    household = next(h for h in households if any(i.national_id == wanted for i in h.incomes))
    assert taxpayer["registered_address"]["locality_code"] == household.locality_code
    assert taxpayer["registered_address"]["lat"] == household.latitude


def test_tax_endpoint_refusals(tax, households) -> None:
    known = {i.national_id for h in households for i in h.incomes}
    body = next(
        str(n) for n in range(333333330, 333333999) if str(n) + verhoeff_digit(str(n)) not in known
    )
    lookup = TaxpayerLookup({"api_url": tax.url}, caller("tax"))
    with pytest.raises(TaxpayerNotFound):
        lookup.find(body + verhoeff_digit(body))
    bad = requests.post(tax.url + "/taxpayers/lookup", json={"national_id": "12ab"}, timeout=5)
    assert bad.status_code == 400 and "national_id" in bad.json()["error"]["message"]
    assert requests.post(tax.url + "/taxpayers/lookup", data="x", timeout=5).status_code == 400
    requests.put(tax.url + "/_admin/faults", json={"down": True}, timeout=5)
    try:
        with pytest.raises(PartnerBusy):
            lookup.find(body + verhoeff_digit(body))
    finally:
        requests.delete(tax.url + "/_admin/faults", timeout=5)


def test_gis_point_and_code_lookups() -> None:
    with MockServer(create_gis()) as server:
        areas = server.app.extensions["gis"]["areas"]
        locality = next(a for a in areas if a.level == 3)
        ring = locality.polygon[0][:-1]
        lon = sum(p[0] for p in ring) / len(ring)
        lat = sum(p[1] for p in ring) / len(ring)
        lookup = AreaLookup({"base_url": server.url}, caller("gis"))
        assert lookup.by_point(lon, lat)["locality"]["code"] == locality.code
        assert lookup.by_code(locality.code)["poverty_rate"] == locality.poverty_rate
        with pytest.raises(AreaNotFound):
            lookup.by_code("R99-D99-L999")
        with pytest.raises(AreaNotFound):
            lookup.by_point(-179.0, 89.0)
        with pytest.raises(ValueError):
            lookup.by_code("../admin")
        assert isinstance(lookup.http, PartnerHttpClient)
