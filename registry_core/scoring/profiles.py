"""Each household's current, living members in one row, kept by triggers (PostgreSQL).

Why: a full re-score asks every household how many members it has of an age range or sex,
and which of them have a fact (a disability, an income). Joined from ``memberships``,
``persons`` and every person's facts, that was the largest part of the re-score (1.76 s of
4.4 s at 200,000 households, docs/policy.md). This table keeps, per household:

- ``members``: how many current, living members it has;
- ``births``: their known birth dates, sorted: the members born on or before a day are one
  binary search (``width_bucket``), an age range two;
- ``member_keys``: the same by sex, sorted (``sex_code * KEY_SPAN`` plus the birth date's day
  number, 0 when unknown; codes in ``SEX_CODES``, 0 for none, 9 for any other value);
- ``person_ids``, ``birth_dates``, ``sexes``: the members side by side, for a member fact
  filtered by age or sex (``array_position`` of the person in the household).

Triggers rebuild the rows of the households a write touches, from the tables themselves:
after any insert, update or delete of ``memberships`` (per statement, with its transition
rows: a bulk load refreshes each household once) and after an update of a person's birth
date, sex or death (per row). Every way of writing members (API, forms, civil registry
events, merges, bulk loads) goes through those tables, so the rows cannot fall behind, and
they commit or roll back with the write. The cost is paid there: one refresh of the household
per membership statement.

SQLite: the table exists and stays empty; scores there are computed from the members
themselves (``sql.py``), as before.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import DDL, JSON, BigInteger, Date, Integer, String, Uuid, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from registry_core.db import Base
from registry_core.models import Membership

SEX_CODES = {"female": 1, "male": 2, "other": 3, "unknown": 4}
KEY_SPAN = 10_000_000  # day numbers since 0001-01-01 stay below it until the year 27,000
FIRST_DAY = date(1, 1, 1)


def _array(item: TypeEngine[Any]) -> TypeEngine[Any]:
    return JSON().with_variant(ARRAY(item), "postgresql")


class MemberProfile(Base):
    """One household's current, living members, as the full re-score reads them."""

    __tablename__ = "scoring_member_profiles"

    household_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    members: Mapped[int] = mapped_column(Integer)
    births: Mapped[list[date]] = mapped_column(_array(Date()))
    member_keys: Mapped[list[int]] = mapped_column(_array(BigInteger()))
    person_ids: Mapped[list[uuid.UUID]] = mapped_column(_array(Uuid()))
    birth_dates: Mapped[list[date | None]] = mapped_column(_array(Date()))
    sexes: Mapped[list[str | None]] = mapped_column(_array(String(16)))


def day_number(day: date) -> int:
    """A birth date's part of a member key (as the refresh function computes it)."""
    return min(max((day - FIRST_DAY).days + 1, 1), KEY_SPAN - 1)


# The refresh function and its triggers (migration 0026 runs the same statements).
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

# ``create_all`` (tests that build a schema without migrating) gets the same triggers, once
# ``memberships`` exists (``persons`` is created before it: memberships refer to persons).
for _statement in POSTGRES_TRIGGERS:
    event.listen(
        Membership.__table__,
        "after_create",
        DDL(_statement).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )
