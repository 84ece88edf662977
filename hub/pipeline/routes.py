"""Ingest routes, built from the connectors: routing key -> extractor, mapping spec, applier.

A raw record arrives on ``sr.inbound`` as ``<instance>.<record_type>``. Each connector class
declares its record types (``connectors.base.RecordType``: spec, extractor and applier by
name), so the routes are not a list the hub keeps: every configured instance of a connector
kind gets its kind's record types under its own name. Two tax authorities configured as
``[connectors.tax]`` and ``[connectors.tax_north]`` (``kind = "tax"``) both ingest, and a
ministry's plugin brings its own record types and spec without a change here.

Every name is resolved when the table is built — at start. An unknown extractor, applier or
spec, a spec that does not load, or a spec writing another schema than its applier takes is a
problem naming the connector instance, the record type and the names that are known;
``build_routes`` refuses the table with every problem, and a running process leaves such an
instance out (logged at ERROR), as the connector host refuses to run it. Nothing is left to
fail at the first message.

Besides the configured instances, every installed connector plugin is routed under its own
name (``tax.income_row``), so a worker with no connector tables routes the built-ins as before.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connectors.base.contract import Connector
from connectors.base.errors import ConnectorNotFound
from connectors.base.records import RecordType
from connectors.base.registry import available_connectors, load_connector_class
from hub.pipeline.apply import APPLIERS, Applier, IngestContext
from hub.pipeline.extract import EXTRACTORS, Extractor
from mappings.engine import SpecError, SpecNotFound, load_spec
from registry_core.service import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """How the ingest handles one routing key.

    ``kind`` is the connector kind (the class's ``kind``): the source system of every fact the
    record asserts, so all instances of one kind rank alike in source precedence.
    """

    instance: str
    record_type: str
    kind: str
    spec: str
    extract: Extractor
    applier: Applier
    subject: str | None = None  # the person the record is about: where its notes are kept

    @property
    def key(self) -> str:
        return f"{self.instance}.{self.record_type}"

    def apply(self, registry: Registry, record: dict[str, Any], ctx: IngestContext) -> str:
        """Run the applier with the route's connector kind as the record's source system."""
        return self.applier(registry, record, replace(ctx, source_system=self.kind))


class RouteError(ValueError):
    """The routes cannot be built; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"ingest routes refused ({len(problems)} problem(s)): " + "; ".join(problems)
        )


def _known(names: Mapping[str, Any]) -> str:
    return ", ".join(sorted(names))


def _route(
    instance: str, plugin: str, kind: str, record_type: str, declared: RecordType
) -> tuple[Route | None, list[str]]:
    """The route of one declared record type, or the problems that stop it."""
    where = f"connector instance {instance!r} (kind {plugin!r}), record type {record_type!r}"
    problems = []
    extract = EXTRACTORS.get(declared.extract)
    if extract is None:
        problems.append(
            f"{where}: unknown extractor {declared.extract!r}; known: {_known(EXTRACTORS)}"
        )
    applier = APPLIERS.get(declared.apply)
    if applier is None:
        problems.append(f"{where}: unknown applier {declared.apply!r}; known: {_known(APPLIERS)}")
    try:
        spec = load_spec(declared.spec)
    except (SpecNotFound, SpecError) as exc:
        problems.append(f"{where}: {exc}")
    else:
        if applier is not None and spec.output_schema != applier.schema:
            problems.append(
                f"{where}: mapping spec {declared.spec!r} writes {spec.output_schema}, but "
                f"applier {declared.apply!r} takes {applier.schema}"
            )
    if problems or extract is None or applier is None:
        return None, problems
    route = Route(
        instance, record_type, kind, declared.spec, extract, applier.apply, declared.subject
    )
    return route, []


def instance_routes(instance: str, plugin: str) -> dict[str, Route]:
    """The routes of one connector instance of plugin ``plugin``; ``RouteError`` listing
    every problem (the plugin cannot be loaded, or names that are not known)."""
    try:
        connector_class: type[Connector] = load_connector_class(plugin)
    except ConnectorNotFound as exc:
        raise RouteError([f"connector instance {instance!r}: {exc}"]) from None
    kind = str(getattr(connector_class, "kind", None) or plugin)
    routes: dict[str, Route] = {}
    problems: list[str] = []
    for record_type, declared in connector_class.record_types.items():
        route, found = _route(instance, plugin, kind, record_type, declared)
        problems.extend(found)
        if route is not None:
            routes[route.key] = route
    if problems:
        raise RouteError(problems)
    return routes


def configured_instances(
    configs: Mapping[str, Mapping[str, Any]] | None, *, defaults: bool = True
) -> dict[str, str]:
    """Instance name -> plugin name: every installed plugin under its own name (``defaults``),
    then each enabled ``[connectors.<name>]`` table (its ``kind``, else its name)."""
    instances = {name: name for name in available_connectors()} if defaults else {}
    for name, config in (configs or {}).items():
        if config.get("enabled") is False:
            continue
        instances[name] = str(config.get("kind") or name)
    return instances


def routable(
    configs: Mapping[str, Mapping[str, Any]] | None = None, *, defaults: bool = True
) -> tuple[dict[str, Route], list[str]]:
    """The routes of every instance that can be routed, and the problems of those that
    cannot (each instance whole: one with a bad record type gets no route at all, as the
    connector host does not run it)."""
    routes: dict[str, Route] = {}
    problems: list[str] = []
    for instance, plugin in configured_instances(configs, defaults=defaults).items():
        try:
            routes.update(instance_routes(instance, plugin))
        except RouteError as exc:
            problems.extend(exc.problems)
    return routes, problems


def build_routes(
    configs: Mapping[str, Mapping[str, Any]] | None = None, *, defaults: bool = True
) -> dict[str, Route]:
    """The ingest's routing table for these connector tables; ``RouteError`` with every
    problem of every instance."""
    routes, problems = routable(configs, defaults=defaults)
    if problems:
        raise RouteError(problems)
    return routes


def connector_tables(path: Path) -> dict[str, dict[str, Any]]:
    """The ``[connectors.<name>]`` tables of a connectors file (none for an empty path)."""
    if str(path) in ("", "."):
        return {}
    with path.open("rb") as fh:
        tables = tomllib.load(fh).get("connectors", {})
    return {str(name): dict(table) for name, table in tables.items()}


def default_routes() -> dict[str, Route]:
    """Every installed plugin routed under its own name (what the built-ins were before
    instances could be configured): for tests and tools that run no connector host."""
    return build_routes(None)


def routes_for(configs: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Route]:
    """The routes an ingest worker serves for these connector tables (every installed plugin
    under its own name too). An instance that cannot be routed is left out and reported at
    ERROR, once, now: the connector host refuses to run it for the same reason."""
    routes, problems = routable(configs)
    for problem in problems:
        log.error("ingest: not routed: %s", problem)
    return routes
