"""Named code hooks: what a spec cannot say in paths and transforms.

Kept small on purpose: a hook is only for navigation that needs logic, such as following a FHIR
reference that may be written three different ways. Each hook takes the run's ``Context`` and
the arguments the spec gives, and returns the ``Located`` value(s) it found (or None), so the
engine can still name the exact source field in an error. A hook raises ``HookProblem`` for a
record it cannot make sense of.

Specs name hooks in ``[bindings.<name>]`` (``hook = "fhir_section_entry"``) or in a field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from mappings.context import Context, HookProblem
from mappings.paths import Located, PathSyntaxError, parse
from mappings.transforms import Param

HookResult = Located | list[Located] | None


@dataclass(frozen=True)
class Hook:
    name: str
    fn: Callable[..., HookResult]
    params: dict[str, Param] = field(default_factory=dict)
    path_params: tuple[str, ...] = ()  # parameters holding paths, parsed when a spec loads
    doc: str = ""


HOOKS: dict[str, Hook] = {}


def hook(
    name: str, params: dict[str, Param] | None = None, path_params: tuple[str, ...] = ()
) -> Callable[[Callable[..., HookResult]], Callable[..., HookResult]]:
    """Register ``fn`` as hook ``name``; a deployment can add its own the same way."""

    def register(fn: Callable[..., HookResult]) -> Callable[..., HookResult]:
        HOOKS[name] = Hook(name, fn, params or {}, path_params, (fn.__doc__ or "").strip())
        return fn

    return register


def check_arguments(name: str, args: dict[str, Any]) -> list[str]:
    """Problems with a spec's use of hook ``name`` (empty when it is fine)."""
    spec = HOOKS.get(name)
    if spec is None:
        return [f"unknown hook {name!r}; known: {', '.join(sorted(HOOKS))}"]
    problems = []
    for arg, value in args.items():
        param = spec.params.get(arg)
        if param is None:
            problems.append(f"hook {name!r} has no parameter {arg!r}")
        elif not isinstance(value, param.types):
            kinds = " or ".join(t.__name__ for t in param.types)
            problems.append(f"hook {name!r}: {arg!r} must be {kinds}")
        elif param.choices and value not in param.choices:
            problems.append(f"hook {name!r}: {arg!r} must be one of {', '.join(param.choices)}")
        elif arg in spec.path_params:
            for path in value if isinstance(value, list) else [value]:
                try:
                    parse(path)
                except PathSyntaxError as exc:
                    problems.append(f"hook {name!r}: {arg!r}: {exc}")
    problems.extend(
        f"hook {name!r} needs parameter {arg!r}"
        for arg, param in spec.params.items()
        if param.required and arg not in args
    )
    return problems


def call(name: str, context: Context, args: dict[str, Any]) -> HookResult:
    return HOOKS[name].fn(context, **args)


MAX_NOTES = 50


def note(context: Context, text: str, path: str = "$") -> None:
    """Remember that a part of the record was present but could not be used.

    Notes are about the *shape* of a record (section codes, resource types, references),
    never its personal values; a spec's last field hands them to the mapped record (see the
    ``opencrvs_ignored`` hook).
    """
    notes: list[Located] = context.cache.setdefault("notes", [])
    if len(notes) < MAX_NOTES and all(n.value != text for n in notes):
        notes.append(Located(text[:300], path))


# ---------------------------------------------------------------------------- FHIR references

_HISTORY = re.compile(r"/_history/[^/]+$")
_TYPED = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")


def reference_keys(reference: str) -> list[tuple[str, str]]:
    """The ways a reference may name an entry, most specific first.

    ``urn:uuid:<id>``, ``Patient/<id>``, ``/fhir/Patient/<id>/_history/1`` and
    ``https://host/fhir/Patient/<id>`` all occur in real civil-registry bundles.
    """
    ref = reference.strip()
    keys = [("url", ref)]
    if ref.startswith("urn:uuid:"):
        keys.append(("id", ref.removeprefix("urn:uuid:")))
        return keys
    match = _TYPED.search(_HISTORY.sub("", ref))
    if match:
        # Typed: only an entry of that type will do (no fallback to a bare id of another type).
        keys.append(("typed", f"{match.group(1)}/{match.group(2)}"))
    return keys


