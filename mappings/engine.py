"""The mapping engine: load a spec, check it, and apply it to partner records.

Why declarative: each partner's vocabulary lives in one data file a reviewer can read next to
the partner's documentation, and the same engine gives every partner the same error reporting.

A run collects *every* problem of a record (not just the first), each naming the source field
path (``$.entry[2].resource.birthDate``), the canonical target and the reason, so a dead-letter
entry tells an operator exactly what to fix at the partner. The output is then validated against
the spec's schema under ``standards/schemas``; a violation there is reported at the source field
the value came from. Values of identifiers never appear in messages.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path as FilePath
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from mappings import hooks, transforms
from mappings.context import Context, HookProblem
from mappings.paths import (
    Filter,
    Key,
    Located,
    Path,
    PathSyntaxError,
    describe_missing,
    is_blank,
    parse,
)
from mappings.results import (
    IdentifierReview,
    MappingError,
    MappingResult,
    Note,
    Problem,
    SpecError,
)
from mappings.schema_check import check as schema_violations
from mappings.schema_check import fast_validator
from standards.identifiers import IdentifierProfile, default_profile

__all__ = [
    "IdentifierReview",
    "MappingError",
    "MappingResult",
    "Note",
    "Problem",
    "Spec",
    "SpecError",
    "available_specs",
    "build_spec",
    "load_spec",
    "load_spec_file",
    "map_record",
]

SPECS_PACKAGE = "mappings.specs"
CONSTANT = "(constant)"
MAX_SHOWN = 60


# ---------------------------------------------------------------------------- spec model


@dataclass(frozen=True)
class TransformStep:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Binding:
    name: str
    sources: tuple[Path, ...]
    hook: str | None
    args: dict[str, Any]
    required: bool


@dataclass(frozen=True)
class FieldRule:
    target: Path
    sources: tuple[Path, ...]
    const: Any
    hook: str | None
    args: dict[str, Any]
    transforms: tuple[TransformStep, ...]
    default: Any
    required: bool
    many: bool
    join: str | None
    sensitive: bool
    skip: int = 0

    def depends_on(self) -> set[str]:
        return {p.root for p in self.sources if p.root is not None}

    def looked_for(self, context: Context) -> str | None:
        """Where the value was expected, for a 'missing' message."""
        if not self.sources:
            return f"(hook {self.hook})" if self.hook else None
        path = self.sources[0]
        start = context.start(path)
        return describe_missing(start.path if start else f"@{path.root}", path)


@dataclass(frozen=True)
class Spec:
    name: str
    version: int
    description: str
    source: str | None
    record_type: str | None
    output_schema: str
    bindings: tuple[Binding, ...]
    fields: tuple[FieldRule, ...]
    file: str

    # ------------------------------------------------------------------ applying

    def apply(self, record: Any, identifiers: IdentifierProfile | None = None) -> dict[str, Any]:
        """The canonical record for ``record``, or ``MappingError`` listing every problem."""
        return self.map(record, identifiers).record

    def map(self, record: Any, identifiers: IdentifierProfile | None = None) -> MappingResult:
        """Like ``apply``, also returning where each output value came from and the notes.

        ``identifiers`` is the country profile the ``identifier`` transforms check against
        (default: the built-in one). A bad identifier of someone the record only mentions is
        dropped with a note; a bad identifier of the subject (``subject = true``, or a required
        field) raises ``IdentifierReview`` when nothing else is wrong with the record.
        """
        if not isinstance(record, dict):
            raise MappingError(
                self.name,
                self.version,
                [Problem("$", None, "type", "the source record must be a JSON object")],
            )
        run = _Run(self, Context(record), identifiers or default_profile())
        run.bind()
        for rule in self.fields:
            run.field(rule)
        run.check_schema()
        run.escalate_needed_drops()
        broken = [p for p in run.problems if not run.follows_from_review(p)]
        if broken:
            raise MappingError(self.name, self.version, run.problems + run.review)
        if run.review:
            raise IdentifierReview(
                self.name, self.version, run.review, run.output, tuple(run.notes), run.refused
            )
        return MappingResult(run.output, run.provenance, tuple(run.notes))


@dataclass
class _Run:
    spec: Spec
    context: Context
    identifiers: IdentifierProfile
    output: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    review: list[Problem] = field(default_factory=list)  # the subject's identifiers refused
    refused: list[dict[str, Any]] = field(default_factory=list)  # their values, for review
    notes: list[Note] = field(default_factory=list)  # other identifiers dropped
    dropped: list[tuple[Note, dict[str, Any]]] = field(default_factory=list)  # ...and values
    review_targets: set[str] = field(default_factory=set)
    failed_bindings: set[str] = field(default_factory=set)
    failed_targets: set[str] = field(default_factory=set)
    expected: dict[str, FieldRule] = field(default_factory=dict)

    def bind(self) -> None:
        for binding in self.spec.bindings:
            found: Located | None = None
            try:
                if binding.hook is not None:
                    result = hooks.call(binding.hook, self.context, binding.args)
                    found = (
                        result[0]
                        if isinstance(result, list) and result
                        else (result if isinstance(result, Located) else None)
                    )
                else:
                    found = self._first(binding.sources)
            except HookProblem as exc:
                self.problems.append(Problem(exc.path, None, f"hook:{binding.hook}", exc.reason))
                self.failed_bindings.add(binding.name)
                continue
            except Exception as exc:  # a hook bug or a record shape nobody foresaw
                self.problems.append(self._crash(f"hook:{binding.hook}", None, exc))
                self.failed_bindings.add(binding.name)
                continue
            if found is None:
                self.failed_bindings.add(binding.name)
                if binding.required:
                    if binding.sources:
                        where, why = describe_missing("$", binding.sources[0]), ""
                    else:
                        shown = ", ".join(f"{k}={v}" for k, v in binding.args.items())
                        where, why = "$", f" (hook {binding.hook}({shown}) found nothing)"
                    self.problems.append(
                        Problem(
                            where, f"@{binding.name}", "required", f"is required but missing{why}"
                        )
                    )
                continue
            self.context.bindings[binding.name] = found

    def _first(self, sources: tuple[Path, ...]) -> Located | None:
        for path in sources:
            hit = self.context.first(path)
            if hit is not None:
                return hit
        return None

    def _lazy(self, sources: tuple[Path, ...]) -> Iterator[Located]:
        """The hits of the first source that has any, read only as far as they are used."""
        for path in sources:
            hits = self.context.iter(path)
            first = next(hits, None)
            if first is not None:
                yield first
                yield from hits
                return

    def _all(self, sources: tuple[Path, ...]) -> list[Located]:
        for path in sources:
            hits = self.context.read(path)
            if hits:
                return hits
        return []

    def _crash(self, rule: str, target: str | None, exc: Exception) -> Problem:
        return Problem(
            None, target, rule, f"could not be read ({type(exc).__name__}); check the spec/hook"
        )

    def field(self, rule: FieldRule) -> None:
        target = rule.target.text
        required = {b.name for b in self.spec.bindings if b.required}
        if rule.depends_on() & self.failed_bindings & required:
            # The missing binding is reported once; its fields would only repeat it.
            self.failed_targets.add(target)
            return
        self.expected[target] = rule
        try:
            hits = self._gather(rule)
        except HookProblem as exc:
            self.problems.append(Problem(exc.path, target, f"hook:{rule.hook}", exc.reason))
            self.failed_targets.add(target)
            return
        except Exception as exc:
            self.problems.append(
                self._crash(f"hook:{rule.hook}" if rule.hook else "read", target, exc)
            )
            self.failed_targets.add(target)
            return
        values: list[tuple[Any, str]] = []
        failed = False
        for hit in hits:
            value, ok = self._transform(rule, hit)
            failed |= not ok
            if ok and value is not transforms.MISSING and not is_blank(value):
                values.append((value, hit.path))
            if (values or failed) and not rule.many:
                break
        if failed:
            self.failed_targets.add(target)
            return
        values = values[rule.skip :]
        if not values:
            if rule.default is not None:
                self._set(rule.target, rule.default, CONSTANT)
            elif rule.required:
                self.failed_targets.add(target)
                self.problems.append(
                    Problem(
                        rule.looked_for(self.context), target, "required", "is required but missing"
                    )
                )
            return
        if rule.many and rule.join is not None:
            text = rule.join.join(str(v) for v, _ in values)
            self._set(rule.target, text, values[0][1])
        elif rule.many:
            concrete = self._set(rule.target, [v for v, _ in values], values[0][1])
            for index, (_value, source) in enumerate(values):
                self.provenance[f"{concrete}[{index}]"] = source
        else:
            self._set(rule.target, values[0][0], values[0][1])

    def _gather(self, rule: FieldRule) -> Iterable[Located]:
        if rule.hook is not None:
            result = hooks.call(rule.hook, self.context, rule.args)
            if result is None:
                return []
            hits = result if isinstance(result, list) else [result]
            return [h for h in hits if not is_blank(h.value)]
        if rule.sources:
            # Every hit of the first path that has any: a single field whose first hit trims to
            # nothing falls through to the next hit rather than to an empty field.
            return self._all(rule.sources) if rule.many else self._lazy(rule.sources)
        return [Located(rule.const, CONSTANT)]

    def _transform(self, rule: FieldRule, hit: Located) -> tuple[Any, bool]:
        value = hit.value
        for step in rule.transforms:
            try:
                value = transforms.apply(step.name, value, step.args, self.identifiers)
            except transforms.IdentifierRuleError as exc:
                return self._bad_identifier(rule, step, hit, exc)
            except transforms.TransformError as exc:
                self.problems.append(
                    Problem(
                        hit.path,
                        rule.target.text,
                        f"transform:{step.name}",
                        f"{self._shown(rule, hit.value)} {exc.reason}",
                    )
                )
                return None, False
            except Exception as exc:
                self.problems.append(self._crash(f"transform:{step.name}", rule.target.text, exc))
                return None, False
            if value is transforms.MISSING:
                return value, True
        return value, True

    def _bad_identifier(
        self,
        rule: FieldRule,
        step: TransformStep,
        hit: Located,
        exc: transforms.IdentifierRuleError,
    ) -> tuple[Any, bool]:
        """The subject's identifier (or a required one): the record goes to review. Anyone
        else's: the value is dropped with a note and the record carries on."""
        target = rule.target.text
        kind = f"identifier:{exc.problem.rule}"
        if step.args.get("subject") or rule.required:
            self.review.append(Problem(hit.path, target, kind, f"the value {exc.reason}"))
            self.refused.append({"target": target, "source_path": hit.path, "value": hit.value})
            self.review_targets.add(_strip_indexes(target))
            return None, False
        note = Problem(hit.path, target, kind, f"dropped: the value {exc.reason}")
        self.notes.append(note)
        self.dropped.append((note, {"target": target, "source_path": hit.path, "value": hit.value}))
        return transforms.MISSING, True

    def escalate_needed_drops(self) -> None:
        """A dropped identifier the record cannot do without (the schema now misses the
        person it named, e.g. a mother named by her national ID only) is no longer a note:
        it sends the record to review, like a subject identifier."""
        missing = [
            _strip_indexes(p.target)
            for p in self.problems
            if p.rule.startswith("schema:") and p.target is not None
        ]
        for note, refused in self.dropped:
            target = _strip_indexes(note.target or "")
            if any(target == m or target.startswith(m + ".") for m in missing):
                self.notes.remove(note)
                message = note.message.removeprefix("dropped: ")
                self.review.append(Problem(note.source_path, note.target, note.rule, message))
                self.review_targets.add(target)
                self.refused.append(refused)

    def follows_from_review(self, problem: Problem) -> bool:
        """A schema complaint about a place whose subject identifier was refused: it only
        repeats the review's reason (a required identifier is now missing)."""
        if not problem.rule.startswith("schema:") or problem.target is None:
            return False
        simple = _strip_indexes(problem.target)
        if problem.rule in ("schema:anyOf", "schema:oneOf") and simple in ("", "$"):
            # "needs registration_number or tracking_id": the record lost the one it had.
            return any("." not in t for t in self.review_targets)
        return any(
            failed == simple or failed.startswith(simple + ".") for failed in self.review_targets
        )

    def _shown(self, rule: FieldRule, value: Any) -> str:
        if rule.sensitive:
            return "the value"
        if isinstance(value, str | int | float | bool):
            text = json.dumps(value, ensure_ascii=False)
            return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 4] + '..."'
        return f"the {type(value).__name__}"

    def _set(self, target: Path, value: Any, source: str) -> str:
        node: Any = self.output
        concrete = "$"
        steps = target.steps
        for position, step in enumerate(steps):
            nxt = steps[position + 1] if position + 1 < len(steps) else None
            if isinstance(step, Key):
                concrete += f".{step.name}"
                if nxt is None:
                    node[step.name] = value
                else:
                    node = node.setdefault(step.name, [] if isinstance(nxt, Filter) else {})
            elif isinstance(step, Filter):
                key = step.key.steps[0].name  # type: ignore[union-attr]
                matches = [i for i, item in enumerate(node) if item.get(key) == step.literal]
                if not matches:
                    node.append({key: step.literal})
                    matches = [len(node) - 1]
                index = matches[0]
                concrete += f"[{index}]"
                node = node[index]
        self.provenance[concrete] = source
        return concrete

    def check_schema(self) -> None:
        found = schema_violations(self.spec.output_schema, self.output)
        for violation in found:
            target = violation.path.removeprefix("$.")
            source = self._source_for(violation.path)
            if source is None and violation.rule == "required":
                source = self._looked_for_under(target)
            if self._already_reported(target, violation.rule):
                continue
            self.problems.append(
                Problem(source, target, f"schema:{violation.rule}", violation.message)
            )

    def _looked_for_under(self, target: str) -> str | None:
        """Where the fields that would have filled ``target`` looked (``a | b``)."""
        simple = _strip_indexes(target)
        places = [
            rule.looked_for(self.context)
            for text, rule in self.expected.items()
            if _strip_indexes(text) == simple or _strip_indexes(text).startswith(simple + ".")
        ]
        found = list(dict.fromkeys(p for p in places if p))
        return " | ".join(found) if found else None

    def _source_for(self, output_path: str) -> str | None:
        best: tuple[int, str] | None = None
        for concrete, source in self.provenance.items():
            inside = output_path.startswith((concrete + ".", concrete + "["))
            if (output_path == concrete or inside) and (best is None or len(concrete) > best[0]):
                best = (len(concrete), source)
        return None if best is None or best[1] == CONSTANT else best[1]

    def _already_reported(self, target: str, rule: str) -> bool:
        # A field that already failed would fail the schema too ("is required"); say it once.
        # So would an object that is missing because every field of it failed.
        simple = _strip_indexes(target)
        for failed in map(_strip_indexes, self.failed_targets):
            if simple == failed or simple.startswith(failed + "."):
                return True
            if rule == "required" and failed.startswith(simple + "."):
                return True
        return False


def _strip_indexes(text: str) -> str:
    out, depth = [], 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


# ---------------------------------------------------------------------------- loading


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
        return error.message.replace("property", "key")
    return error.message


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
    """The shipped spec ``name`` (``mappings/specs/<name>.toml``), checked and cached."""
    folder = resources.files(SPECS_PACKAGE)
    for suffix in (".toml", ".json"):
        entry = folder / f"{name}{suffix}"
        if entry.is_file():
            file = f"mappings/specs/{name}{suffix}"
            spec = build_spec(_parse_text(entry.read_text(encoding="utf-8"), file), file)
            if spec.name != name:
                raise SpecError(file, [("$.spec.name", f"must be {name!r}, the file's name")])
            return spec
    raise KeyError(f"no mapping spec {name!r}; available: {', '.join(available_specs())}")


def map_record(
    spec_name: str, record: Any, identifiers: IdentifierProfile | None = None
) -> dict[str, Any]:
    """Map ``record`` with the shipped spec ``spec_name``; ``MappingError`` if it cannot.

    ``identifiers``: the country profile the identifier transforms apply (default built-in).
    """
    return load_spec(spec_name).apply(record, identifiers)
