"""A model's variables and linear score as one set-based SQL statement.

Why SQL: re-scoring the whole registry after a new model version must take seconds, not an
evening. On PostgreSQL the statement reads one row per household, its scoring profile kept
by triggers (``profiles``: area, members, facts aggregated per key), and computes each
variable from it with array look-ups and binary searches; what the profile cannot answer is
read from the tables per variable. Elsewhere the database reads each table once (one scan,
one hash aggregate per table: facts of the household, facts of each member, members with
their ages and sex) and joins the aggregates to the households. Either way every score is
computed in the same statement and nothing crosses to Python. The rules are those of
``evaluate`` and ``facts`` (the tests hold them together):

- a fact's JSON value becomes a number (numbers, true/false as 1/0, strings through the
  variable's ``value_map``), read from the columns the database computes from it
  (``value_number``, ``value_text``: migration 0027);
- a missing value is the variable's default (``COALESCE``) or makes the score NULL and the
  household not scorable.

``score_select`` is the read-only form (a simulation can aggregate over it without writing);
``rescore_statement`` wraps it in an upsert into ``household_scores`` that keeps the previous
score and values when the score changed. A score's variables are written as one array of
numbers in declared order (``values_array``); names and contributions are derived on read
(``explain``). Only linear models compile: a CEL formula runs
in Python (``evaluate``). Constants are validated numbers and names (``definitions``) written
as literals; every string from the definition is a bound parameter.
"""

# ruff: noqa: S608 - the statement is assembled from validated names and numeric literals;
# every string of a definition is a bound parameter (see the module docstring).
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, TextClause, Uuid, bindparam, text

from registry_core.db import UTCDateTime
from registry_core.scoring.definitions import ModelDefinition, Variable
from registry_core.scoring.facts import age_bounds
from registry_core.scoring.profiles import FACT_SPAN, KEY_SPAN, SEX_CODES, day_number


@dataclass
class _Params:
    """Bound parameters collected while the statement is written."""

    values: dict[str, Any] = field(default_factory=dict)
    types: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any, type_: Any = None) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        if type_ is not None:
            self.types[name] = type_
        return f":{name}"

    def bind(self, sql: str) -> TextClause:
        return text(sql).bindparams(
            *(bindparam(k, v, type_=self.types.get(k)) for k, v in self.values.items())
        )


def _literal(number: float) -> str:
    return f"CAST({float(number)!r} AS DOUBLE PRECISION)"


def _number(alias: str, value_map: dict[str, float], params: _Params) -> str:
    """The fact ``alias``'s value as a number by ``evaluate.as_number``'s rule (else NULL),
    from the columns the database computes from the JSON (``value_number``: numbers and
    true/false; ``value_text``: strings, through the variable's ``value_map``)."""
    if not value_map:
        return f"{alias}.value_number"
    mapped = " ".join(f"WHEN {params.add(k)} THEN {_literal(v)}" for k, v in value_map.items())
    return f"COALESCE({alias}.value_number, CASE {alias}.value_text {mapped} END)"


def _fact_condition(variable: Variable, alias: str, params: _Params, *, household: bool) -> str:
    fact = variable.fact
    assert fact is not None
    parts = [
        f"{alias}.domain = {params.add(fact[0])}",
        f"{alias}.name = {params.add(fact[1])}",
        f"{alias}.period = {params.add(variable.period)}",
    ]
    if household:
        parts.append(f"{alias}.person_id IS NULL")
    if variable.source_systems:
        systems = ", ".join(params.add(s) for s in variable.source_systems)
        parts.append(f"{alias}.source_system IN ({systems})")
    return "(" + " AND ".join(parts) + ")"


def _aggregate(variable: Variable) -> str:
    if variable.source == "tax_income":
        return "SUM"
    kind = variable.aggregate if variable.aggregate != "count" else "max"
    return kind.upper()