def _entry_index(context: Context) -> dict[tuple[str, str], Located | None]:
    """fullUrl / Type/id / id -> entry resource; an id shared by two entries maps to None."""
    cached = context.cache.get("fhir_entries")
    if cached is not None:
        return cast(dict[tuple[str, str], Located | None], cached)
    index: dict[tuple[str, str], Located | None] = {}
    entries = context.record.get("entry") if isinstance(context.record, dict) else None
    for position, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        resource = entry["resource"]
        located = Located(resource, f"$.entry[{position}].resource")
        keys: list[tuple[str, str]] = []
        if isinstance(entry.get("fullUrl"), str):
            keys.extend(reference_keys(entry["fullUrl"]))
        kind, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(kind, str) and isinstance(rid, str):
            keys.extend([("typed", f"{kind}/{rid}"), ("id", rid)])
        for key in dict.fromkeys(keys):
            index[key] = None if key in index and index[key] != located else located
    context.cache["fhir_entries"] = index
    return index


def resolve_reference(context: Context, reference: Located) -> Located:
    """The bundle entry a reference points at, however it is written."""
    if not isinstance(reference.value, str):
        raise HookProblem(reference.path, "is not a reference (expected text)")
    index = _entry_index(context)
    for key in reference_keys(reference.value):
        found = index.get(key)
        if found is not None:
            return found
    raise HookProblem(reference.path, "points at no entry of the bundle")


def _composition(context: Context) -> Located:
    found = context.cache.get("fhir_composition")
    if found is None:
        found = context.first("$.entry[resource.resourceType=Composition].resource")
        if found is None:
            raise HookProblem("$.entry", "the bundle has no Composition entry")
        context.cache["fhir_composition"] = found
    return found


def _section_reference(context: Context, section: str) -> Located | None:
    composition = _composition(context)
    return context.first(
        f"{composition.path}.section[code.coding[*].code={section}].entry[0].reference"
    )


@hook("fhir_section_entry", {"section": Param((str,), required=True)})
def fhir_section_entry(context: Context, section: str) -> HookResult:
    """The resource a Composition section (e.g. ``child-details``) refers to, or None."""
    reference = _section_reference(context, section)
    if reference is None:
        return None
    return resolve_reference(context, reference)


@hook(
    "fhir_reference",
    {"reference": Param((str,), required=True), "optional": Param((bool,))},
    path_params=("reference",),
)
def fhir_reference(context: Context, reference: str, optional: bool = False) -> HookResult:
    """The entry the reference at path ``reference`` points at (None if there is none).

    ``optional``: a reference to an entry the bundle does not hold (a partner trimmed it away)
    reads as absent, with a note, instead of failing the record.
    """
    found = context.first(reference)
    if found is None:
        return None
    if not optional:
        return resolve_reference(context, found)
    try:
        return resolve_reference(context, found)
    except HookProblem as exc:
        note(context, f"{reference}: {exc.reason}; read as absent", exc.path)
        return None


# ---------------------------------------------------------------------------- DCI places

_AREA_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,63}")  # standards' admin_area_code
# Where a DCI place object may name its admin area, most specific first: an explicit code, the
# place it lies in (schema.org ``containedInPlace``, the CRVS example's ``contained_in_place``),
# its address, then the address fields of the registry core's openid_Address used as a place.
_PLACE_STEPS = (
    "admin_area_code",
    "contained_in_place",
    "address",
    "sub_region_code",
    "region_code",
)
_MAX_PLACE_DEPTH = 3


def _area_code(found: Located, depth: int = 0) -> Located | None:
    value = found.value
    if isinstance(value, str):
        text = value.strip().upper()
        return Located(text, found.path) if _AREA_CODE.fullmatch(text) else None
    if not isinstance(value, dict) or depth >= _MAX_PLACE_DEPTH:
        return None
    for key in _PLACE_STEPS:
        if key in value and not isinstance(value[key], list):
            hit = _area_code(Located(value[key], f"{found.path}.{key}"), depth + 1)
            if hit is not None:
                return hit
    return None


@hook("dci_place_code", {"place": Param((str,), required=True)}, path_params=("place",))
def dci_place_code(context: Context, place: str) -> HookResult:
    """The admin-area code of a DCI ``birth_place`` / ``death_place``, or None.

    The CRVS API gives a place as text or as an object (name, geo, address, the place it lies
    in). Text counts only when it is a code; an object is searched for one (see
    ``_PLACE_STEPS``). A place without a code is no error: the record maps without it, and the
    place itself stays in the raw record the hub keeps.
    """
    found = context.first(place)
    return _area_code(found) if found is not None else None


# OpenCRVS's own ways of writing a bundle (roles, places, residences) live in their module;
# importing it registers its hooks.
from mappings import opencrvs as _opencrvs  # noqa: E402,F401

# A form's questions beyond the core ones, as attributes (intake forms); importing registers it.
from mappings import xform_questions as _xform_questions  # noqa: E402,F401
