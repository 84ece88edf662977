"""One run of a spec over one record: every problem collected, provenance kept, notes made.

Kept apart from the spec model so the rules of a run (a failed required binding is reported
once, a dropped identifier the record cannot do without sends it to review, a schema complaint
that only repeats a refused identifier is not shown) read in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mappings import hooks, transforms
from mappings.context import Context, HookProblem
from mappings.paths import Filter, Key, Located, Path, describe_missing, is_blank
from mappings.results import Note, Problem
from mappings.schema_check import check as schema_violations
from standards.identifiers import IdentifierProfile

if TYPE_CHECKING:
    from mappings.spec import FieldRule, Spec, TransformStep

CONSTANT = "(constant)"
MAX_SHOWN = 60


@dataclass
class Run:
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
            self.review_targets.add(strip_indexes(target))
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
            strip_indexes(p.target)
            for p in self.problems
            if p.rule.startswith("schema:") and p.target is not None
        ]
        for note, refused in self.dropped:
            target = strip_indexes(note.target or "")
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
        simple = strip_indexes(problem.target)
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
        simple = strip_indexes(target)
        places = [
            rule.looked_for(self.context)
            for text, rule in self.expected.items()
            if strip_indexes(text) == simple or strip_indexes(text).startswith(simple + ".")
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
        simple = strip_indexes(target)
        for failed in map(strip_indexes, self.failed_targets):
            if simple == failed or simple.startswith(failed + "."):
                return True
            if rule == "required" and failed.startswith(simple + "."):
                return True
        return False


def strip_indexes(text: str) -> str:
    out, depth = [], 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)
