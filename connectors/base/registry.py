"""Finding connector plugins: entry points in group ``srhub.connectors``, plus the built-ins.

A ministry ships its own connector as a separate package that declares, in its pyproject::

    [project.entry-points."srhub.connectors"]
    land_registry = "ministry_land.connector:LandRegistryConnector"

and the hub finds it after ``pip install``; the class's ``record_types`` tell the hub how to
ingest what every configured instance of it publishes. The built-ins are also listed here in
code, so a source checkout works before the project is (re)installed; an installed entry point
of the same name wins. Plugins are imported only when asked for, and one that fails to import
is reported by name instead of taking the others down.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from connectors.base.contract import Connector, ConnectorContext
from connectors.base.errors import ConnectorNotFound

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "srhub.connectors"

# name -> "module:Class" of the connectors shipped in this repository. Keep in step with the
# [project.entry-points."srhub.connectors"] table of pyproject.toml.
BUILTIN_CONNECTORS: dict[str, str] = {
    # Mirrors [project.entry-points."srhub.connectors"] in pyproject.toml, so a checkout works
    # before it is (re)installed.
    "national_id": "connectors.national_id:NationalIdConnector",
    "civil_registry": "connectors.civil_registry:CivilRegistryConnector",
    "tax": "connectors.tax:TaxFileConnector",
    "gis": "connectors.gis:GisConnector",
    "programs": "connectors.programs:ProgramsConnector",
}


def available_connectors() -> dict[str, str]:
    """Every known connector name and the ``module:attr`` it loads from."""
    found = dict(BUILTIN_CONNECTORS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found and found[entry.name] != entry.value:
            log.warning(
                "connector %s: installed plugin %s replaces the built-in %s",
                entry.name,
                entry.value,
                found[entry.name],
            )
        found[entry.name] = entry.value
    return dict(sorted(found.items()))


def _import(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{target!r} is not of the form 'module:Class'")
    obj: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def load_connector_class(name: str) -> type[Connector]:
    """The connector class registered as ``name``; ``ConnectorNotFound`` saying why not."""
    known = available_connectors()
    target = known.get(name)
    if target is None:
        listing = ", ".join(known) or "none"
        raise ConnectorNotFound(f"no connector named {name!r}; known connectors: {listing}")
    try:
        obj = _import(target)
    except Exception as exc:
        raise ConnectorNotFound(
            f"connector {name!r} ({target}) could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Connector)):
        raise ConnectorNotFound(
            f"connector {name!r} ({target}) is not a subclass of connectors.base.Connector"
        )
    return obj


def load_connectors(*, strict: bool = False) -> dict[str, type[Connector]]:
    """Every loadable connector class by name.

    A plugin that fails to load is logged and left out, so one broken package does not stop
    the hub; with ``strict=True`` (tests, ``srhub`` checks) the first failure is raised.
    """
    loaded: dict[str, type[Connector]] = {}
    for name in available_connectors():
        try:
            loaded[name] = load_connector_class(name)
        except ConnectorNotFound as problem:
            if strict:
                raise
            log.error("%s", problem)
    return loaded


def create_connector(settings: Mapping[str, Any], context: ConnectorContext) -> Connector:
    """Build the connector configured as ``[connectors.<context.name>]``.

    The table's ``kind`` names the plugin (default: the connector's own name), so one plugin
    can run twice under two names (two tax authorities) with different settings.
    """
    plugin = str(settings.get("kind") or context.name)
    return load_connector_class(plugin)(settings, context)
