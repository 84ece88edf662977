"""The coverage counts, set-based: one SQL statement per report, grouped by area and segment.

Each household (or each current member, for segments of people) is counted once in its
admin area and segment: registered (not dissolved), scored (a score under a model with an
active version), enrolled in several programs, and per program eligible, enrolled, eligible
but not enrolled, enrolled but not eligible. The database reads each table once: the
households, the per-household flags of ``household_eligibility``, of ``household_scores`` and
of ``program_enrolments`` (an enrolment belongs to the beneficiary's current household), each
aggregated per household and joined, then grouped by the household's full area code and the
segment. Rolling the full codes up to a level is the caller's (``coverage``): counts of
disjoint households add up exactly, and there are far fewer areas than households.
"""

# ruff: noqa: S608 - the statement is assembled from fixed fragments and numbered columns;
# every value (program codes, fact names, dates) is a bound parameter.
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Date, bindparam, text
from sqlalchemy.orm import Session

from registry_core.models import HouseholdStatus

PERSON_SEGMENTS = ("age_band", "sex", "disability")
HOUSEHOLD_SEGMENTS = ("none", "household_type", "urban_rural")
SEGMENTS = HOUSEHOLD_SEGMENTS + PERSON_SEGMENTS
# Age bands: (label, youngest age in whole years), oldest band last.
AGE_BANDS = (("0-4", 0), ("5-17", 5), ("18-59", 18), ("60+", 60))
CHILD_UNDER = 18
OLDER_FROM = 60
PROGRAM_MEASURES = ("eligible", "enrolled", "eligible_not_enrolled", "enrolled_not_eligible")
COMMON_MEASURES = ("registered", "scored", "enrolled_several")


@dataclass(frozen=True)
class Facts:
    """Where the segments' facts are: a person's disability (a number above 0 or true), and
    the household's GIS settlement layer (a string ``urban`` or ``rural``)."""

    disability_domain: str = "other"
    disability_name: str = "disability"
    settlement_domain: str = "other"
    settlement_layer: str = "urban_rural"


@dataclass(frozen=True)
class CountRow:
    """Counts of one (full area code, segment) group; ``programs`` in the asked order, each
    a dict of ``PROGRAM_MEASURES``."""

    area: str
    segment: str
    registered: int
    scored: int
    enrolled_several: int
    programs: tuple[dict[str, int], ...]


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.types: dict[str, Any] = {}

    def add(self, value: Any, type_: Any = None) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        if type_ is not None:
            self.types[name] = type_
        return f":{name}"