def _member_filter(
    variable: Variable,
    as_of: date,
    params: _Params,
    birth: str = "p.birth_date",
    sex: str = "p.sex",
) -> str:
    """The variable's age range and sex over a member's ``birth`` date and ``sex`` columns
    (a person ``p``, or the member at ``x.i`` of a profile: ``_profile_member``)."""
    parts = []
    born_by, born_after = age_bounds(variable, as_of)
    if born_by is not None:
        parts.append(f"{birth} <= {params.add(born_by, Date())}")
    if born_after is not None:
        parts.append(f"{birth} > {params.add(born_after, Date())}")
    if variable.sex is not None:
        parts.append(f"{sex} = {params.add(variable.sex)}")
    return " AND ".join(parts) or "1 = 1"


def _key_id(variable: Variable, personal: str, params: _Params) -> str:
    """The number of the variable's fact key in ``scoring_fact_keys`` (``personal``: the
    SQL condition on ``k.personal``), a subquery run once per statement; NULL when no fact
    of that key was ever written."""
    fact = variable.fact
    assert fact is not None
    return (
        "(SELECT k.id FROM scoring_fact_keys k WHERE k.domain = "
        f"{params.add(fact[0])} AND k.name = {params.add(fact[1])} AND k.period = "
        f"{params.add(variable.period)} AND {personal})"
    )


def _key_range(
    base: int, span: int, born_by: date | None, born_after: date | None
) -> tuple[int, int]:
    """The keys ``(low, high]`` of members born in the range, among keys ``base`` plus a
    birth date's day number (0 when unknown) below ``base + span``: the two bounds of two
    binary searches (``width_bucket`` counts the keys at or below a bound)."""
    high = base + day_number(born_by) if born_by is not None else base + span - 1
    if born_after is not None:
        low = base + day_number(born_after)
    else:  # with an age bound, an unknown birth date (day number 0) is not counted
        low = base if born_by is not None else base - 1
    return low, high


def _profile_count(variable: Variable, as_of: date, params: _Params) -> str | None:
    """A member count (no fact) over the household's profile ``h`` (``profiles``): births
    sorted, so each bound is one ``width_bucket`` (how many are at or below it). None: the
    variable's sex has no code there (it is counted from the members themselves)."""
    born_by, born_after = age_bounds(variable, as_of)
    if variable.sex is None:
        if born_by is None and born_after is None:
            return "h.members"
        upper = (
            f"width_bucket(CAST({params.add(born_by, Date())} AS DATE), h.births)"
            if born_by is not None
            else "cardinality(h.births)"
        )
        lower = (
            f"width_bucket(CAST({params.add(born_after, Date())} AS DATE), h.births)"
            if born_after is not None
            else "0"
        )
        return f"COALESCE({upper} - {lower}, 0)"
    code = SEX_CODES.get(variable.sex)
    if code is None:
        return None
    low, high = _key_range(code * KEY_SPAN, KEY_SPAN, born_by, born_after)
    return (
        f"COALESCE(width_bucket(CAST({high} AS BIGINT), h.member_keys)"
        f" - width_bucket(CAST({low} AS BIGINT), h.member_keys), 0)"
    )


def _profile_fact_count(variable: Variable, as_of: date, params: _Params) -> str | None:
    """Members of an age range or sex with a fact above 0 (``count`` of a member fact), from
    the profile's ``fact_member_days`` / ``fact_member_keys`` (the fact key's place plus each
    such member's birth day number or member key, sorted): two binary searches. None when
    the variable needs the facts themselves (a value map, source systems, another aggregate,
    a sex without a code)."""
    fact = variable.fact
    if (
        fact is None
        or variable.aggregate != "count"
        or variable.value_map
        or variable.source_systems
    ):
        return None
    place = f"CAST({_key_id(variable, 'k.personal', params)} AS BIGINT) * {FACT_SPAN}"
    born_by, born_after = age_bounds(variable, as_of)
    if variable.sex is None:
        array, base, span = "h.fact_member_days", 0, FACT_SPAN
    else:
        code = SEX_CODES.get(variable.sex)
        if code is None:
            return None
        array, base, span = "h.fact_member_keys", code * KEY_SPAN, KEY_SPAN
    low, high = _key_range(base, span, born_by, born_after)
    return (
        f"COALESCE(width_bucket({place} + {high}, {array})"
        f" - width_bucket({place} + {low}, {array}), 0)"
    )


