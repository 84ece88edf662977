"""Each household's current, living members in one row, kept by triggers (PostgreSQL).

``scoring_member_profiles`` holds, per household, what a scoring model asks of its members:
how many there are, their birth dates sorted (an age-range count is two binary searches,
``width_bucket``), the same keyed by sex, and the members' ids, birth dates and sexes side by
side (for a member fact, e.g. a disability, filtered by age or sex). A full re-score reads one
row per household instead of joining memberships, persons and facts of every person
(docs/policy.md, "Fourth look"). Triggers on ``memberships`` (any insert, update, delete, per
statement) and ``persons`` (a changed birth date, sex or death, per row) rebuild the rows of
the households concerned from the tables themselves, so every way of writing members keeps
it current. On SQLite the table exists, stays empty and is not read (scores are computed from
the members themselves there).

Revision ID: 0026_member_profiles
Revises: 0025_score_values
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026_member_profiles"
down_revision = "0025_score_values"
branch_labels = None
depends_on = None


def _array(item: sa.types.TypeEngine) -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.ARRAY(item), "postgresql")


# The function and triggers as registry_core.scoring.profiles declares them (copied: a
# migration does not change when the module does).
POSTGRES_TRIGGERS: tuple[str, ...] = (
    """
CREATE OR REPLACE FUNCTION scoring_member_profiles_refresh(households uuid[]) RETURNS void AS $$
BEGIN
    DELETE FROM scoring_member_profiles
    WHERE household_id IN (SELECT unnest(households));
    INSERT INTO scoring_member_profiles
        (household_id, members, births, member_keys, person_ids, birth_dates, sexes)
    SELECT ms.household_id, COUNT(*),
        COALESCE(array_agg(p.birth_date ORDER BY p.birth_date)
            FILTER (WHERE p.birth_date IS NOT NULL), '{}'),
        array_agg(k.key ORDER BY k.key),
        array_agg(p.id ORDER BY ms.id),
        array_agg(p.birth_date ORDER BY ms.id),
        array_agg(p.sex ORDER BY ms.id)
    FROM unnest(households) AS t(id)
    JOIN memberships ms ON ms.household_id = t.id
    JOIN persons p ON p.id = ms.person_id
    CROSS JOIN LATERAL (SELECT
        CAST(CASE WHEN p.sex IS NULL THEN 0 WHEN p.sex = 'female' THEN 1
            WHEN p.sex = 'male' THEN 2 WHEN p.sex = 'other' THEN 3
            WHEN p.sex = 'unknown' THEN 4 ELSE 9 END AS BIGINT) * 10000000
        + CASE WHEN p.birth_date IS NULL THEN 0
            ELSE LEAST(GREATEST(p.birth_date - DATE '0001-01-01' + 1, 1), 9999999) END
        AS key) k
    WHERE ms.end_date IS NULL AND NOT COALESCE(p.is_deceased, false)
    GROUP BY ms.household_id
    -- Two transactions refreshing one household: the second's DELETE did not see the
    -- first's new row; it waits for it here and overwrites it instead of failing.
    ON CONFLICT (household_id) DO UPDATE SET members = EXCLUDED.members,
        births = EXCLUDED.births, member_keys = EXCLUDED.member_keys,
        person_ids = EXCLUDED.person_ids, birth_dates = EXCLUDED.birth_dates,
        sexes = EXCLUDED.sexes;
END
$$ LANGUAGE plpgsql
""",
    """
CREATE OR REPLACE FUNCTION scoring_member_profiles_of_memberships() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM scoring_member_profiles_refresh(ARRAY(SELECT DISTINCT household_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM scoring_member_profiles_refresh(ARRAY(SELECT DISTINCT household_id FROM old_rows));
    ELSE
        PERFORM scoring_member_profiles_refresh(ARRAY(
            SELECT household_id FROM new_rows UNION SELECT household_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    """
CREATE OR REPLACE FUNCTION scoring_member_profiles_of_person() RETURNS trigger AS $$
BEGIN
    PERFORM scoring_member_profiles_refresh(ARRAY(
        SELECT DISTINCT household_id FROM memberships WHERE person_id = NEW.id));
    RETURN NULL;
END
$$ LANGUAGE plpgsql
""",
    "CREATE TRIGGER scoring_member_profiles_insert AFTER INSERT ON memberships"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION scoring_member_profiles_of_memberships()",
    "CREATE TRIGGER scoring_member_profiles_update AFTER UPDATE ON memberships"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION scoring_member_profiles_of_memberships()",
    "CREATE TRIGGER scoring_member_profiles_delete AFTER DELETE ON memberships"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION scoring_member_profiles_of_memberships()",
    "CREATE TRIGGER scoring_member_profiles_person AFTER UPDATE ON persons FOR EACH ROW"
    " WHEN (OLD.birth_date IS DISTINCT FROM NEW.birth_date OR OLD.sex IS DISTINCT FROM NEW.sex"
    " OR OLD.is_deceased IS DISTINCT FROM NEW.is_deceased)"
    " EXECUTE FUNCTION scoring_member_profiles_of_person()",
)
POSTGRES_DROP: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS scoring_member_profiles_person ON persons",
    "DROP TRIGGER IF EXISTS scoring_member_profiles_delete ON memberships",
    "DROP TRIGGER IF EXISTS scoring_member_profiles_update ON memberships",
    "DROP TRIGGER IF EXISTS scoring_member_profiles_insert ON memberships",
    "DROP FUNCTION IF EXISTS scoring_member_profiles_of_person()",
    "DROP FUNCTION IF EXISTS scoring_member_profiles_of_memberships()",
    "DROP FUNCTION IF EXISTS scoring_member_profiles_refresh(uuid[])",
)
POSTGRES_FILL = (
    "SELECT scoring_member_profiles_refresh(ARRAY("
    "SELECT DISTINCT household_id FROM memberships WHERE end_date IS NULL))"
)


def upgrade() -> None:
    op.create_table(
        "scoring_member_profiles",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("births", _array(sa.Date()), nullable=False),
        sa.Column("member_keys", _array(sa.BigInteger()), nullable=False),
        sa.Column("person_ids", _array(sa.Uuid()), nullable=False),
        sa.Column("birth_dates", _array(sa.Date()), nullable=False),
        sa.Column("sexes", _array(sa.String(length=16)), nullable=False),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_scoring_member_profiles")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)
        op.execute(POSTGRES_FILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DROP:
            op.execute(statement)
    op.drop_table("scoring_member_profiles")
