"""One program's simulation as set-based SQL: current verdict beside the simulated one.

For every household (not dissolved) the statement reads:

- ``cur``: the program's current decision (``household_eligibility``, as the last decision
  run wrote it: current policy);
- ``score`` and the variables the simulated rule reads, from one of three sources
  (``ScoreSource``): the stored scores (the model is unchanged), the stored values with new
  weights or a new CEL formula (the model's variables are unchanged: no fact is read again;
  ``model_total``), or the facts themselves under a draft model (``sql.resolved_score_sql``,
  as a re-score reads them);
- ``sim``: scorable, within the threshold and the condition (or in the ``extend_to``
  subgroup), and within the quota (a window over the passing households in score order,
  ties by household id, as ``eligibility._apply_quota`` ranks them).

Only households eligible on either side are counted further: their persons (current, living
members: the model's plain member count when it has one, else counted) are summed and
everything is grouped by area code and segment. The caller rolls areas up to the level asked.
The same per-household rows, filtered to those whose verdict differs, give the staff's paged
list of gaining and losing households.

Nothing here writes: these are SELECTs, run by the service in a read-only transaction.
"""

# ruff: noqa: S608 - assembled from validated names, numeric literals and bound parameters.
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import TextClause, bindparam, text

from registry_core.scoring.definitions import ModelDefinition, RuleDefinition
from registry_core.scoring.sql import linear_total, resolved_score_sql
from registry_core.simulation.cel_sql import translate, translate_formula

STORED, REWEIGHTED, RESCORED = "stored", "reweighted", "rescored"
SIZE_SEGMENT = "household_size"


@dataclass(frozen=True)
class ProgramPlan:
    """What to simulate for one program (resolved from a scenario by the service)."""

    program: str
    model_code: str
    model: ModelDefinition  # the simulated model (the active one when unchanged)
    source: str  # STORED, REWEIGHTED or RESCORED
    rule: RuleDefinition
    condition: str | None  # the simulated rule's CEL condition text
    extend_to: str | None
    segment_variable: str | None  # None: household size
    bands: tuple[float, ...]
    caps: tuple[int | None, int | None] = (None, None)  # persons per household paid: cur, sim
    # Every version of the model code with its variable names in declared order: where a
    # name sits in a stored score's ``input_values``.
    layouts: tuple[tuple[int, tuple[str, ...]], ...] = ()


@dataclass
class _Statement:
    sql: str
    values: dict[str, Any] = field(default_factory=dict)
    types: dict[str, Any] = field(default_factory=dict)

    def bind(self) -> TextClause:
        return text(self.sql).bindparams(
            *(bindparam(k, v, type_=self.types.get(k)) for k, v in self.values.items())
        )


def _number(value: float) -> str:
    return f"CAST({float(value)!r} AS DOUBLE PRECISION)"


def _needed(plan: ProgramPlan) -> list[str]:
    """The variables the simulated rule (and segment) read, in declared order."""
    wanted: set[str] = set()
    for source in (plan.condition, plan.extend_to):
        if source:
            wanted.update(_names_in(source))
    if plan.segment_variable:
        wanted.add(plan.segment_variable)
    size = size_variable(plan.model)
    if size is not None:
        wanted.add(size)
    if plan.source == REWEIGHTED and plan.model.weights:
        wanted.update(plan.model.weights)
    if plan.source == REWEIGHTED and plan.model.formula is not None:
        wanted.update(plan.model.formula.variables)
    return [name for name in plan.model.names() if name in wanted]


def size_variable(model: ModelDefinition) -> str | None:
    """A variable counting every current, living member (``members``, no filter): the
    household's persons as the score saw them, read with the score instead of counting the
    memberships again (the simulation's costliest part otherwise)."""
    for variable in model.variables:
        if (
            variable.source == "members"
            and variable.fact is None
            and variable.age_min is None
            and variable.age_max is None
            and variable.sex is None
        ):
            return variable.name
    return None


