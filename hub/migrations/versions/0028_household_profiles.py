"""Each household's scoring inputs in one row: the member profiles gain the area, the status
and the household's facts aggregated per key.

``scoring_member_profiles`` (0026) becomes ``scoring_household_profiles``: a row for every
household (not only those with members) with its area and status, its members as before, and
its facts aggregated per key (``fact_keys`` numbered in the new ``scoring_fact_keys``; the
largest, smallest, sum and count of the facts' numbers; their one string). A full re-score
then reads one table where it joined households, the member profiles and a hash aggregate of
every fact of the registry (docs/policy.md, "Fifth look"). Triggers on households, memberships,
persons and socio-economic facts keep the rows, as 0026's kept the members
(``registry_core.scoring.profiles``). On SQLite the tables exist and stay empty.

Revision ID: 0028_household_profiles
Revises: 0027_fact_numbers
"""

# ruff: noqa: S608 - the statements are constants (column names formatted in, no input)
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0028_household_profiles"
FACT_SPAN = 100_000_000  # above every member key: a fact key's place (profiles.FACT_SPAN)
down_revision = "0027_fact_numbers"
branch_labels = None
depends_on = None


def _array(item: sa.types.TypeEngine) -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.ARRAY(item), "postgresql")


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

POSTGRES_DROP: tuple[str, ...] = (
    *(
        f"DROP TRIGGER IF EXISTS scoring_household_profiles_{table}_{operation} ON {table}"
        for table in ("memberships", "socio_economic_attributes")
        for operation in ("insert", "update", "delete")
    ),
    "DROP TRIGGER IF EXISTS scoring_household_profiles_households_insert ON households",
    "DROP TRIGGER IF EXISTS scoring_household_profiles_households_delete ON households",
    "DROP TRIGGER IF EXISTS scoring_household_profiles_household ON households",
    "DROP TRIGGER IF EXISTS scoring_household_profiles_person ON persons",
    "DROP FUNCTION IF EXISTS scoring_household_profiles_of_person()",
    "DROP FUNCTION IF EXISTS scoring_household_profiles_of_household()",
    "DROP FUNCTION IF EXISTS scoring_household_profiles_of_households()",
    "DROP FUNCTION IF EXISTS scoring_household_profiles_of_rows()",
    "DROP FUNCTION IF EXISTS scoring_household_profiles_facts(uuid[])",
    "DROP FUNCTION IF EXISTS scoring_household_profiles_members(uuid[])",
    "DROP FUNCTION IF EXISTS scoring_household_profiles_refresh(uuid[])",
)
POSTGRES_FILL = "SELECT scoring_household_profiles_refresh(ARRAY(SELECT id FROM households))"


def _member_profiles() -> ModuleType:
    """Migration 0026, whose table, function and triggers a downgrade puts back."""
    path = Path(__file__).with_name("0026_member_profiles.py")
    spec = importlib.util.spec_from_file_location("srhub_migration_0026", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    previous = _member_profiles()
    if postgres:
        for statement in previous.POSTGRES_DROP:
            op.execute(statement)
    op.drop_table("scoring_member_profiles")
    op.create_table(
        "scoring_fact_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("domain", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_fact_keys")),
        sa.UniqueConstraint("domain", "name", "period", "personal", name="uq_scoring_fact_keys"),
    )
    op.create_table(
        "scoring_household_profiles",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("admin_area_code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("births", _array(sa.Date()), nullable=False),
        sa.Column("member_keys", _array(sa.BigInteger()), nullable=False),
        sa.Column("person_ids", _array(sa.Uuid()), nullable=False),
        sa.Column("birth_dates", _array(sa.Date()), nullable=False),
        sa.Column("sexes", _array(sa.String(length=16)), nullable=False),
        sa.Column("fact_keys", _array(sa.Integer()), nullable=False),
        sa.Column("fact_max", _array(sa.Float()), nullable=False),
        sa.Column("fact_min", _array(sa.Float()), nullable=False),
        sa.Column("fact_sum", _array(sa.Float()), nullable=False),
        sa.Column("fact_count", _array(sa.Integer()), nullable=False),
        sa.Column("fact_text", _array(sa.Text()), nullable=False),
        sa.Column("fact_text_count", _array(sa.Integer()), nullable=False),
        sa.Column("fact_member_keys", _array(sa.BigInteger()), nullable=False),
        sa.Column("fact_member_days", _array(sa.BigInteger()), nullable=False),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_scoring_household_profiles")),
    )
    if postgres:
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)
        op.execute(POSTGRES_FILL)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for statement in POSTGRES_DROP:
            op.execute(statement)
    op.drop_table("scoring_household_profiles")
    op.drop_table("scoring_fact_keys")
    _member_profiles().upgrade()
