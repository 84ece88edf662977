"""Each household's scoring inputs in one row, kept by triggers (PostgreSQL).

Why: a full re-score asks every household for its area, how many members it has of an age
range or sex, and the values of its facts (rooms, roof, tax income, a GIS layer). Joined from
``households``, ``memberships``, ``persons`` and a hash aggregate of every fact of the
registry, that was most of the re-score: at 1,000,000 households the facts alone were about
4 s of a 12 s re-score (docs/policy.md, "Fifth look"). This table keeps, per household:

- ``admin_area_code``, ``status``: copied from the household (the re-score's anchor, so it
  reads one table instead of joining three);
- ``members``: how many current, living members it has;
- ``births``: their known birth dates, sorted: the members born on or before a day are one
  binary search (``width_bucket``), an age range two;
- ``member_keys``: the same by sex, sorted (``sex_code * KEY_SPAN`` plus the birth date's day
  number, 0 when unknown; codes in ``SEX_CODES``, 0 for none, 9 for any other value);
- ``person_ids``, ``birth_dates``, ``sexes``: the members side by side, for a member fact
  filtered by age or sex (``array_position`` of the person in the household);
- ``fact_keys`` and, at the same places, ``fact_max``, ``fact_min``, ``fact_sum``,
  ``fact_count`` (over the facts' numbers: JSON numbers, true/false as 1/0), ``fact_text``
  (the facts' one string, NULL when none or several differ) and ``fact_text_count``: the
  household's facts aggregated per key, a key being (domain, name, period, of a person or of
  the household) numbered in ``scoring_fact_keys``. A variable's value is then a few array
  look-ups (``sql.py``); a variable limited to some source systems, or a value map meeting
  differing strings under one key, reads the facts themselves;
- ``fact_member_keys``, ``fact_member_days``: for each member fact key, the members whose
  fact is above 0 (a disability), as ``key * FACT_SPAN`` plus their member key or their
  birth date's day number, sorted: "members of an age range or sex with the fact" is two
  binary searches, like a member count.

Triggers rebuild the rows of the households a write touches, from the tables themselves:
after any insert, update or delete of ``memberships`` and ``socio_economic_attributes`` (per
statement, with its transition rows: a bulk load refreshes each household once), after
households are inserted or deleted (per statement), and after an update of a household's area
or status or of a person's birth date, sex or death (per row). Every way of writing (API,
forms, civil registry events, merges, imports, bulk loads) goes through those tables, so the
rows cannot fall behind, and they commit or roll back with the write. The cost is paid
there: one refresh of the household per statement that touches it.

SQLite: the tables exist and stay empty; scores there are computed from the registry's own
tables (``sql.py``), as before.
"""

# ruff: noqa: S608 - the statements are constants (column names formatted in, no input)
from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from registry_core.db import Base

SEX_CODES = {"female": 1, "male": 2, "other": 3, "unknown": 4}
KEY_SPAN = 10_000_000  # day numbers since 0001-01-01 stay below it until the year 27,000
FACT_SPAN = 100_000_000  # above every member key (sex codes 0-9): a fact key's place
FIRST_DAY = date(1, 1, 1)


def _array(item: TypeEngine[Any]) -> TypeEngine[Any]:
    return JSON().with_variant(ARRAY(item), "postgresql")


class FactKey(Base):
    """A fact's key as the profiles number it: (domain, name, period, of a person or not).

    Rows are added by the refresh when a fact brings a new key and never change or go, so a
    number means the same key for as long as the registry lives."""

    __tablename__ = "scoring_fact_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    personal: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("domain", "name", "period", "personal", name="uq_scoring_fact_keys"),
    )


class HouseholdProfile(Base):
    """One household's scoring inputs: area, status, members and facts (module docstring)."""

    __tablename__ = "scoring_household_profiles"

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    admin_area_code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    members: Mapped[int] = mapped_column(Integer)
    births: Mapped[list[date]] = mapped_column(_array(Date()))
    member_keys: Mapped[list[int]] = mapped_column(_array(BigInteger()))
    person_ids: Mapped[list[uuid.UUID]] = mapped_column(_array(Uuid()))
    birth_dates: Mapped[list[date | None]] = mapped_column(_array(Date()))
    sexes: Mapped[list[str | None]] = mapped_column(_array(String(16)))
    fact_keys: Mapped[list[int]] = mapped_column(_array(Integer()))
    fact_max: Mapped[list[float | None]] = mapped_column(_array(Float()))
    fact_min: Mapped[list[float | None]] = mapped_column(_array(Float()))
    fact_sum: Mapped[list[float | None]] = mapped_column(_array(Float()))
    fact_count: Mapped[list[int]] = mapped_column(_array(Integer()))
    fact_text: Mapped[list[str | None]] = mapped_column(_array(Text()))
    fact_text_count: Mapped[list[int]] = mapped_column(_array(Integer()))
    fact_member_keys: Mapped[list[int]] = mapped_column(_array(BigInteger()))
    fact_member_days: Mapped[list[int]] = mapped_column(_array(BigInteger()))


