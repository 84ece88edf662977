"""Ingest routes come from the connectors' own declarations, for every configured instance.

Fake plugins are registered for a test by name (``BUILTIN_CONNECTORS`` is where the hub looks
besides the entry points); the real installed-package path is in
``tests/integration/test_plugin_package.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors.base import Connector, LookupConnector, RecordType
from connectors.base.registry import BUILTIN_CONNECTORS
from hub.pipeline.apply import APPLIERS, IngestContext
from hub.pipeline.extract import EXTRACTORS
from hub.pipeline.routes import Route, RouteError, build_routes, instance_routes

# The routing table the hub kept by hand before connectors declared their record types:
# routing key -> (mapping spec, extractor, applier, subject). Routes must stay exactly these.
BUILT_IN = {
    "civil_registry.birth": ("civil_registry_birth", "fhir_bundle", "birth", "child"),
    "civil_registry.death": ("civil_registry_death", "fhir_bundle", "death", "deceased"),
    "civil_registry.dci_birth": ("civil_registry_dci_birth", "json", "birth", "child"),
    "civil_registry.dci_death": ("civil_registry_dci_death", "json", "death", "deceased"),
    "national_id.verification": ("national_id_verification", "json", "verification", None),
    "national_id.person": ("national_id_person", "json", "identity", "person"),
    "tax.income_row": ("tax_income_row", "xml_or_json", "income", "taxpayer"),
    "gis.location": ("gis_area", "json", "area", None),
    "gis.area_layers": ("gis_area", "json", "area_layers", None),
    "gis.admin_area": ("gis_admin_area", "json", "admin_area", None),
    "programs.enrollment": ("program_enrollment", "json", "enrollment", "beneficiary"),
}


def described(route: Route) -> tuple[str, str, str, str | None]:
    extractor = next(n for n, f in EXTRACTORS.items() if f is route.extract)
    applier = next(n for n, a in APPLIERS.items() if a.apply is route.applier)
    return route.spec, extractor, applier, route.subject


class _Fake(LookupConnector):
    def lookup(self, request: Any, deadline: Any) -> Any:
        return None


class GoodPartner(_Fake):
    name: ClassVar[str] = "good_partner"
    kind: ClassVar[str] = "good_partner"
    record_types: ClassVar[Mapping[str, RecordType]] = {
        "fact": RecordType("tax_income_row", "json", "income", "taxpayer"),
    }


class BadPartner(_Fake):
    name: ClassVar[str] = "bad_partner"
    kind: ClassVar[str] = "bad_partner"
    record_types: ClassVar[Mapping[str, RecordType]] = {
        "typo": RecordType("tax_income_row", "jsn", "incme"),
        "nospec": RecordType("no_such_spec", "json", "income"),
        "elsewhere": RecordType("no_such_package:specs/x.toml", "json", "income"),
        "wrong_schema": RecordType("gis_area", "json", "income"),
    }


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (GoodPartner, BadPartner):
        monkeypatch.setitem(BUILTIN_CONNECTORS, cls.name, f"{__name__}:{cls.__name__}")


def test_the_built_in_connectors_route_as_the_hub_table_did():
    routes = build_routes()
    assert {key: described(route) for key, route in routes.items()} == BUILT_IN
    assert {route.kind for key, route in routes.items()} == {key.split(".")[0] for key in BUILT_IN}


def test_every_configured_instance_of_a_kind_gets_its_record_types():
    configs = {
        "tax": {"kind": "tax"},
        "tax_north": {"kind": "tax", "drop": {"folder": "/x"}},
        "tax_off": {"kind": "tax", "enabled": False},
    }
    routes = build_routes(configs, defaults=False)
    assert sorted(routes) == ["tax.income_row", "tax_north.income_row"]
    north = routes["tax_north.income_row"]
    assert (north.instance, north.record_type, north.kind) == ("tax_north", "income_row", "tax")
    assert described(north) == BUILT_IN["tax.income_row"]
    # With the defaults, a configured instance adds to the plugins' own names.
    assert set(build_routes(configs)) == set(BUILT_IN) | {"tax_north.income_row"}


def test_a_table_without_kind_names_the_plugin_by_its_own_name():
    routes = build_routes({"gis": {}}, defaults=False)
    assert sorted(routes) == ["gis.admin_area", "gis.area_layers", "gis.location"]


def test_unknown_names_are_refused_at_build_naming_instance_record_type_and_known_names(fakes):
    with pytest.raises(RouteError) as caught:
        build_routes({"partner_a": {"kind": "bad_partner"}}, defaults=False)
    problems = caught.value.problems
    where = "connector instance 'partner_a' (kind 'bad_partner'), record type"
    assert f"{where} 'typo': unknown extractor 'jsn'; known: {', '.join(sorted(EXTRACTORS))}" in (
        problems
    )
    assert f"{where} 'typo': unknown applier 'incme'; known: {', '.join(sorted(APPLIERS))}" in (
        problems
    )
    nospec = next(p for p in problems if "'nospec'" in p)
    assert "no mapping spec 'no_such_spec'; available: " in nospec and "tax_income_row" in nospec
    elsewhere = next(p for p in problems if "'elsewhere'" in p)
    assert "'no_such_package' is not installed" in elsewhere
    wrong = next(p for p in problems if "'wrong_schema'" in p)
    assert "writes inbound/area.json, but applier 'income' takes inbound/income.json" in wrong
    assert len(problems) == 5  # every problem at once, not the first
    assert str(caught.value).startswith("ingest routes refused (5 problem(s)): ")


def test_an_unknown_plugin_is_refused_naming_the_instance_and_the_known_connectors():
    with pytest.raises(RouteError) as caught:
        build_routes({"land": {"kind": "land_registry"}})
    [problem] = caught.value.problems
    assert problem.startswith("connector instance 'land': no connector named 'land_registry'")
    assert "known connectors: civil_registry, gis, national_id, programs, tax" in problem


def test_one_bad_instance_does_not_hide_the_others_problems(fakes):
    with pytest.raises(RouteError) as caught:
        build_routes({"a": {"kind": "bad_partner"}, "b": {"kind": "nope"}}, defaults=False)
    assert {p.split(":")[0].split(" (")[0] for p in caught.value.problems} == {
        "connector instance 'a'",
        "connector instance 'b'",
    }


def test_a_route_applies_with_its_connector_kind_as_the_source_system(fakes):
    route = instance_routes("partner_two", "good_partner")["partner_two.fact"]
    seen: list[IngestContext] = []

    def applier(registry: Any, record: dict[str, Any], ctx: IngestContext) -> str:
        seen.append(ctx)
        return "applied"

    route = Route(route.instance, route.record_type, route.kind, route.spec, route.extract, applier)
    ctx = IngestContext("m1", "s1", {"h": "v"})
    assert route.apply(None, {}, ctx) == "applied"  # type: ignore[arg-type]
    assert seen == [IngestContext("m1", "s1", {"h": "v"}, source_system="good_partner")]
    assert route.key == "partner_two.fact"


def test_the_connector_host_refuses_an_instance_it_cannot_route_and_runs_the_others(
    fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from hub.connectors_host import ConnectorHost
    from hub.settings import load_settings

    settings = load_settings(env={}, data_dir=tmp_path / "var", sandbox=False)
    host = ConnectorHost(settings, None).build(
        {"good": {"kind": "good_partner"}, "bad": {"kind": "bad_partner"}}
    )
    try:
        assert sorted(host.connectors) == ["good"]
        assert sorted(host.routes) == ["good.fact"]
        assert "unknown applier 'incme'" in host.problems["bad"]
        assert host.statuses()["bad"]["state"] == "down"
    finally:
        host.stop()


# ---------------------------------------------------------------------------- declarations


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Tax Row", "json", "income"), "must be a built-in spec name"),
        (("pkg:../x.toml", "json", "income"), "must be a built-in spec name"),
        (("pkg:a/../../x.toml", "json", "income"), "stay inside it"),
        (("pkg:/etc/x.toml", "json", "income"), "must be a built-in spec name"),
        (("pkg:x.yaml", "json", "income"), "must be a built-in spec name"),
        (("tax_income_row", "JSON", "income"), "extract 'JSON' must be a snake_case name"),
        (("tax_income_row", "json", "income.row"), "apply 'income.row' must be a snake_case"),
        (("tax_income_row", "json", "income", "a b"), "subject 'a b' must be a key"),
    ],
)
def test_a_record_type_declaration_of_the_wrong_form_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        RecordType(*args)


def test_a_package_spec_name_is_accepted():
    declared = RecordType("ministry_land.specs:parcels/parcel.toml", "json", "person_attributes")
    assert declared.subject is None


def test_a_malformed_record_types_table_fails_when_the_class_is_made():
    with pytest.raises(TypeError, match=r"Broken\.record_types\['x'\] must be a RecordType"):

        class Broken(Connector):
            record_types: ClassVar[Mapping[str, Any]] = {"x": ("spec", "json", "income")}

    with pytest.raises(TypeError, match="record type 'Bad-Type' must be lower-case"):

        class BadKey(Connector):
            record_types: ClassVar[Mapping[str, Any]] = {
                "Bad-Type": RecordType("gis_area", "json", "area")
            }


def test_record_types_are_read_only_and_inherited():
    class Child(GoodPartner):
        pass

    assert dict(Child.record_types) == dict(GoodPartner.record_types)
    with pytest.raises(TypeError):
        GoodPartner.record_types["new"] = RecordType("gis_area", "json", "area")  # type: ignore[index]


def test_a_worker_process_routes_the_instances_of_the_connectors_file(
    fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """A separate ``srhub worker ingest`` reads the connector tables the hub reads
    (``SRHUB_CONNECTORS_FILE``); an instance it cannot route is reported at start and left
    out, the others are routed."""
    from hub.assembly import build_worker
    from hub.runtime import HubRuntime
    from hub.settings import load_settings

    tables = tmp_path / "connectors.toml"
    tables.write_text(
        '[connectors.tax_north]\nkind = "tax"\n\n[connectors.odd]\nkind = "bad_partner"\n'
        '\n[connectors.gis_off]\nkind = "gis"\nenabled = false\n',
        "utf-8",
    )
    monkeypatch.setenv("SRHUB_CONNECTORS_FILE", str(tables))
    monkeypatch.setenv("SRHUB_DATA_DIR", str(tmp_path / "var"))
    runtime = HubRuntime(load_settings())
    try:
        worker = build_worker("ingest", runtime)  # as `srhub worker ingest` builds it
    finally:
        runtime.close()
    routes = worker.handlers.resolve("x.y").func.routes  # type: ignore[union-attr]
    assert "odd.typo" not in routes and "gis_off.location" not in routes
    assert {"tax_north.income_row", "good_partner.fact"} <= set(routes)
    assert set(BUILT_IN) <= set(routes)
    # The configured instance, and the plugin under its own name, each reported once.
    refused = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert {m.split("'")[1] for m in refused} == {"odd", "bad_partner"}
    assert all(m.startswith("ingest: not routed: connector instance '") for m in refused)
    assert len(refused) == 2 * 5  # five problems of the bad declaration, for each