def _names_in(source: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", source))


def _stored_value(name: str, plan: ProgramPlan, dialect: str) -> str:
    """The stored value of variable ``name`` of a score row ``hs`` (NULL when the row's
    version has no such variable, or the score was recorded from outside): one array
    subscript when every version keeps it at the same place, else one per version."""
    places = {version: names.index(name) for version, names in plan.layouts if name in names}

    def at(index: int) -> str:
        if dialect == "postgresql":
            return f"hs.input_values[{index + 1}]"
        return f"CAST(json_extract(hs.input_values, '$[{index}]') AS REAL)"

    if not places:
        return "CAST(NULL AS DOUBLE PRECISION)" if dialect == "postgresql" else "NULL"
    missing = {version for version, _ in plan.layouts} - set(places)
    if len(set(places.values())) == 1 and not missing:
        return at(next(iter(places.values())))
    cases = " ".join(f"WHEN {version} THEN {at(index)}" for version, index in places.items())
    return f"CASE hs.model_version {cases} END"


def _stored_scores(plan: ProgramPlan, names: list[str], dialect: str, out: _Statement) -> str:
    """household_id, score, i_<name> from ``household_scores`` (scores or values)."""
    out.values["s_model"] = plan.model_code
    value = {name: _stored_value(name, plan, dialect) for name in names}
    columns = [f"{value[name]} AS i_{name}" for name in names]
    score = "hs.score"
    if plan.source == REWEIGHTED:
        score = f"CASE WHEN hs.scorable THEN {model_total(plan.model, value, dialect, out)} END"
    selected = ", ".join(["hs.household_id", f"{score} AS score", *columns])
    return f"SELECT {selected} FROM household_scores hs WHERE hs.model_code = :s_model"


def model_total(
    model: ModelDefinition, values: Mapping[str, str], dialect: str, out: _Statement
) -> str:
    """The score over ``values`` (name -> SQL of the resolved value): the linear total, or
    the model's CEL formula translated (``cel_sql.translate_formula``; its strings bound in
    ``out``). Raises ``Untranslatable`` for a formula outside the translated subset."""
    if model.formula is None:
        return linear_total(model, dict(values))
    columns = {name: f"CAST({sql} AS DOUBLE PRECISION)" for name, sql in values.items()}
    formula = translate_formula(model.formula.source, columns, dialect, prefix="f_")
    out.values.update(formula.params)
    return formula.sql


def _scores(plan: ProgramPlan, names: list[str], dialect: str, as_of: date, out: _Statement) -> str:
    if plan.source != RESCORED:
        return _stored_scores(plan, names, dialect, out)
    raw = resolved_score_sql(
        plan.model, dialect, as_of, lambda resolved: model_total(plan.model, resolved, dialect, out)
    )
    out.values.update(raw.values)
    out.types.update(raw.types)
    return raw.sql


def _passes(plan: ProgramPlan, names: list[str], dialect: str, out: _Statement) -> str:
    """When a household passes the simulated rule before the quota (over columns ``b.``)."""
    columns = {name: f"b.i_{name}" for name in names}
    columns.update(score="b.score", area="b.area")
    rule = plan.rule
    parts = []
    if rule.max_score is not None:
        parts.append(f"b.score <= {_number(rule.max_score)}")
    if rule.min_score is not None:
        parts.append(f"b.score >= {_number(rule.min_score)}")
    if plan.condition:
        condition = translate(plan.condition, columns, dialect, prefix="c_")
        out.values.update(condition.params)
        parts.append(f"COALESCE({condition.sql}, (1 = 0))")
    passing = " AND ".join(parts) or "(1 = 1)"
    if plan.extend_to:
        extension = translate(plan.extend_to, columns, dialect, prefix="x_")
        out.values.update(extension.params)
        passing = f"({passing}) OR COALESCE({extension.sql}, (1 = 0))"
    return f"b.score IS NOT NULL AND ({passing})"


def decided_rows(plan: ProgramPlan, dialect: str, as_of: date) -> _Statement:
    """Per household: household_id, area, cur (0/1), sim (0/1), score, i_<needed>."""
    out = _Statement("")
    names = _needed(plan)
    scores = _scores(plan, names, dialect, as_of, out)
    out.values["s_program"] = plan.program
    variables = "".join(f", s.i_{name}" for name in names)
    base = (
        "SELECT h.id AS household_id, h.admin_area_code AS area,"
        " COALESCE(he.cur, 0) AS cur,"
        f" s.score AS score{variables}"
        f" FROM households h LEFT JOIN ({scores}) s ON s.household_id = h.id"
        " LEFT JOIN (SELECT household_id, 1 AS cur FROM household_eligibility"
        " WHERE program_code = :s_program AND eligible) he ON he.household_id = h.id"
        " WHERE h.status <> 'dissolved'"
    )
    kept = "".join(f", b.i_{name}" for name in names)
    passing = (
        f"SELECT b.household_id, b.area, b.cur, b.score{kept},"
        f" CASE WHEN {_passes(plan, names, dialect, out)} THEN 1 ELSE 0 END AS pass"
        f" FROM ({base}) b"
    )
    if plan.rule.quota is None:
        out.sql = f"SELECT q.*, q.pass AS sim FROM ({passing}) q"
        return out
    direction = "ASC" if plan.rule.quota_order == "score_asc" else "DESC"
    out.sql = (
        "SELECT q.*, CASE WHEN q.pass = 1 AND ROW_NUMBER() OVER (PARTITION BY q.pass"
        f" ORDER BY q.score {direction}, q.household_id) <= {int(plan.rule.quota)}"
        f" THEN 1 ELSE 0 END AS sim FROM ({passing}) q"
    )
    return out


def _show(bands: Sequence[float], value: float) -> str:
    whole = all(float(b).is_integer() for b in bands)
    return str(int(value)) if whole else repr(float(value))


def band_labels(bands: Sequence[float]) -> list[str]:
    """Labels of the bands ``[b0, b1)``, ... ``[bn, ∞)``: ``1``, ``2-3``, ``6+`` when the
    bounds are whole numbers, else ``0.5-<1.5``."""
    whole = all(float(b).is_integer() for b in bands)

    def show(value: float) -> str:
        return _show(bands, value)

    labels = []
    for index, low in enumerate(bands):
        if index + 1 == len(bands):
            labels.append(f"{show(low)}+")
        elif whole and bands[index + 1] - low == 1:
            labels.append(show(low))
        elif whole:
            labels.append(f"{show(low)}-{show(bands[index + 1] - 1)}")
        else:
            labels.append(f"{show(low)}-<{show(bands[index + 1])}")
    return labels


def _segment_case(column: str, bands: Sequence[float]) -> str:
    labels = band_labels(bands)
    arms = [f"WHEN {column} IS NULL THEN 'unknown'"]
    arms.append(f"WHEN {column} < {_number(bands[0])} THEN '<{_show(bands, bands[0])}'")
    for index in range(1, len(bands)):
        arms.append(f"WHEN {column} < {_number(bands[index])} THEN '{labels[index - 1]}'")
    return f"CASE {' '.join(arms)} ELSE '{labels[-1]}' END"


PEOPLE = (
    "(SELECT COUNT(*) FROM memberships ms JOIN persons p ON p.id = ms.person_id"
    " WHERE ms.household_id = f.household_id AND ms.end_date IS NULL"
    " AND COALESCE(p.is_deceased, false) = false)"
)


def _capped(column: str, cap: int | None) -> str:
    if cap is None:
        return column
    return f"CASE WHEN {column} > {int(cap)} THEN {int(cap)} ELSE {column} END"


def aggregate_statement(plan: ProgramPlan, dialect: str, as_of: date) -> TextClause:
    """Counts by area code and segment: households and persons eligible now and simulated,
    gainers and losers, persons capped by each side's benefit schedule."""
    rows = decided_rows(plan, dialect, as_of)
    segment_value = "x.people" if plan.segment_variable is None else f"x.i_{plan.segment_variable}"
    kept = f", f.i_{plan.segment_variable}" if plan.segment_variable else ""
    size = size_variable(plan.model)
    people = PEOPLE if size is None else f"COALESCE(CAST(f.i_{size} AS INTEGER), {PEOPLE})"
    eligible = (
        f"SELECT f.area, f.cur, f.sim{kept}, {people} AS people"
        f" FROM ({rows.sql}) f WHERE f.cur = 1 OR f.sim = 1"
    )
    if dialect == "postgresql":
        # A fence: without it PostgreSQL inlines ``people`` (a JSONB read and a cast, or a
        # count) into each of the ten sums and the segment, evaluating it a dozen times per
        # eligible household; ``OFFSET 0`` keeps the subquery whole, so it is computed once
        # (the threshold scenario measured 35% faster at 200,000 households, docs/policy.md).
        eligible += " OFFSET 0"
    cur_cap, sim_cap = plan.caps
    rows.sql = (
        f"SELECT x.area, {_segment_case(segment_value, plan.bands)} AS segment,"
        " SUM(x.cur) AS current_households, SUM(x.sim) AS simulated_households,"
        " SUM(x.cur * x.people) AS current_people, SUM(x.sim * x.people) AS simulated_people,"
        f" SUM(x.cur * {_capped('x.people', cur_cap)}) AS current_paid_people,"
        f" SUM(x.sim * {_capped('x.people', sim_cap)}) AS simulated_paid_people,"
        " SUM(CASE WHEN x.sim = 1 AND x.cur = 0 THEN 1 ELSE 0 END) AS gaining_households,"
        " SUM(CASE WHEN x.sim = 1 AND x.cur = 0 THEN x.people ELSE 0 END) AS gaining_people,"
        " SUM(CASE WHEN x.sim = 0 AND x.cur = 1 THEN 1 ELSE 0 END) AS losing_households,"
        " SUM(CASE WHEN x.sim = 0 AND x.cur = 1 THEN x.people ELSE 0 END) AS losing_people"
        f" FROM ({eligible}) x GROUP BY 1, 2"
    )
    return rows.bind()


def changed_statement(
    plan: ProgramPlan, dialect: str, as_of: date, change: str, limit: int, offset: int
) -> TextClause:
    """The households whose verdict the scenario changes (``gain`` or ``lose``), by id."""
    rows = decided_rows(plan, dialect, as_of)
    wanted = "f.sim = 1 AND f.cur = 0" if change == "gain" else "f.sim = 0 AND f.cur = 1"
    rows.sql = (
        f"SELECT f.household_id, f.area, f.score FROM ({rows.sql}) f WHERE {wanted}"
        f" ORDER BY f.household_id LIMIT {int(limit)} OFFSET {int(offset)}"
    )
    return rows.bind()