def day_number(day: date) -> int:
    """A birth date's part of a member key (as the refresh function computes it)."""
    return min(max((day - FIRST_DAY).days + 1, 1), KEY_SPAN - 1)


_COLUMNS = (
    "household_id, admin_area_code, status, members, births, member_keys, person_ids,"
    " birth_dates, sexes, fact_keys, fact_max, fact_min, fact_sum, fact_count, fact_text,"
    " fact_text_count, fact_member_keys, fact_member_days"
)
_MEMBER_COLUMNS = ("members", "births", "member_keys", "person_ids", "birth_dates", "sexes")
_FACT_COLUMNS = (
    "fact_keys",
    "fact_max",
    "fact_min",
    "fact_sum",
    "fact_count",
    "fact_text",
    "fact_text_count",
)
_FACT_MEMBER_COLUMNS = ("fact_member_keys", "fact_member_days")
_EMPTY = "'{}'"
# A member's key (``member_keys``) and birth date's day number (0: unknown), as ``k``.
_MEMBER_KEY = """CROSS JOIN LATERAL (SELECT d.day, CAST(CASE WHEN p.sex IS NULL THEN 0
            WHEN p.sex = 'female' THEN 1 WHEN p.sex = 'male' THEN 2
            WHEN p.sex = 'other' THEN 3 WHEN p.sex = 'unknown' THEN 4 ELSE 9 END AS BIGINT)
            * 10000000 + d.day AS key
        FROM (SELECT CASE WHEN p.birth_date IS NULL THEN 0 ELSE LEAST(GREATEST(
            p.birth_date - DATE '0001-01-01' + 1, 1), 9999999) END AS day) d) k"""
# Per household of the array ``households``: its current, living members (``m``)...
_MEMBERS = f"""(
        SELECT ms.household_id, COUNT(*) AS members,
            COALESCE(array_agg(p.birth_date ORDER BY p.birth_date)
                FILTER (WHERE p.birth_date IS NOT NULL), '{{}}') AS births,
            array_agg(k.key ORDER BY k.key) AS member_keys,
            array_agg(p.id ORDER BY ms.id) AS person_ids,
            array_agg(p.birth_date ORDER BY ms.id) AS birth_dates,
            array_agg(p.sex ORDER BY ms.id) AS sexes
        FROM memberships ms
        JOIN persons p ON p.id = ms.person_id
        {_MEMBER_KEY}
        WHERE ms.household_id IN (SELECT unnest(households))
            AND ms.end_date IS NULL AND NOT COALESCE(p.is_deceased, false)
        GROUP BY ms.household_id
    ) m"""
# ... its facts aggregated per key (``f``; the keys numbered first, ``_NEW_KEYS``) ...
_FACTS = """(
        SELECT a.household_id, array_agg(a.key ORDER BY a.key) AS fact_keys,
            array_agg(a.high ORDER BY a.key) AS fact_max,
            array_agg(a.low ORDER BY a.key) AS fact_min,
            array_agg(a.total ORDER BY a.key) AS fact_sum,
            array_agg(a.numbers ORDER BY a.key) AS fact_count,
            array_agg(a.string ORDER BY a.key) AS fact_text,
            array_agg(a.strings ORDER BY a.key) AS fact_text_count
        FROM (
            SELECT s.household_id, k.id AS key, MAX(s.value_number) AS high,
                MIN(s.value_number) AS low, SUM(s.value_number) AS total,
                COUNT(s.value_number) AS numbers,
                CASE WHEN MIN(s.value_text COLLATE "C") = MAX(s.value_text COLLATE "C")
                    THEN MIN(s.value_text COLLATE "C") END AS string,
                COUNT(s.value_text) AS strings
            FROM socio_economic_attributes s
            JOIN scoring_fact_keys k ON k.domain = s.domain AND k.name = s.name
                AND k.period = s.period AND k.personal = (s.person_id IS NOT NULL)
            WHERE s.household_id IN (SELECT unnest(households))
            GROUP BY s.household_id, k.id
        ) a
        GROUP BY a.household_id
    ) f"""