@dataclass
class _Parts:
    """The joins' columns and conditions, collected variable by variable."""

    profiled: bool = False  # PostgreSQL: the anchor is the household's profile row
    fact_columns: list[str] = field(default_factory=list)
    fact_conditions: list[str] = field(default_factory=list)
    person_conditions: list[str] = field(default_factory=list)
    person_columns: list[str] = field(default_factory=list)
    member_columns: list[str] = field(default_factory=list)
    profile_person_conditions: list[str] = field(default_factory=list)
    profile_person_columns: list[str] = field(default_factory=list)
    profile_member_columns: list[str] = field(default_factory=list)


def _anchor_id(parts: _Parts) -> str:
    """The household's id in the statement's anchor row ``h``."""
    return "h.household_id" if parts.profiled else "h.id"


def _profile_member(
    variable: Variable, index: int, as_of: date, params: _Params, parts: _Parts
) -> str | None:
    """PostgreSQL: a members variable read from the profiles (the column's SQL), or None
    when it must be read from the members themselves."""
    column = f"v_{variable.name}"
    if variable.fact is None:
        return _profile_count(variable, as_of, params)
    counted = _profile_fact_count(variable, as_of, params)
    if counted is not None:
        return counted
    own = f"pv{index}"
    condition = _fact_condition(variable, "s", params, household=False)
    parts.profile_person_conditions.append(condition)
    number = _number("s", dict(variable.value_map), params)
    parts.profile_person_columns.append(f"MAX(CASE WHEN {condition} THEN {number} END) AS {own}")
    chosen = _member_filter(variable, as_of, params, "mp.birth_dates[x.i]", "mp.sexes[x.i]")
    if variable.aggregate == "count":
        parts.profile_member_columns.append(
            f"COUNT(CASE WHEN {chosen} AND pa.{own} > 0 THEN 1 END) AS {column}"
        )
        return f"COALESCE(mf.{column}, 0)"
    kind = variable.aggregate.upper()
    parts.profile_member_columns.append(f"{kind}(CASE WHEN {chosen} THEN pa.{own} END) AS {column}")
    return f"mf.{column}"


def _profile_fact(variable: Variable, params: _Params) -> str | None:
    """PostgreSQL: a household, tax or GIS variable read from the profile's facts aggregated
    per key (``profiles``), or None when it must read the facts themselves (a variable
    limited to some source systems: the profile's keys do not tell sources apart).

    Per key (its place ``i`` in ``h.fact_keys``) the profile has the largest, smallest, sum
    and count of the facts' numbers, and their one string with the count of strings. With a
    value map the string counts as its mapped number as many times as it occurs; when the
    strings under a key differ (``fact_text`` NULL with strings counted) the variable is read
    from the household's facts instead, by the same rule as the aggregate over all facts."""
    fact = variable.fact
    if fact is None or variable.source_systems:
        return None
    kind = "sum" if variable.source == "tax_income" else variable.aggregate
    kind = "max" if kind == "count" else kind
    household = variable.source in ("household_attribute", "gis_layer")
    personal = (False,) if household else (False, True)
    places = []
    for own in personal:
        key = _key_id(variable, f"k.personal = {'true' if own else 'false'}", params)
        places.append(f"array_position(h.fact_keys, {key})")
    mapped = dict(variable.value_map)
    numbers: list[tuple[str, str]] = []  # (value, how many times it counts)
    parts: list[str] = []
    mixed: list[str] = []
    for i in places:
        if kind in ("max", "min"):
            parts.append(f"h.fact_{kind}[{i}]")
        if mapped:
            cases = " ".join(f"WHEN {params.add(k)} THEN {_literal(v)}" for k, v in mapped.items())
            string = f"(CASE h.fact_text[{i}] {cases} END)"
            mixed.append(f"(h.fact_text_count[{i}] > 0 AND h.fact_text[{i}] IS NULL)")
            if kind in ("max", "min"):
                parts.append(string)
            numbers.append((string, f"h.fact_text_count[{i}]"))
    if kind in ("max", "min"):
        fast = f"{'GREATEST' if kind == 'max' else 'LEAST'}({', '.join(parts)})"
    else:
        counted = [f"COALESCE(h.fact_count[{i}], 0)" for i in places] + [
            f"CASE WHEN {value} IS NULL THEN 0 ELSE {times} END" for value, times in numbers
        ]
        summed = [f"COALESCE(h.fact_sum[{i}], 0)" for i in places] + [
            f"COALESCE({value} * {times}, 0)" for value, times in numbers
        ]
        count = f"({' + '.join(counted)})"
        total = f"({' + '.join(summed)})"
        divided = total if kind == "sum" else f"{total} / {count}"
        fast = f"CASE WHEN {count} = 0 THEN NULL ELSE CAST({divided} AS DOUBLE PRECISION) END"
    if not mixed:
        return fast
    condition = _fact_condition(variable, "s", params, household=household)
    number = _number("s", mapped, params)
    slow = (
        f"(SELECT {_aggregate(variable)}({number}) FROM socio_economic_attributes s"
        f" WHERE s.household_id = h.household_id AND {condition})"
    )
    return f"CASE WHEN {' OR '.join(mixed)} THEN {slow} ELSE {fast} END"