def _json_text(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"({column} #>> '{{}}')"
    return f"json_extract({column}, '$')"


def _json_positive(column: str, dialect: str) -> str:
    """The JSON value is a number above 0 or true (the scoring module's reading of a fact)."""
    if dialect == "postgresql":
        scalar = f"({column} #>> '{{}}')"
        return (
            f"CASE json_typeof({column}) WHEN 'number' THEN"
            f" CASE WHEN CAST({scalar} AS DOUBLE PRECISION) > 0 THEN 1 ELSE 0 END"
            f" WHEN 'boolean' THEN CASE WHEN {scalar} = 'true' THEN 1 ELSE 0 END ELSE 0 END = 1"
        )
    scalar = f"json_extract({column}, '$')"
    return (
        f"CASE json_type({column}) WHEN 'integer' THEN {scalar} > 0 WHEN 'real' THEN {scalar} > 0"
        f" WHEN 'true' THEN 1 ELSE 0 END = 1"
    )


def born_after(as_of: date, years: int) -> date:
    """People born after this day are younger than ``years`` on ``as_of``."""
    return as_of - relativedelta(years=years)


def _age_band(params: _Params, as_of: date) -> str:
    parts = ["CASE WHEN p.birth_date IS NULL THEN 'unknown'"]
    for (label, _), (_, next_from) in itertools.pairwise(AGE_BANDS):
        parts.append(f"WHEN p.birth_date > {params.add(born_after(as_of, next_from), Date())}")
        parts.append(f"THEN '{label}'")
    parts.append(f"ELSE '{AGE_BANDS[-1][0]}' END")
    return " ".join(parts)


def _segment_sql(segment: str, params: _Params, as_of: date) -> tuple[str, str]:
    """(the segment's expression, the joins it needs) over ``h`` (and ``p`` for people)."""
    if segment == "none":
        return "'all'", ""
    if segment == "sex":
        return "COALESCE(LOWER(p.sex), 'unknown')", ""
    if segment == "age_band":
        return _age_band(params, as_of), ""
    if segment == "disability":
        return "CASE WHEN dis.person_id IS NULL THEN 'no_disability' ELSE 'disability' END", ""
    if segment == "urban_rural":
        return "COALESCE(st.settlement, 'unknown')", ""
    assert segment == "household_type"
    return (
        "CASE WHEN COALESCE(ht.members, 0) = 0 THEN 'no_members'"
        " WHEN ht.members = 1 THEN 'one_person'"
        " WHEN ht.children > 0 THEN 'with_children'"
        " WHEN ht.older = ht.members THEN 'older_only'"
        " ELSE 'adults_only' END",
        "",
    )


def _joins(segment: str, facts: Facts, params: _Params, as_of: date, dialect: str) -> str:
    """The per-household (or per-person) aggregates the segment reads, as LEFT JOINs."""
    if segment == "disability":
        positive = _json_positive("f.value", dialect)
        return (
            " LEFT JOIN (SELECT DISTINCT f.person_id FROM socio_economic_attributes f"
            f" WHERE f.domain = {params.add(facts.disability_domain)}"
            f" AND f.name = {params.add(facts.disability_name)}"
            f" AND f.person_id IS NOT NULL AND {positive}) dis ON dis.person_id = p.id"
        )
    if segment == "urban_rural":
        value = f"LOWER({_json_text('f.value', dialect)})"
        return (
            " LEFT JOIN (SELECT f.household_id, MAX(CASE WHEN"
            f" {value} IN ('urban', 'rural') THEN {value} END) AS settlement"
            " FROM socio_economic_attributes f"
            f" WHERE f.domain = {params.add(facts.settlement_domain)}"
            f" AND f.name = {params.add(facts.settlement_layer)} AND f.person_id IS NULL"
            " GROUP BY f.household_id) st ON st.household_id = h.id"
        )
    if segment == "household_type":
        child = params.add(born_after(as_of, CHILD_UNDER), Date())
        older = params.add(born_after(as_of, OLDER_FROM), Date())
        return (
            " LEFT JOIN (SELECT m.household_id, COUNT(*) AS members,"
            f" SUM(CASE WHEN q.birth_date > {child} THEN 1 ELSE 0 END) AS children,"
            f" SUM(CASE WHEN q.birth_date <= {older} THEN 1 ELSE 0 END) AS older"
            " FROM memberships m JOIN persons q ON q.id = m.person_id"
            " WHERE m.end_date IS NULL AND q.is_deceased = :alive_false"
            " GROUP BY m.household_id) ht ON ht.household_id = h.id"
        )
    return ""


def _flags(programs: list[str], params: _Params) -> tuple[str, list[str]]:
    """Per-household joins: scored, eligible per program, enrolled per program, programs."""
    eligible = ", ".join(
        f"MAX(CASE WHEN UPPER(e.program_code) = {params.add(code)} AND e.eligible"
        f" THEN 1 ELSE 0 END) AS e{i}"
        for i, code in enumerate(programs)
    )
    enrolled = ", ".join(
        f"MAX(CASE WHEN UPPER(pe.program_code) = {params.add(code)} THEN 1 ELSE 0 END) AS n{i}"
        for i, code in enumerate(programs)
    )
    joins = [
        " LEFT JOIN (SELECT s.household_id FROM household_scores s"
        " WHERE s.score IS NOT NULL AND s.model_code IN"
        " (SELECT code FROM scoring_models WHERE status = 'active')"
        " GROUP BY s.household_id) sc ON sc.household_id = h.id",
        " LEFT JOIN (SELECT m.household_id,"
        " COUNT(DISTINCT UPPER(pe.program_code)) AS programs"
        + (f", {enrolled}" if programs else "")
        + " FROM program_enrolments pe JOIN memberships m ON m.person_id = pe.person_id"
        " WHERE m.end_date IS NULL AND pe.status = 'active'"
        " GROUP BY m.household_id) en ON en.household_id = h.id",
    ]
    if programs:
        joins.append(
            f" LEFT JOIN (SELECT e.household_id, {eligible} FROM household_eligibility e"
            " GROUP BY e.household_id) el ON el.household_id = h.id"
        )
    sums = [
        "COUNT(*) AS registered",
        "SUM(CASE WHEN sc.household_id IS NULL THEN 0 ELSE 1 END) AS scored",
        "SUM(CASE WHEN en.programs >= 2 THEN 1 ELSE 0 END) AS enrolled_several",
    ]
    for i in range(len(programs)):
        e, n = f"COALESCE(el.e{i}, 0) = 1", f"COALESCE(en.n{i}, 0) = 1"
        sums += [
            f"SUM(CASE WHEN {e} THEN 1 ELSE 0 END) AS eligible_{i}",
            f"SUM(CASE WHEN {n} THEN 1 ELSE 0 END) AS enrolled_{i}",
            f"SUM(CASE WHEN {e} AND NOT {n} THEN 1 ELSE 0 END) AS gap_{i}",
            f"SUM(CASE WHEN {n} AND NOT {e} THEN 1 ELSE 0 END) AS over_{i}",
        ]
    return "".join(joins), sums


def count_rows(
    session: Session,
    segment: str,
    programs: list[str],
    as_of: date,
    facts: Facts,
) -> list[CountRow]:
    """The counts by full area code and segment (``programs`` upper-case codes)."""
    if segment not in SEGMENTS:
        raise ValueError(f"segment must be one of {', '.join(SEGMENTS)}")
    dialect = session.get_bind().dialect.name
    params = _Params()
    expression, _ = _segment_sql(segment, params, as_of)
    joins = _joins(segment, facts, params, as_of, dialect)
    flag_joins, sums = _flags(programs, params)
    people = ""
    if segment in PERSON_SEGMENTS:
        people = (
            " JOIN memberships mm ON mm.household_id = h.id AND mm.end_date IS NULL"
            " JOIN persons p ON p.id = mm.person_id AND p.is_deceased = :alive_false"
        )
    sql = (
        f"SELECT h.admin_area_code AS area, {expression} AS segment, {', '.join(sums)}"
        f" FROM households h{people}{joins}{flag_joins}"
        " WHERE h.status <> :dissolved"
        " GROUP BY 1, 2"  # by position: the segment's bound dates are written once
    )
    fixed = {"dissolved": HouseholdStatus.DISSOLVED, "alive_false": False}
    statement = text(sql).bindparams(
        *(bindparam(k, v, type_=params.types.get(k)) for k, v in params.values.items()),
        *(bindparam(k, v) for k, v in fixed.items() if f":{k}" in sql),
    )
    rows = []
    for row in session.execute(statement).mappings():
        rows.append(
            CountRow(
                area=row["area"] or "",
                segment=str(row["segment"]),
                registered=int(row["registered"] or 0),
                scored=int(row["scored"] or 0),
                enrolled_several=int(row["enrolled_several"] or 0),
                programs=tuple(
                    {
                        "eligible": int(row[f"eligible_{i}"] or 0),
                        "enrolled": int(row[f"enrolled_{i}"] or 0),
                        "eligible_not_enrolled": int(row[f"gap_{i}"] or 0),
                        "enrolled_not_eligible": int(row[f"over_{i}"] or 0),
                    }
                    for i in range(len(programs))
                ),
            )
        )
    return rows


def known_programs(session: Session) -> list[str]:
    """Programs a report covers by default: those with an active eligibility rule or with
    decisions, and those with active enrolments (upper-case, sorted)."""
    found = session.execute(
        text(
            "SELECT UPPER(program_code) FROM eligibility_rules WHERE status = 'active'"
            " UNION SELECT UPPER(program_code) FROM household_eligibility"
            " UNION SELECT UPPER(program_code) FROM program_enrolments WHERE status = 'active'"
        )
    ).scalars()
    return sorted({str(code) for code in found if code})


def enrolled_programs(session: Session) -> list[str]:
    """Programs with active enrolments (upper-case): those ``enrolled_several`` counts over."""
    found = session.execute(
        text("SELECT DISTINCT UPPER(program_code) FROM program_enrolments WHERE status = 'active'")
    ).scalars()
    return sorted(str(code) for code in found if code)
