"""The simulation workbench's form: what current policy a scenario starts from, the form's
fields turned into the scenario the API accepts, and the API's complaints put back beside the
fields they are about.

The page runs no script (the dashboard's CSP forbids it), so the form is for one program at a
time: its threshold, its model's weights, an extension to a subgroup and its benefit schedule,
each pre-filled with what is in force. Only what the person changed goes into the scenario, so
an untouched form simulates current policy. Nothing here checks the scenario's meaning: it is
handed to ``registry_core.simulation`` exactly as a ``POST /api/v1/simulations`` body is, and
that code's ``InvalidRecord`` violations (path, message) are shown next to the field named by
the path (``field_for``).

Subgroups come from **presets** built from the model's own variables ("at least one member
counted by ``disabled``"), an area prefix (``area.startsWith("R01-D02")``, the prefix checked
here to be a plain area code so no CEL can be injected through it) and/or a CEL condition
typed by the person, which the simulation compiles and checks as the API does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry_core.scoring.tables import EligibilityRule, ScoringModel
from registry_core.simulation.tables import BenefitSchedule

AREA_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
BENEFIT_FIELDS = ("amount", "per", "period", "periods", "currency", "max_persons")
PERS = ("household", "person")
PERIODS = ("month", "quarter", "year", "once")
MAX_TEXT = 2000
PREVIEW_NAME = "unsaved preview"


@dataclass(frozen=True)
class ProgramPolicy:
    """A program's policy in force: its active rule, its model's active version (stored
    definitions, as uploaded) and its newest benefit schedule."""

    program: str
    version: int
    rule: Mapping[str, Any]
    model_code: str
    model: Mapping[str, Any] | None
    schedule: Mapping[str, Any] | None

    @property
    def variables(self) -> list[str]:
        return [str(v["name"]) for v in (self.model or {}).get("variables", [])]

    @property
    def weights(self) -> dict[str, float]:
        return {k: float(v) for k, v in ((self.model or {}).get("weights") or {}).items()}

    @property
    def intercept(self) -> float:
        return float((self.model or {}).get("intercept", 0.0))

    @property
    def linear(self) -> bool:
        return bool(self.model) and "weights" in (self.model or {})

    @property
    def threshold(self) -> Mapping[str, Any]:
        return self.rule.get("threshold") or {}


def policies(session: Session) -> dict[str, ProgramPolicy]:
    """Every program with an active rule, with its model's active version and schedule."""
    rules = session.scalars(
        select(EligibilityRule)
        .where(EligibilityRule.status == "active")
        .order_by(EligibilityRule.program_code)
    ).all()
    models = {
        row.code: row.definition
        for row in session.scalars(select(ScoringModel).where(ScoringModel.status == "active"))
    }
    found: dict[str, ProgramPolicy] = {}
    for rule in rules:
        schedule = session.scalar(
            select(BenefitSchedule.definition)
            .where(BenefitSchedule.program_code == rule.program_code)
            .order_by(BenefitSchedule.version.desc())
            .limit(1)
        )
        code = str(rule.definition.get("model_code", rule.model_code))
        found[rule.program_code] = ProgramPolicy(
            rule.program_code, rule.version, rule.definition, code, models.get(code), schedule
        )
    return found


def presets(policy: ProgramPolicy) -> list[tuple[str, str, str]]:
    """Safe subgroups of ``policy``'s model: (key, label, CEL). Each reads one declared
    variable with a constant, so it compiles against the model and translates to SQL."""
    return [
        (f"atleast1:{name}", f"at least one counted by '{name}' ({name} >= 1)", f"{name} >= 1.0")
        for name in policy.variables
    ]