def _variables_sql(
    model: ModelDefinition,
    dialect: str,
    params: _Params,
    as_of: date,
    household_id: uuid.UUID | None,
) -> str:
    """SELECT household_id, area, v_<name>... for every household scored (not dissolved).

    On PostgreSQL the statement reads each household's profile (``profiles.HouseholdProfile``,
    one row per household: its area, status, members and facts aggregated per key) and a
    variable is computed from that row when it can be; a member fact other than a count of
    members with it (the largest income of the adults) from the facts of current members, a
    sex the profile has no code for from the members themselves, a variable limited to some
    source systems from the facts. Elsewhere every variable is read from households,
    memberships, persons and facts."""
    one = params.add(household_id, Uuid()) if household_id is not None else None
    parts = _Parts(profiled=dialect == "postgresql")
    anchor = _anchor_id(parts)
    columns = [f"{anchor} AS household_id", "h.admin_area_code AS area"]
    for index, variable in enumerate(model.variables):
        column = f"v_{variable.name}"
        if variable.source != "members":
            profiled = _profile_fact(variable, params) if parts.profiled else None
            if profiled is not None:
                columns.append(f"{profiled} AS {column}")
                continue
            condition = _fact_condition(
                variable,
                "s",
                params,
                household=variable.source in ("household_attribute", "gis_layer"),
            )
            parts.fact_conditions.append(condition)
            number = _number("s", dict(variable.value_map), params)
            parts.fact_columns.append(
                f"{_aggregate(variable)}(CASE WHEN {condition} THEN {number} END) AS {column}"
            )
            columns.append(f"f.{column}")
            continue
        if parts.profiled:
            profiled = _profile_member(variable, index, as_of, params, parts)
            if profiled is not None:
                columns.append(f"{profiled} AS {column}")
                continue
        chosen = _member_filter(variable, as_of, params)
        if variable.fact is None:
            parts.member_columns.append(f"COUNT(CASE WHEN {chosen} THEN 1 END) AS {column}")
            columns.append(f"COALESCE(m.{column}, 0) AS {column}")
            continue
        own = f"pv{index}"
        condition = _fact_condition(variable, "s", params, household=False)
        parts.person_conditions.append(condition)
        number = _number("s", dict(variable.value_map), params)
        parts.person_columns.append(f"MAX(CASE WHEN {condition} THEN {number} END) AS {own}")
        if variable.aggregate == "count":
            parts.member_columns.append(
                f"COUNT(CASE WHEN {chosen} AND pa.{own} > 0 THEN 1 END) AS {column}"
            )
            columns.append(f"COALESCE(m.{column}, 0) AS {column}")
        else:
            kind = variable.aggregate.upper()
            parts.member_columns.append(f"{kind}(CASE WHEN {chosen} THEN pa.{own} END) AS {column}")
            columns.append(f"m.{column}")
    joins = [*_fact_join(parts, one), *_profile_joins(parts, one), *_member_join(parts, one)]
    where = "h.status <> 'dissolved'" + (f" AND {anchor} = {one}" if one else "")
    table = "scoring_household_profiles" if parts.profiled else "households"
    return f"SELECT {', '.join(columns)} FROM {table} h {' '.join(joins)} WHERE {where}"


