"""The checked form of a mapping spec: what each field reads, how it converts, where it goes.

A ``Spec`` is built only by ``mappings.loader`` (which checks the file first) and is immutable,
so one loaded spec serves every record of every worker thread. ``Spec.map`` runs it
(``mappings.run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mappings.context import Context
from mappings.flat_plan import FlatPlan, plan_for
from mappings.paths import Path, describe_missing
from mappings.results import IdentifierReview, MappingError, MappingResult, Problem
from mappings.run import Run
from standards.identifiers import IdentifierProfile, default_profile


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
        """The canonical record for ``record``, or ``MappingError`` listing every problem.

        A flat spec first tries its straight-line plan (``mappings.flat_plan``); a record
        the plan does not take as it is goes through the general run, which judges it."""
        profile = identifiers or default_profile()
        if self._flat_plan is not None:
            output = self._flat_plan.apply(record, profile)
            if output is not None:
                return output
        return self.map(record, profile).record

    @cached_property
    def _flat_plan(self) -> FlatPlan | None:
        return plan_for(self)

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
        run = Run(self, Context(record), identifiers or default_profile())
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
