"""Loading mapping specs: read the file, check it against ``spec_schema.json`` and for
meaning, and build the ``Spec``.

A faulty spec fails at load time with every fault and its JSON path in the file, so an author
fixes them in one go and a broken spec never reaches a record. Specs are found by name: the
built-in ones under ``mappings/specs``, a plugin's own as ``"<package>:<relative/path>.toml"``
(``mappings.spec_names``), read with ``importlib.resources`` from wherever the package is
installed. A plugin's spec uses the same transforms, hooks and code lists as the built-in ones.
"""

from __future__ import annotations

import json
import tomllib
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path as FilePath
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from mappings import hooks, transforms
from mappings.paths import Filter, Key, Path, PathSyntaxError, parse
from mappings.results import SpecError, SpecNotFound
from mappings.schema_check import fast_validator
from mappings.spec import Binding, FieldRule, Spec, TransformStep
from mappings.spec_names import package_resource, spec_name_problem

SPECS_PACKAGE = "mappings.specs"


@cache
def _spec_validator() -> Draft202012Validator:
    schema = json.loads(
        resources.files("mappings").joinpath("spec_schema.json").read_text(encoding="utf-8")
    )
    return Draft202012Validator(schema)


def _spec_message(error: ValidationError) -> str:
    keyword = error.validator
    where = error.json_path
    if keyword == "oneOf":
        if where.endswith(".from"):
            return "must be a path or a list of paths"
        if ".transforms[" in where:
            return "a transform is a name or a table with a 'name'"
        if where.startswith("$.fields["):
            return "a field needs exactly one of 'from', 'const' or 'hook'"
        if where.startswith("$.bindings."):
            return "a binding needs exactly one of 'from' or 'hook'"
    if keyword == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        given = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(set(given) - set(allowed))
        return f"unknown key(s) {', '.join(extra)}; allowed: {', '.join(allowed)}"
    if keyword == "required":
        return str(error.message).replace("property", "key")
    return str(error.message)


def _sources(raw: Any, where: str, problems: list[tuple[str, str]]) -> tuple[Path, ...]:
    if raw is None:
        return ()
    texts = [raw] if isinstance(raw, str) else list(raw)
    parsed = []
    for index, text in enumerate(texts):
        try:
            parsed.append(parse(text))
        except PathSyntaxError as exc:
            at = where if isinstance(raw, str) else f"{where}[{index}]"
            problems.append((at, str(exc)))
    return tuple(parsed)


def _transform_steps(
    raw: list[Any], where: str, problems: list[tuple[str, str]]
) -> tuple[TransformStep, ...]:
    steps = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            name, args = item, {}
        else:
            name, args = item["name"], {k: v for k, v in item.items() if k != "name"}
        for message in transforms.check_arguments(name, args):
            problems.append((f"{where}[{index}]", message))
        steps.append(TransformStep(name, args))
    return tuple(steps)


def _target(text: str, where: str, problems: list[tuple[str, str]]) -> Path | None:
    try:
        path = parse(text, allow_root=False)
    except PathSyntaxError as exc:
        problems.append((where, str(exc)))
        return None
    if path.root is not None or not path.is_simple or not isinstance(path.steps[-1], Key):
        problems.append(
            (where, "a target is dotted keys and [field=value] filters, ending in a key")
        )
        return None
    for step in path.steps:
        if isinstance(step, Filter) and (
            len(step.key.steps) != 1 or not isinstance(step.key.steps[0], Key) or step.negate
        ):
            problems.append((where, "a target filter must be [field=value] on one field"))
            return None
    return path