def _fact_join(parts: _Parts, one: str | None) -> list[str]:
    if not parts.fact_columns:
        return []
    only = f" AND s.household_id = {one}" if one else ""
    return [
        f"LEFT JOIN (SELECT s.household_id, {', '.join(parts.fact_columns)}"
        f" FROM socio_economic_attributes s WHERE ({' OR '.join(parts.fact_conditions)}){only}"
        f" GROUP BY s.household_id) f ON f.household_id = {_anchor_id(parts)}"
    ]


def _profile_joins(parts: _Parts, one: str | None) -> list[str]:
    """The member facts of current members (``mf``): each person's facts aggregated, kept
    when the person is one of the household's members (``mp``: their profile)."""
    joins = []
    if parts.profile_member_columns:
        only = f" AND s.household_id = {one}" if one else ""
        joins.append(
            f"LEFT JOIN (SELECT pa.household_id, {', '.join(parts.profile_member_columns)}"
            f" FROM (SELECT s.household_id, s.person_id, {', '.join(parts.profile_person_columns)}"
            " FROM socio_economic_attributes s WHERE s.person_id IS NOT NULL"
            f" AND ({' OR '.join(parts.profile_person_conditions)}){only}"
            " GROUP BY s.household_id, s.person_id) pa"
            " JOIN scoring_household_profiles mp ON mp.household_id = pa.household_id"
            " CROSS JOIN LATERAL (SELECT array_position(mp.person_ids, pa.person_id) AS i) x"
            " WHERE x.i IS NOT NULL GROUP BY pa.household_id) mf"
            f" ON mf.household_id = {_anchor_id(parts)}"
        )
    return joins


def _member_join(parts: _Parts, one: str | None) -> list[str]:
    if not parts.member_columns:
        return []
    only = f" AND ms.household_id = {one}" if one else ""
    person_join = ""
    if parts.person_columns:
        person_only = f" AND s.household_id = {one}" if one else ""
        person_join = (
            f" LEFT JOIN (SELECT s.household_id, s.person_id, {', '.join(parts.person_columns)}"
            " FROM socio_economic_attributes s WHERE s.person_id IS NOT NULL"
            f" AND ({' OR '.join(parts.person_conditions)}){person_only}"
            " GROUP BY s.household_id, s.person_id) pa"
            " ON pa.person_id = ms.person_id AND pa.household_id = ms.household_id"
        )
    return [
        f"LEFT JOIN (SELECT ms.household_id, {', '.join(parts.member_columns)}"
        " FROM memberships ms JOIN persons p ON p.id = ms.person_id"
        f"{person_join}"
        " WHERE ms.end_date IS NULL AND COALESCE(p.is_deceased, false) = false"
        f"{only} GROUP BY ms.household_id) m ON m.household_id = {_anchor_id(parts)}"
    ]


def _resolved(model: ModelDefinition) -> tuple[dict[str, str], str]:
    """Each variable's value after its missing-value rule, and when the household is not
    scorable (a ``not_scorable`` variable is NULL), over the columns ``v.v_<name>``."""
    resolved: dict[str, str] = {}
    unscorable: list[str] = []
    for variable in model.variables:
        column = f"v.v_{variable.name}"
        if variable.missing.rule == "default":
            resolved[variable.name] = f"COALESCE({column}, {_literal(variable.missing.value)})"
        else:
            resolved[variable.name] = column
            unscorable.append(f"{column} IS NULL")
    return resolved, " OR ".join(unscorable) or "1 = 0"


def _linear_terms(model: ModelDefinition, resolved: dict[str, str]) -> list[tuple[str, str]]:
    if model.weights is None:
        raise ValueError("only a linear model (weights) compiles to SQL")
    return [
        (name, f"{_literal(model.weights[name])} * {resolved[name]}")
        for name in model.names()
        if name in model.weights
    ]