def number_text(value: Any) -> str:
    """A number as the form shows it: exact (``repr``), integers without ``.0``."""
    if value is None or value == "":
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def defaults(policy: ProgramPolicy) -> dict[str, str]:
    """The form's fields as current policy fills them."""
    values = {
        "program": policy.program,
        "max_score": number_text(policy.threshold.get("max_score")),
        "min_score": number_text(policy.threshold.get("min_score")),
        "intercept": number_text(policy.intercept) if policy.linear else "",
        "area_level": "1",
        "segment_variable": "",
        "bands": "",
        "combine": "or",
    }
    for name, weight in policy.weights.items():
        values[f"weight_{name}"] = number_text(weight)
    schedule = policy.schedule or {}
    for name in BENEFIT_FIELDS:
        value = schedule.get(name)
        if name in ("amount",):
            values[f"benefit_{name}"] = number_text(value)
        else:
            values[f"benefit_{name}"] = "" if value is None else str(value)
    if not schedule:
        values["benefit_per"], values["benefit_period"] = "household", "month"
    return values


@dataclass
class FormResult:
    """The scenario built from a form, or the problems found before it could be built."""

    scenario: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    extend_to: str | None = None


def _number(raw: str, name: str, errors: dict[str, str]) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors[name] = f"{text[:40]!r} is not a number"
        return None
    if not math.isfinite(value):
        errors[name] = "must be a finite number"
        return None
    return value


def _whole(raw: str, name: str, errors: dict[str, str]) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not re.fullmatch(r"-?[0-9]{1,9}", text):
        errors[name] = f"{text[:40]!r} is not a whole number"
        return None
    return int(text)


def _extension(form: Mapping[str, str], policy: ProgramPolicy, errors: dict[str, str]) -> str:
    """The subgroup's CEL from the preset, the area prefix and the typed condition."""
    parts = []
    chosen = form.get("preset", "").strip()
    if chosen:
        known = {key: cel for key, _, cel in presets(policy)}
        if chosen not in known:
            errors["preset"] = "choose one of the listed subgroups"
        else:
            parts.append(known[chosen])
    prefix = form.get("area_prefix", "").strip()
    if prefix:
        if not AREA_PREFIX.fullmatch(prefix):
            errors["area_prefix"] = "an area code: letters, digits, '-' and '_' (e.g. R01-D02)"
        else:
            parts.append(f'area.startsWith("{prefix}")')
    typed = form.get("extend_cel", "").strip()
    if len(typed) > MAX_TEXT:
        errors["extend_cel"] = f"at most {MAX_TEXT} characters"
    elif typed:
        parts.append(typed)
    if len(parts) <= 1:
        return parts[0] if parts else ""
    joint = " && " if form.get("combine") == "and" else " || "
    return joint.join(f"({part})" for part in parts)


def scenario_from_form(form: Mapping[str, str], policy: ProgramPolicy) -> FormResult:
    """The scenario a ``POST /api/v1/simulations`` body would carry for this form: only the
    changes from ``policy``. Numbers that are not numbers are refused here, by field."""
    errors: dict[str, str] = {}
    program, model = policy.program, policy.model_code
    scenario: dict[str, Any] = {"name": form.get("name", "").strip() or PREVIEW_NAME}
    description = form.get("description", "").strip()
    if description:
        scenario["description"] = description
    as_of = form.get("as_of", "").strip()
    if as_of:
        scenario["as_of"] = as_of

    rule: dict[str, Any] = {}
    threshold: dict[str, float] = {}
    for name in ("max_score", "min_score"):
        value = _number(form.get(name, ""), name, errors)
        if value is not None:
            threshold[name] = value
    current = {k: float(v) for k, v in policy.threshold.items() if v is not None}
    if threshold != current:
        rule["threshold"] = threshold
    extend_to = _extension(form, policy, errors)
    if extend_to:
        rule["extend_to"] = extend_to
    if rule:
        scenario["rules"] = {program: rule}

    if policy.linear:
        change: dict[str, Any] = {}
        weights = {}
        for name, weight in policy.weights.items():
            value = _number(form.get(f"weight_{name}", ""), f"weight_{name}", errors)
            if value is not None and value != weight:
                weights[name] = value
        if weights:
            change["weights"] = weights
        intercept = _number(form.get("intercept", ""), "intercept", errors)
        if intercept is not None and intercept != policy.intercept:
            change["intercept"] = intercept
        if change:
            scenario["models"] = {model: change}

    benefit = _benefit(form, errors)
    if benefit is not None and benefit != dict(policy.schedule or {}):
        scenario["benefits"] = {program: benefit}
    if "rules" not in scenario and "benefits" not in scenario:
        # Nothing of the program itself changed: name its rule in force so it is simulated
        # (an untouched form answers current policy, and new weights still show it).
        scenario["rules"] = {program: {"version": policy.version}}

    level = _whole(form.get("area_level", ""), "area_level", errors)
    if level is not None and level != 1:
        scenario["area_level"] = level
    segment: dict[str, Any] = {}
    variable = form.get("segment_variable", "").strip()
    if variable:
        segment["variable"] = variable
    bands_text = form.get("bands", "").strip()
    if bands_text:
        bands = [_number(b, "bands", errors) for b in bands_text.split(",") if b.strip()]
        segment["bands"] = [b for b in bands if b is not None]
    if segment:
        scenario["segment"] = segment
    return FormResult(scenario, errors, extend_to or None)