# ... and its current members with a fact above 0, per key (``pf``).
_FACT_MEMBERS = f"""(
        SELECT q.household_id,
            array_agg(q.place + q.key ORDER BY q.place + q.key) AS fact_member_keys,
            array_agg(q.place + q.day ORDER BY q.place + q.day) AS fact_member_days
        FROM (
            SELECT DISTINCT ms.household_id, ms.person_id,
                CAST(fk.id AS BIGINT) * {FACT_SPAN} AS place, k.key, k.day
            FROM memberships ms
            JOIN persons p ON p.id = ms.person_id
            JOIN socio_economic_attributes s ON s.household_id = ms.household_id
                AND s.person_id = ms.person_id
            JOIN scoring_fact_keys fk ON fk.domain = s.domain AND fk.name = s.name
                AND fk.period = s.period AND fk.personal
            {_MEMBER_KEY}
            WHERE ms.household_id IN (SELECT unnest(households))
                AND ms.end_date IS NULL AND NOT COALESCE(p.is_deceased, false)
                AND s.value_number > 0
        ) q
        GROUP BY q.household_id
    ) pf"""
_NEW_KEYS = """INSERT INTO scoring_fact_keys (domain, name, period, personal)
    SELECT DISTINCT s.domain, s.name, s.period, s.person_id IS NOT NULL
    FROM socio_economic_attributes s
    WHERE s.household_id IN (SELECT unnest(households))
    ON CONFLICT (domain, name, period, personal) DO NOTHING"""


def _kept(alias: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"COALESCE({alias}.{column}, {_EMPTY})" for column in columns)


def _part_refresh(name: str, parts: tuple[tuple[str, str, tuple[str, ...]], ...]) -> str:
    """A function refreshing some of the columns of the households given: their rows locked
    first, in key order (so that the statement computing them, with a snapshot taken after
    any other writer of those rows committed, sees its changes), rows missing built whole."""
    sets = ", ".join(
        f"{column} = COALESCE({alias}.{column}, {_EMPTY})"
        for _, alias, columns in parts
        for column in columns
    )
    joins = " ".join(
        f"LEFT JOIN {source} ON {alias}.household_id = x.id" for source, alias, _ in parts
    )
    keys = f"    {_NEW_KEYS};\n" if any(alias == "f" for _, alias, _ in parts) else ""
    return f"""
CREATE OR REPLACE FUNCTION {name}(households uuid[]) RETURNS void AS $$
DECLARE
    missing uuid[];
BEGIN
    PERFORM 1 FROM scoring_household_profiles
    WHERE household_id IN (SELECT unnest(households)) ORDER BY household_id FOR UPDATE;
    missing := ARRAY(
        SELECT h.id FROM households h WHERE h.id IN (SELECT unnest(households))
        AND NOT EXISTS (
            SELECT 1 FROM scoring_household_profiles hp WHERE hp.household_id = h.id));
    IF cardinality(missing) > 0 THEN
        PERFORM scoring_household_profiles_refresh(missing);
    END IF;
{keys}    UPDATE scoring_household_profiles hp SET {sets}
    FROM (SELECT DISTINCT unnest(households) AS id) x {joins}
    WHERE hp.household_id = x.id;
END
$$ LANGUAGE plpgsql
"""


_UPDATED = ", ".join(f"{column} = EXCLUDED.{column}" for column in _COLUMNS.split(", ")[1:])