def linear_total(model: ModelDefinition, resolved: dict[str, str]) -> str:
    """``intercept + weight * value ...`` in declared order (``resolved``: name -> SQL)."""
    terms = _linear_terms(model, resolved)
    return " + ".join([_literal(model.intercept), *(term for _, term in terms)])


def values_array(values: list[str], dialect: str) -> str:
    """The variables' values in declared order as one column: ``DOUBLE PRECISION[]`` on
    PostgreSQL (a simulation reads ``input_values[i]`` without parsing), a JSON array on
    SQLite. Why not named JSON: building a JSONB object per household measured 0.9 s of a
    4.7 s re-score at 200,000 households, the array 0.1 s (docs/policy.md); names come from
    the version's definition on read (``explain``)."""
    if dialect == "postgresql":
        cast = ", ".join(f"CAST({value} AS DOUBLE PRECISION)" for value in values)
        return f"CAST(ARRAY[{cast}] AS DOUBLE PRECISION[])"
    return f"json_array({', '.join(values)})"


def _score_sql(model: ModelDefinition, dialect: str, inner: str) -> str:
    resolved, missing = _resolved(model)
    total = linear_total(model, resolved)
    values = values_array([resolved[name] for name in model.names()], dialect)
    # PostgreSQL: the variables a subquery computed once (``OFFSET 0``); flattened, each
    # variable's expression (a member count's binary searches) ran again for the score,
    # the values and the missing-value test.
    fence = " OFFSET 0" if dialect == "postgresql" else ""
    return (
        "SELECT v.household_id, v.area,"
        f" CASE WHEN {missing} THEN NULL ELSE {total} END AS score,"
        f" CASE WHEN {missing} THEN false ELSE true END AS scorable,"
        f" {values} AS input_values"
        f" FROM ({inner}{fence}) v"
    )


@dataclass(frozen=True)
class Compiled:
    """A statement and its bound parameters."""

    statement: TextClause


def variables_select(
    model: ModelDefinition,
    dialect: str,
    as_of: date,
    household_id: uuid.UUID | None = None,
) -> Compiled:
    """Raw variable values (``v_<name>``, NULL: missing) of every scored household, or one."""
    params = _Params()
    sql = _variables_sql(model, dialect, params, as_of, household_id)
    return Compiled(params.bind(sql))


def score_select(
    model: ModelDefinition,
    dialect: str,
    as_of: date,
    household_id: uuid.UUID | None = None,
) -> Compiled:
    """household_id, area, score, scorable, input_values — computed, not written."""
    params = _Params()
    inner = _variables_sql(model, dialect, params, as_of, household_id)
    return Compiled(params.bind(_score_sql(model, dialect, inner)))


@dataclass(frozen=True)
class RawSelect:
    """A statement's SQL text with its bound values and types, to embed in a larger one."""

    sql: str
    values: dict[str, Any]
    types: dict[str, Any]


def resolved_score_sql(
    model: ModelDefinition,
    dialect: str,
    as_of: date,
    total: Callable[[dict[str, str]], str] | None = None,
) -> RawSelect:
    """household_id, score (NULL: not scorable) and ``i_<name>`` (each variable after its
    missing-value rule) of every scored household, computed from the facts and not written:
    what a simulation of a draft model reads. ``total`` writes the score over the resolved
    values (default: the linear total; a formula model's translated CEL). Parameters are
    named ``p<n>``."""
    params = _Params()
    inner = _variables_sql(model, dialect, params, as_of, None)
    resolved, missing = _resolved(model)
    columns = ", ".join(f"{value} AS i_{name}" for name, value in resolved.items())
    score = total(resolved) if total is not None else linear_total(model, resolved)
    sql = (
        "SELECT v.household_id,"
        f" CASE WHEN {missing} THEN NULL ELSE {score} END AS score,"
        f" {columns} FROM ({inner}) v"
    )
    return RawSelect(sql, params.values, params.types)


# Memory for the re-score's hash aggregates, joins and key build, for this transaction only:
# with the server's defaults (often 4 MB and 64 MB) PostgreSQL sorts on disk instead.
BULK_WORK_MEM = "256MB"