def build_spec(data: Any, file: str) -> Spec:
    """Check ``data`` (a parsed spec file) and build the ``Spec``.

    ``SpecError`` lists every fault with its JSON path in the file: schema breaks first, then
    unparseable paths, unknown transforms/hooks/code lists, bad arguments, undefined bindings.
    """
    problems: list[tuple[str, str]] = [
        (error.json_path, _spec_message(error))
        for error in sorted(_spec_validator().iter_errors(data), key=lambda e: e.json_path)
    ]
    if problems:
        raise SpecError(file, problems)
    meta = data["spec"]
    try:
        fast_validator(meta["output_schema"])
    except KeyError:
        problems.append(("$.spec.output_schema", f"no schema {meta['output_schema']!r}"))
    bindings = []
    known: set[str] = set()
    for name, raw in (data.get("bindings") or {}).items():
        where = f"$.bindings.{name}"
        sources = _sources(raw.get("from"), f"{where}.from", problems)
        for path in sources:
            if path.root is not None and path.root not in known:
                problems.append((f"{where}.from", f"binding @{path.root} is not defined before"))
        args = raw.get("args", {})
        if "hook" in raw:
            problems.extend((f"{where}.hook", m) for m in hooks.check_arguments(raw["hook"], args))
        bindings.append(Binding(name, sources, raw.get("hook"), args, raw.get("required", False)))
        known.add(name)
    fields = []
    targets: list[str] = []
    for index, raw in enumerate(data["fields"]):
        where = f"$.fields[{index}]"
        target = _target(raw["target"], f"{where}.target", problems)
        sources = _sources(raw.get("from"), f"{where}.from", problems)
        for path in sources:
            if path.root is not None and path.root not in known:
                problems.append((f"{where}.from", f"binding @{path.root} is not defined"))
        args = raw.get("args", {})
        if "hook" in raw:
            problems.extend((f"{where}.hook", m) for m in hooks.check_arguments(raw["hook"], args))
        steps = _transform_steps(raw.get("transforms", []), f"{where}.transforms", problems)
        for option in ("join", "skip"):
            if option in raw and not raw.get("many"):
                message = f"'{option}' only makes sense with many = true"
                problems.append((f"{where}.{option}", message))
        text = raw["target"]
        for other in targets:
            if (
                text == other
                or text.startswith((other + ".", other + "["))
                or other.startswith((text + ".", text + "["))
            ):
                problems.append(
                    (
                        f"{where}.target",
                        f"overlaps the target {other!r} of a field "
                        "before; give alternatives as a list in 'from'",
                    )
                )
        targets.append(text)
        known_steps = [transforms.TRANSFORMS.get(s.name) for s in steps]
        sensitive = raw.get("sensitive", False) or any(t and t.sensitive for t in known_steps)
        if target is not None:
            fields.append(
                FieldRule(
                    target,
                    sources,
                    raw.get("const"),
                    raw.get("hook"),
                    args,
                    steps,
                    raw.get("default"),
                    raw.get("required", False),
                    raw.get("many", False),
                    raw.get("join"),
                    sensitive,
                    raw.get("skip", 0),
                )
            )
    if problems:
        raise SpecError(file, problems)
    return Spec(
        name=meta["name"],
        version=meta["version"],
        description=meta.get("description", ""),
        source=meta.get("source"),
        record_type=meta.get("record_type"),
        output_schema=meta["output_schema"],
        bindings=tuple(bindings),
        fields=tuple(fields),
        file=file,
    )


def _parse_text(text: str, file: str) -> Any:
    try:
        if file.endswith(".toml"):
            return tomllib.loads(text)
        if file.endswith(".json"):
            return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(file, [("$", f"not readable: {exc}")]) from None
    raise SpecError(file, [("$", "a spec file must end in .toml or .json")])


def load_spec_file(path: str | FilePath) -> Spec:
    """Load and check a spec from a file of one's own (``.toml`` or ``.json``)."""
    file = str(path)
    return build_spec(_parse_text(FilePath(path).read_text(encoding="utf-8"), file), file)


def available_specs() -> list[str]:
    """Names of the specs shipped under ``mappings/specs``."""
    return sorted(
        entry.name.rsplit(".", 1)[0]
        for entry in resources.files(SPECS_PACKAGE).iterdir()
        if entry.name.endswith((".toml", ".json"))
    )


@cache
def load_spec(name: str) -> Spec:
    """The spec called ``name``, checked and cached: a built-in name
    (``mappings/specs/<name>.toml``) or a plugin's ``"<package>:<relative/path>.toml"``.

    ``SpecNotFound`` (a ``KeyError``) says what was looked for and what is known; ``SpecError``
    lists every fault of a file that is there.
    """
    problem = spec_name_problem(name)
    if problem is not None:
        raise SpecNotFound(f"mapping spec {name!r}: {problem}")
    located = package_resource(name)
    if located is not None:
        package, parts = located
        return _checked(_package_file(name, package, parts), name, parts[-1].rsplit(".", 1)[0])
    folder = resources.files(SPECS_PACKAGE)
    for suffix in (".toml", ".json"):
        entry = folder / f"{name}{suffix}"
        if entry.is_file():
            return _checked(entry, f"mappings/specs/{name}{suffix}", name)
    raise SpecNotFound(
        f"no mapping spec {name!r}; available: {', '.join(available_specs())}; "
        "a plugin's own is named '<package>:<relative/path>.toml'"
    )


def _package_file(name: str, package: str, parts: tuple[str, ...]) -> Traversable:
    """The file of a package spec, or ``SpecNotFound`` saying whether the package or the file
    is missing."""
    try:
        root = resources.files(package)
    except (ModuleNotFoundError, TypeError) as exc:
        reason = "is not installed" if isinstance(exc, ModuleNotFoundError) else "is no package"
        raise SpecNotFound(f"no mapping spec {name!r}: {package!r} {reason}") from None
    entry = root.joinpath(*parts)
    if not entry.is_file():
        raise SpecNotFound(f"no mapping spec {name!r}: package {package!r} has no such file")
    return entry


def _checked(entry: Traversable, file: str, expected_name: str) -> Spec:
    """Build the spec in ``entry``; its ``spec.name`` must be the file's own name, so a spec is
    found by the name it declares."""
    spec = build_spec(_parse_text(entry.read_text(encoding="utf-8"), file), file)
    if spec.name != expected_name:
        raise SpecError(file, [("$.spec.name", f"must be {expected_name!r}, the file's name")])
    return spec
