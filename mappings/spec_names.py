"""How a mapping spec is named: a built-in name, or a file inside a plugin's own package.

``"tax_income_row"`` is ``mappings/specs/tax_income_row.toml``; ``"ministry_land.specs:parcel.
toml"`` is the file ``parcel.toml`` of the installed package ``ministry_land.specs``, read with
``importlib.resources`` (so it works from a wheel, a zip or a source tree alike). A plugin then
ships its mapping beside its connector and the hub needs no copy of it. The rule lives here so
the connector contract (``connectors.base.RecordType``) and the loader agree on it.
"""

from __future__ import annotations

import re

BUILTIN_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_PACKAGE = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_RESOURCE = r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.(?:toml|json)"
PACKAGE_NAME_RE = re.compile(rf"^(?P<package>{_PACKAGE}):(?P<resource>{_RESOURCE})$")


def spec_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a spec, or None when its form is right (the file may still be
    missing: the loader says so)."""
    if not isinstance(name, str):
        return "a spec name is a string"
    if BUILTIN_NAME_RE.match(name):
        return None
    found = PACKAGE_NAME_RE.match(name)
    if found is None:
        return (
            "must be a built-in spec name (snake_case) or '<package>:<relative/path>.toml' "
            "naming a file of an installed package"
        )
    if any(part in ("", ".", "..") for part in found["resource"].split("/")):
        return "the path inside the package must be relative and stay inside it"
    return None


def package_resource(name: str) -> tuple[str, tuple[str, ...]] | None:
    """(package, path parts) of a package spec name; None for a built-in name."""
    found = PACKAGE_NAME_RE.match(name)
    if found is None:
        return None
    return found["package"], tuple(found["resource"].split("/"))