def prepare_for_bulk(connection: Any, dialect: str) -> None:
    """Settings of the re-scoring transaction (``connection``: a Session or Connection).

    JIT is off: the statement's cost estimate passes PostgreSQL's JIT thresholds, and
    compiling and optimising its many expressions costs seconds at a million households
    (measured on the simulation's statement) for a statement that runs once."""
    if dialect == "postgresql":
        connection.execute(text(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'"))
        # The swapped table's key is built in this transaction: with the default 64 MB its
        # sort of a million keys spilled to disk (0.3-0.5 s of CPU against 0.2 s in memory).
        connection.execute(text(f"SET LOCAL maintenance_work_mem = '{BULK_WORK_MEM}'"))
        connection.execute(text("SET LOCAL jit = off"))


def _changed(dialect: str, column: str) -> str:
    operator = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return f"household_scores.{column} {operator} excluded.{column}"


def empty_values(dialect: str) -> str:
    """An empty values array: the previous values of a score that had none (recorded from
    outside), so that "which variables moved it" still counts every contribution."""
    return "CAST(ARRAY[] AS DOUBLE PRECISION[])" if dialect == "postgresql" else "json_array()"


UPSERT_TAIL = (
    " ON CONFLICT (household_id, model_code) DO UPDATE SET"
    " previous_model_version = CASE WHEN {moved} THEN household_scores.model_version"
    " ELSE household_scores.previous_model_version END,"
    " previous_score = CASE WHEN {moved} THEN household_scores.score"
    " ELSE household_scores.previous_score END,"
    " previous_input_values = CASE WHEN {moved}"
    " THEN COALESCE(household_scores.input_values, {empty})"
    " ELSE household_scores.previous_input_values END,"
    " model_version = excluded.model_version, score = excluded.score,"
    " scorable = excluded.scorable, input_values = excluded.input_values, inputs = NULL,"
    " computed_at = excluded.computed_at"
)
COLUMNS = "household_id, model_code, model_version, score, scorable, input_values, computed_at"


def upsert_tail(dialect: str) -> str:
    """The ON CONFLICT clause: the previous score and values are kept when the score or the
    model version moved (a re-score that changes nothing keeps the last change)."""
    moved = f"({_changed(dialect, 'score')} OR {_changed(dialect, 'model_version')})"
    return UPSERT_TAIL.format(moved=moved, empty=empty_values(dialect))


@dataclass(frozen=True)
class NewScores:
    """The SELECT of every scored household's new row (the columns of ``COLUMNS``), to be
    wrapped in a writing statement: ``fill(wrap)`` binds ``wrap(select_sql, code_param)``."""

    sql: str
    code_param: str
    params: _Params

    def fill(self, wrap: Callable[[str, str], str]) -> TextClause:
        return self.params.bind(wrap(self.sql, self.code_param))


def new_scores_select(
    model: ModelDefinition,
    code: str,
    version: int,
    dialect: str,
    as_of: date,
    now: datetime,
    household_id: uuid.UUID | None = None,
) -> NewScores:
    """household_id, model_code, model_version, score, scorable, input_values, computed_at
    of every scored household (or one), computed and not written."""
    params = _Params()
    inner = _variables_sql(model, dialect, params, as_of, household_id)
    scores = _score_sql(model, dialect, inner)
    code_param = params.add(code)
    sql = (
        f"SELECT s.household_id, CAST({code_param} AS VARCHAR(64)) AS model_code,"
        f" {params.add(version)} AS model_version, s.score, s.scorable, s.input_values,"
        f" {params.add(now, UTCDateTime())} AS computed_at FROM ({scores}) s"
    )
    return NewScores(sql, code_param, params)


def rescore_statement(
    model: ModelDefinition,
    code: str,
    version: int,
    dialect: str,
    as_of: date,
    now: datetime,
    household_id: uuid.UUID | None = None,
) -> Compiled:
    """One INSERT ... SELECT ... ON CONFLICT writing every scored household's current score."""
    rows = new_scores_select(model, code, version, dialect, as_of, now, household_id)
    return Compiled(
        rows.fill(
            lambda scores, _: (
                f"INSERT INTO household_scores ({COLUMNS})"
                f" SELECT * FROM ({scores}) s WHERE true{upsert_tail(dialect)}"
            )
        )
    )