# The functions and triggers (migration 0028 runs the same statements). The whole refresh
# rebuilds rows from the tables; a write refreshes only what it can change: members (and
# members with a fact) after memberships or persons, facts (and members with a fact) after
# facts, the area and status after a household's update; a new household gets an empty row
# (nothing can refer to it yet).
POSTGRES_TRIGGERS: tuple[str, ...] = (
    f"""
CREATE OR REPLACE FUNCTION scoring_household_profiles_refresh(households uuid[]) RETURNS void
AS $$
BEGIN
    {_NEW_KEYS};
    DELETE FROM scoring_household_profiles
    WHERE household_id IN (SELECT unnest(households));
    INSERT INTO scoring_household_profiles ({_COLUMNS})
    SELECT h.id, h.admin_area_code, h.status, COALESCE(m.members, 0),
        {_kept("m", _MEMBER_COLUMNS[1:])}, {_kept("f", _FACT_COLUMNS)},
        {_kept("pf", _FACT_MEMBER_COLUMNS)}
    FROM households h
    LEFT JOIN {_MEMBERS} ON m.household_id = h.id
    LEFT JOIN {_FACTS} ON f.household_id = h.id
    LEFT JOIN {_FACT_MEMBERS} ON pf.household_id = h.id
    WHERE h.id IN (SELECT unnest(households))
    -- Two transactions refreshing one household: the second's DELETE did not see the
    -- first's new row; it waits for it here and overwrites it instead of failing.
    ON CONFLICT (household_id) DO UPDATE SET {_UPDATED};
END
$$ LANGUAGE plpgsql
""",
    _part_refresh(
        "scoring_household_profiles_members",
        ((_MEMBERS, "m", _MEMBER_COLUMNS), (_FACT_MEMBERS, "pf", _FACT_MEMBER_COLUMNS)),
    ).replace("COALESCE(m.members, '{}')", "COALESCE(m.members, 0)"),
    _part_refresh(
        "scoring_household_profiles_facts",
        ((_FACTS, "f", _FACT_COLUMNS), (_FACT_MEMBERS, "pf", _FACT_MEMBER_COLUMNS)),
    ),
    """
CREATE OR REPLACE FUNCTION scoring_household_profiles_of_rows() RETURNS trigger AS $$
DECLARE
    touched uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        touched := ARRAY(SELECT DISTINCT household_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        touched := ARRAY(SELECT DISTINCT household_id FROM old_rows);
    ELSE
        touched := ARRAY(SELECT household_id FROM new_rows UNION SELECT household_id FROM old_rows);
    END IF;
    IF TG_TABLE_NAME = 'memberships' THEN
        PERFORM scoring_household_profiles_members(touched);
    ELSE
        PERFORM scoring_household_profiles_facts(touched);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    f"""
CREATE OR REPLACE FUNCTION scoring_household_profiles_of_households() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO scoring_household_profiles ({_COLUMNS})
        SELECT n.id, n.admin_area_code, n.status, 0,
            {", ".join([_EMPTY] * (len(_MEMBER_COLUMNS) - 1 + len(_FACT_COLUMNS) + 2))}
        FROM new_rows n
        ON CONFLICT (household_id) DO UPDATE SET {_UPDATED};
    ELSE
        DELETE FROM scoring_household_profiles
        WHERE household_id IN (SELECT id FROM old_rows);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    """
CREATE OR REPLACE FUNCTION scoring_household_profiles_of_household() RETURNS trigger AS $$
BEGIN
    UPDATE scoring_household_profiles
    SET admin_area_code = NEW.admin_area_code, status = NEW.status
    WHERE household_id = NEW.id;
    IF NOT FOUND THEN
        PERFORM scoring_household_profiles_refresh(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    """
CREATE OR REPLACE FUNCTION scoring_household_profiles_of_person() RETURNS trigger AS $$
BEGIN
    PERFORM scoring_household_profiles_members(ARRAY(
        SELECT DISTINCT household_id FROM memberships WHERE person_id = NEW.id));
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    *(
        f"CREATE TRIGGER scoring_household_profiles_{table}_{operation.lower()}"
        f" AFTER {operation} ON {table} REFERENCING {transition} FOR EACH STATEMENT"
        " EXECUTE FUNCTION scoring_household_profiles_of_rows()"
        for table in ("memberships", "socio_economic_attributes")
        for operation, transition in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        )
    ),
    "CREATE TRIGGER scoring_household_profiles_households_insert AFTER INSERT ON households"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION scoring_household_profiles_of_households()",
    "CREATE TRIGGER scoring_household_profiles_households_delete AFTER DELETE ON households"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION scoring_household_profiles_of_households()",
    "CREATE TRIGGER scoring_household_profiles_household AFTER UPDATE ON households FOR EACH ROW"
    " WHEN (OLD.admin_area_code IS DISTINCT FROM NEW.admin_area_code"
    " OR OLD.status IS DISTINCT FROM NEW.status)"
    " EXECUTE FUNCTION scoring_household_profiles_of_household()",
    "CREATE TRIGGER scoring_household_profiles_person AFTER UPDATE ON persons FOR EACH ROW"
    " WHEN (OLD.birth_date IS DISTINCT FROM NEW.birth_date OR OLD.sex IS DISTINCT FROM NEW.sex"
    " OR OLD.is_deceased IS DISTINCT FROM NEW.is_deceased)"
    " EXECUTE FUNCTION scoring_household_profiles_of_person()",
)

# Rebuild every household's row (after a load with triggers disabled, or by the migration).
POSTGRES_REFRESH_ALL = "SELECT scoring_household_profiles_refresh(ARRAY(SELECT id FROM households))"

# ``create_all`` (tests that build a schema without migrating) gets the same function and
# triggers when it creates the profiles with the tables they are kept from (not when it
# creates a few other tables).
_KEPT_FROM = frozenset(
    {
        "scoring_household_profiles",
        "scoring_fact_keys",
        "households",
        "persons",
        "memberships",
        "socio_economic_attributes",
    }
)


def _creates_profiles(
    ddl: Any,
    target: Any,
    bind: Any,
    tables: list[Any] | None = None,
    state: Any = None,
    *,
    dialect: Any,
    compiler: Any = None,
    checkfirst: bool = False,
) -> bool:
    created = {table.name for table in tables or ()}
    return bool(dialect.name == "postgresql" and created >= _KEPT_FROM)


for _statement in POSTGRES_TRIGGERS:
    event.listen(
        Base.metadata,
        "after_create",
        DDL(_statement).execute_if(callable_=_creates_profiles),  # type: ignore[no-untyped-call]
    )