def _benefit(form: Mapping[str, str], errors: dict[str, str]) -> dict[str, Any] | None:
    """The schedule the form states, or None when it states none (no amount)."""
    amount = _number(form.get("benefit_amount", ""), "benefit_amount", errors)
    if amount is None:
        return None
    found: dict[str, Any] = {"amount": amount}
    for name in ("per", "period", "currency"):
        value = form.get(f"benefit_{name}", "").strip()
        if value:
            found[name] = value
    for name in ("periods", "max_persons"):
        whole = _whole(form.get(f"benefit_{name}", ""), f"benefit_{name}", errors)
        if whole is not None:
            found[name] = whole
    return found


def field_for(path: str, policy: ProgramPolicy, extended: bool) -> str:
    """The form field a violation's JSON path is about ("" when none: shown above the form).

    ``$.rules.<program>`` alone is the simulation saying a condition cannot run set-based:
    the extension when one was given (the rule in force runs), else the program."""
    program, model = re.escape(policy.program), re.escape(policy.model_code)
    patterns: Sequence[tuple[str, str]] = (
        (r"^\$\.name$", "name"),
        (r"^\$\.description$", "description"),
        (r"^\$\.as_of$", "as_of"),
        (rf"^\$\.rules\.{program}\.threshold\.(max_score|min_score)$", r"\1"),
        (rf"^\$\.rules\.{program}\.threshold$", "max_score"),
        (rf"^\$\.rules\.{program}\.extend_to$", "extend_cel"),
        (rf"^\$\.models\.{model}\.weights\.(\w+)$", r"weight_\1"),
        (rf"^\$\.models\.{model}\.intercept$", "intercept"),
        (rf"^\$\.models\.{model}$", "weights"),
        (rf"^\$\.benefits\.{program}\.(\w+)$", r"benefit_\1"),
        (rf"^\$\.benefits\.{program}$", "benefit_amount"),
        (r"^\$\.area_level$", "area_level"),
        (r"^\$\.segment\.variable$", "segment_variable"),
        (r"^\$\.segment\.bands(\.\d+)?$", "bands"),
        (r"^\$\.segment$", "segment_variable"),
    )
    for pattern, target in patterns:
        found = re.match(pattern, path)
        if found:
            return found.expand(target)
    if re.match(rf"^\$\.rules\.{program}$", path):
        return "extend_cel" if extended else "program"
    return ""


def violations_by_field(
    violations: Sequence[Any], policy: ProgramPolicy, extended: bool
) -> dict[str, str]:
    """Each violation's message (as the API gives it) under its field; several join."""
    found: dict[str, str] = {}
    for violation in violations:
        name = field_for(violation.path, policy, extended)
        found[name] = f"{found[name]}; {violation.message}" if name in found else violation.message
    return found
