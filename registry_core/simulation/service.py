"""What-if simulations of policy, as a registry use case: run, save, read, compare.

``run`` resolves a scenario (``scenario``) against the active models and rules into one plan
per affected program (``query.ProgramPlan``), evaluates every plan set-based in one
**read-only transaction** (PostgreSQL: ``SET TRANSACTION READ ONLY``, so a write would fail;
every dialect: rolled back), then saves the named answer in ``simulations`` — the only row a
simulation ever writes, and not a registry table. The answer holds aggregates only (counts
by area and segment, gainers and losers, budgets); the households behind them are listed by
``changed_households`` for staff, evaluated again on today's data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from registry_core.errors import ConflictError, InvalidRecord, NotFound
from registry_core.scoring.active import active_models, active_rules, stored_model
from registry_core.scoring.definitions import (
    ModelDefinition,
    condition_samples,
    parse_model,
    parse_rule,
)
from registry_core.scoring.expressions import ExpressionError, compile_expression
from registry_core.scoring.sql import BULK_WORK_MEM
from registry_core.scoring.tables import EligibilityRule, ScoringModel
from registry_core.services.base import Workspace
from registry_core.simulation.budget import budget
from registry_core.simulation.cel_sql import Untranslatable, translate_formula
from registry_core.simulation.query import (
    RESCORED,
    REWEIGHTED,
    SIZE_SEGMENT,
    STORED,
    ProgramPlan,
    aggregate_statement,
    changed_statement,
)
from registry_core.simulation.scenario import DEFAULT_BANDS, check_benefit, check_scenario
from registry_core.simulation.suppression import protect_program, protect_programs
from registry_core.simulation.tables import BenefitSchedule, Simulation
from standards.timeutil import iso, utcnow
from standards.validation import Violation

COUNTS = (
    "current_households",
    "simulated_households",
    "current_people",
    "simulated_people",
    "gaining_households",
    "gaining_people",
    "losing_households",
    "losing_people",
)
DEFAULT_AREA_LEVEL = 1
MAX_COMPARED = 5


def _refuse(path: str, rule: str, message: str) -> InvalidRecord:
    return InvalidRecord([Violation(path, rule, message)])


def area_at_level(code: str | None, level: int) -> str:
    """``R01-D02-V7`` at level 1 is ``R01``, at level 2 ``R01-D02``."""
    if not code:
        return "unknown"
    return "-".join(code.split("-")[:level])


class Simulations:
    """Run, save, read and compare what-if simulations; programs' benefit schedules."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    # ------------------------------------------------------------------ benefit schedules

    def add_benefit_schedule(self, program: str, document: Any, by: str) -> dict[str, Any]:
        """Store ``document`` as the next version of ``program``'s schedule."""
        schedule = check_benefit(document)
        with self._ws.transaction() as session:
            latest = session.scalar(
                select(func.max(BenefitSchedule.version)).where(
                    BenefitSchedule.program_code == program
                )
            )
            row = BenefitSchedule(
                program_code=program,
                version=(latest or 0) + 1,
                definition=schedule,
                created_by=by[:200],
            )
            session.add(row)
            session.flush()
            return _schedule_view(row)

    def list_benefit_schedules(self, program: str) -> list[dict[str, Any]]:
        def work(session: Session) -> list[dict[str, Any]]:
            query = (
                select(BenefitSchedule)
                .where(BenefitSchedule.program_code == program)
                .order_by(BenefitSchedule.version)
            )
            return [_schedule_view(row) for row in session.scalars(query)]

        return self._ws.read(work)

    # ------------------------------------------------------------------ running

    @contextmanager
    def _read_only(self) -> Iterator[Session]:
        """A transaction that cannot write (PostgreSQL refuses) and is always rolled back."""
        session = self._ws.sessions()
        try:
            session.begin()
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SET TRANSACTION READ ONLY"))
                session.execute(text(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'"))
                # Compiling the statement to machine code costs more than it saves here.
                session.execute(text("SET LOCAL jit = off"))
                # The groups (areas x segments) are few and fit in memory; PostgreSQL's
                # estimate prefers sorting a third of a million rows to group them, which
                # measured 40% slower than hashing them.
                session.execute(text("SET LOCAL enable_sort = off"))
            yield session
        finally:
            session.rollback()
            session.close()

    def evaluate(self, document: Any) -> dict[str, Any]:
        """The scenario's answer, computed read-only and not saved."""
        scenario = check_scenario(document)
        as_of = date.fromisoformat(scenario["as_of"]) if "as_of" in scenario else utcnow().date()
        level = int(scenario.get("area_level", DEFAULT_AREA_LEVEL))
        started = time.perf_counter()
        with self._read_only() as session:
            dialect = session.get_bind().dialect.name
            programs = []
            for plan, schedules in _plans(session, scenario):
                programs.append(_run_plan(session, plan, schedules, dialect, as_of, level))
        return {
            "as_of": iso(as_of),
            "area_level": level,
            "segment": _segment_name(scenario),
            "programs": programs,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def run(self, document: Any, by: str) -> dict[str, Any]:
        """Evaluate the scenario and save it under its name (409 when the name is taken)."""
        scenario = check_scenario(document)
        name = scenario["name"]
        if self._ws.read(lambda s: s.scalar(select(Simulation.id).where(Simulation.name == name))):
            raise ConflictError(f"a simulation named {name!r} exists: choose another name")
        result = self.evaluate(scenario)
        with self._ws.transaction() as session:
            row = Simulation(
                name=name,
                description=scenario.get("description"),
                scenario=scenario,
                result=result,
                as_of=date.fromisoformat(result["as_of"]),
                seconds=result["seconds"],
                created_by=by[:200],
            )
            session.add(row)
            session.flush()
            return simulation_view(row)

    # ------------------------------------------------------------------ reads

    def _row(self, session: Session, simulation_id: uuid.UUID | str) -> Simulation:
        try:
            key = uuid.UUID(str(simulation_id))
        except ValueError:
            raise NotFound("simulation", simulation_id) from None
        row = session.get(Simulation, key)
        if row is None:
            raise NotFound("simulation", key)
        return row

    def get(self, simulation_id: uuid.UUID | str, min_cell: int = 0) -> dict[str, Any]:
        return self._ws.read(lambda s: simulation_view(self._row(s, simulation_id), min_cell))

    def list(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        def work(session: Session) -> list[dict[str, Any]]:
            query = (
                select(Simulation)
                .order_by(Simulation.created_at.desc(), Simulation.name)
                .limit(limit)
                .offset(offset)
            )
            return [summary_view(row) for row in session.scalars(query)]

        return self._ws.read(work)

    def compare(self, ids: Sequence[str], min_cell: int = 0) -> dict[str, Any]:
        """Saved simulations side by side: per program, current policy and each scenario
        (totals under ``min_cell``, or revealing one, suppressed as ``get`` does)."""
        if not 1 <= len(ids) <= MAX_COMPARED:
            raise _refuse("$.ids", "count", f"compare 1 to {MAX_COMPARED} simulations")

        def work(session: Session) -> dict[str, Any]:
            rows = [self._row(session, one) for one in ids]
            programs: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                for stored in row.result.get("programs", []):
                    program = protect_program(stored, min_cell)
                    programs.setdefault(program["program"], []).append(
                        {
                            "simulation": str(row.id),
                            "name": row.name,
                            "current": program["current"],
                            "simulated": program["simulated"],
                            "gainers": program["gainers"],
                            "losers": program["losers"],
                        }
                    )
            return {
                "simulations": [summary_view(row) for row in rows],
                "programs": [{"program": p, "scenarios": s} for p, s in sorted(programs.items())],
            }

        return self._ws.read(work)

    def changed_households(
        self,
        simulation_id: uuid.UUID | str,
        program: str,
        change: str,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """The households a saved scenario would make gain (or lose) ``program``, by id,
        evaluated again on today's data (read-only)."""
        scenario = self._ws.read(lambda s: dict(self._row(s, simulation_id).scenario))
        as_of = date.fromisoformat(scenario["as_of"]) if "as_of" in scenario else utcnow().date()
        with self._read_only() as session:
            dialect = session.get_bind().dialect.name
            plans = {plan.program: plan for plan, _ in _plans(session, scenario)}
            if program not in plans:
                raise NotFound("program in this simulation", program)
            statement = changed_statement(plans[program], dialect, as_of, change, limit, offset)
            items = [
                {
                    "household_id": str(uuid.UUID(str(row.household_id))),
                    "admin_area_code": row.area,
                    "simulated_score": row.score,
                }
                for row in session.execute(statement)
            ]
        return {"program": program, "change": change, "items": items, "offset": offset}


# ---------------------------------------------------------------------------- planning


def _segment_name(scenario: Mapping[str, Any]) -> str:
    return (scenario.get("segment") or {}).get("variable") or SIZE_SEGMENT


def _plans(
    session: Session, scenario: Mapping[str, Any]
) -> list[tuple[ProgramPlan, tuple[dict[str, Any] | None, dict[str, Any] | None]]]:
    """One plan per program the scenario touches, with its (current, simulated) schedules."""
    models = {m.code: m for m in active_models(session)}
    simulated: dict[str, tuple[ModelDefinition, str]] = {}
    for code, change in (scenario.get("models") or {}).items():
        simulated[code] = _simulated_model(session, code, change, models)
    rule_codes = list(session.scalars(select(EligibilityRule.model_code).distinct()))
    current_rules = {r.program_code: r for r in active_rules(session, rule_codes)}
    rule_changes = scenario.get("rules") or {}
    benefits = scenario.get("benefits") or {}
    programs = set(rule_changes) | set(benefits)
    programs |= {p for p, r in current_rules.items() if r.rule.model_code in simulated}
    segment = scenario.get("segment") or {}
    bands = tuple(float(b) for b in segment.get("bands") or DEFAULT_BANDS)
    plans = []
    for program in sorted(programs):
        definition = _simulated_rule(session, program, rule_changes.get(program), current_rules)
        code = definition["model_code"]
        if code in simulated:
            model, source = simulated[code]
        elif code in models:
            model, source = models[code].model, STORED
        else:
            raise _refuse(f"$.rules.{program}", "model", f"model {code!r} has no active version")
        where = f"$.rules.{program}"
        rule = parse_rule(definition, model)
        extend_to = (rule_changes.get(program) or {}).get("extend_to")
        if extend_to:
            try:
                compile_expression(extend_to, "extend_to", condition_samples(model), result=bool)
            except ExpressionError as exc:
                raise _refuse(where + ".extend_to", "cel", str(exc)) from None
        variable = segment.get("variable")
        if variable and variable not in model.names():
            raise _refuse("$.segment.variable", "declared", f"{variable!r} is not in {code!r}")
        current = _current_schedule(session, program)
        schedules = (current, benefits.get(program, current))
        caps = (_cap(current), _cap(schedules[1]))
        plan = ProgramPlan(
            program=program,
            model_code=code,
            model=model,
            source=source,
            rule=rule,
            condition=definition.get("condition"),
            extend_to=extend_to,
            segment_variable=variable,
            bands=bands,
            caps=caps,
            layouts=_layouts(session, code),
        )
        plans.append((plan, schedules))
    return plans


def _layouts(session: Session, code: str) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Every version of ``code`` with its variables in declared order: where each name sits
    in a stored score's ``input_values`` (rows of older versions may remain)."""
    rows = session.execute(
        select(ScoringModel.version, ScoringModel.definition)
        .where(ScoringModel.code == code)
        .order_by(ScoringModel.version)
    )
    return tuple((version, tuple(stored_model(document).names())) for version, document in rows)


def _cap(schedule: Mapping[str, Any] | None) -> int | None:
    if schedule is None or schedule.get("per") != "person":
        return None
    cap = schedule.get("max_persons")
    return int(cap) if cap else None


def _simulated_model(
    session: Session, code: str, change: Mapping[str, Any], models: Mapping[str, Any]
) -> tuple[ModelDefinition, str]:
    """The model a scenario scores ``code`` with, and where its scores come from."""
    where = f"$.models.{code}"
    active = models.get(code)
    if "version" in change:
        row = session.scalar(
            select(ScoringModel).where(
                ScoringModel.code == code, ScoringModel.version == change["version"]
            )
        )
        if row is None:
            raise NotFound("scoring model version", f"{code} v{change['version']}")
        model = parse_model(row.definition)
    elif "definition" in change:
        model = parse_model(change["definition"])
    else:
        if active is None or not active.model.linear:
            raise _refuse(where, "linear", f"{code!r} has no active linear version to re-weight")
        weights = {**(active.model.weights or {}), **(change.get("weights") or {})}
        unknown = sorted(set(weights) - set(active.model.names()))
        if unknown:
            raise _refuse(f"{where}.weights.{unknown[0]}", "declared", f"{unknown[0]!r} unknown")
        model = replace(
            active.model,
            weights=weights,
            intercept=float(change.get("intercept", active.model.intercept)),
        )
    if model.formula is not None:
        _check_formula(model, where)
    same_inputs = active is not None and active.model.variables == model.variables
    return model, REWEIGHTED if same_inputs else RESCORED


def _check_formula(model: ModelDefinition, where: str) -> None:
    """Refuse a formula the simulation cannot write in SQL, naming what and where (line and
    column in the formula) before anything runs."""
    assert model.formula is not None
    columns = {name: f"v_{name}" for name in model.names()}
    try:
        translate_formula(model.formula.source, columns, "postgresql")
    except Untranslatable as exc:
        raise _refuse(
            f"{where}.formula", "set_based", f"the formula cannot be simulated: {exc}"
        ) from None


def _simulated_rule(
    session: Session,
    program: str,
    change: Mapping[str, Any] | None,
    current: Mapping[str, Any],
) -> dict[str, Any]:
    """The rule document a scenario decides ``program`` with."""
    where = f"$.rules.{program}"
    change = change or {}
    if "version" in change:
        row = session.scalar(
            select(EligibilityRule).where(
                EligibilityRule.program_code == program,
                EligibilityRule.version == change["version"],
            )
        )
        if row is None:
            raise NotFound("eligibility rule version", f"{program} v{change['version']}")
        return dict(row.definition)
    if "definition" in change:
        return dict(change["definition"])
    row = session.scalar(
        select(EligibilityRule).where(
            EligibilityRule.program_code == program, EligibilityRule.status == "active"
        )
    )
    if row is None:
        raise _refuse(where, "active", f"{program!r} has no active rule: give a definition")
    document = dict(row.definition)
    if "threshold" in change:
        document["threshold"] = change["threshold"]
    for key in ("condition", "quota"):
        if key in change:
            if change[key] is None:
                document.pop(key, None)
            else:
                document[key] = change[key]
    return document


def _current_schedule(session: Session, program: str) -> dict[str, Any] | None:
    row = session.scalar(
        select(BenefitSchedule)
        .where(BenefitSchedule.program_code == program)
        .order_by(BenefitSchedule.version.desc())
        .limit(1)
    )
    return dict(row.definition) if row is not None else None


# ---------------------------------------------------------------------------- evaluation


def _run_plan(
    session: Session,
    plan: ProgramPlan,
    schedules: tuple[dict[str, Any] | None, dict[str, Any] | None],
    dialect: str,
    as_of: date,
    level: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        statement = aggregate_statement(plan, dialect, as_of)
    except Untranslatable as exc:
        raise _refuse(
            f"$.rules.{plan.program}", "set_based", f"the condition cannot be simulated: {exc}"
        ) from None
    cells = [dict(row._mapping) for row in session.execute(statement)]
    current, simulated = schedules
    by_area = _roll_up(cells, lambda c: area_at_level(c["area"], level), "area", schedules)
    by_segment = _roll_up(cells, lambda c: str(c["segment"]), "segment")
    totals = _sum(cells)
    return {
        "program": plan.program,
        "model": plan.model_code,
        "score_source": plan.source,
        "current": {
            "households": totals["current_households"],
            "people": totals["current_people"],
            "budget": budget(
                current,
                totals["current_households"],
                totals["current_people"],
                totals["current_paid_people"],
            ),
        },
        "simulated": {
            "households": totals["simulated_households"],
            "people": totals["simulated_people"],
            "budget": budget(
                simulated,
                totals["simulated_households"],
                totals["simulated_people"],
                totals["simulated_paid_people"],
            ),
        },
        "gainers": {
            "households": totals["gaining_households"],
            "people": totals["gaining_people"],
        },
        "losers": {"households": totals["losing_households"], "people": totals["losing_people"]},
        "by_area": by_area,
        "by_segment": by_segment,
        "seconds": round(time.perf_counter() - started, 3),
    }


_SUMMED = (*COUNTS, "current_paid_people", "simulated_paid_people")


def _sum(cells: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {name: int(sum(int(c[name] or 0) for c in cells)) for name in _SUMMED}


def _roll_up(
    cells: Sequence[Mapping[str, Any]],
    key: Callable[[Mapping[str, Any]], str],
    name: str,
    schedules: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Rows of summed counts per ``key``; with ``schedules`` (current, simulated) also each
    side's budget in the row (``current_budget``, ``simulated_budget``: the total over the
    schedule's periods, None without a schedule)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for cell in cells:
        groups.setdefault(key(cell), []).append(cell)
    rows = []
    for value in sorted(groups):
        sums = _sum(groups[value])
        row: dict[str, Any] = {name: value, **{k: sums[k] for k in COUNTS}}
        if schedules is not None:
            for side, schedule in zip(("current", "simulated"), schedules, strict=True):
                cost = budget(
                    schedule,
                    sums[f"{side}_households"],
                    sums[f"{side}_people"],
                    sums[f"{side}_paid_people"],
                )
                row[f"{side}_budget"] = cost["total"] if cost else None
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- views


def _schedule_view(row: BenefitSchedule) -> dict[str, Any]:
    return {
        "program_code": row.program_code,
        "version": row.version,
        "definition": row.definition,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }


def summary_view(row: Simulation) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "description": row.description,
        "as_of": iso(row.as_of),
        "seconds": row.seconds,
        "programs": [p["program"] for p in row.result.get("programs", [])],
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }


def simulation_view(row: Simulation, min_cell: int = 0) -> dict[str, Any]:
    """A saved simulation; counts under ``min_cell``, and those that would reveal one, are
    suppressed (``suppression.protect_program``)."""
    result = dict(row.result)
    result["programs"] = protect_programs(result.get("programs", []), min_cell)
    return {**summary_view(row), "scenario": row.scenario, "result": result}


__all__ = ["Simulations", "area_at_level", "simulation_view", "summary_view"]
