"""Each socio-economic fact's value as a number and as text, computed by the database.

``socio_economic_attributes`` gains ``value_number`` (a JSON number as it is, true/false as
1/0) and ``value_text`` (a JSON string), generated from ``value``: stored on PostgreSQL,
computed when read on SQLite (which adds only virtual generated columns to a table). Why:
a full re-score reads every fact of the registry, and taking each JSON value apart (its
type, then its text, then the number) measured half of that read (docs/policy.md, "Fourth
look"); every way of writing a fact gets the columns without knowing them.

Revision ID: 0027_fact_numbers
Revises: 0026_member_profiles
"""

from __future__ import annotations

from alembic import op

revision = "0027_fact_numbers"
down_revision = "0026_member_profiles"
branch_labels = None
depends_on = None

# As registry_core.models declares them (copied: a migration does not change when the
# module does).
VALUE_NUMBER_SQL = {
    "postgresql": (
        "CASE json_typeof(value) WHEN 'number' THEN CAST((value #>> '{}') AS DOUBLE PRECISION)"
        " WHEN 'boolean' THEN CASE WHEN (value #>> '{}') = 'true' THEN 1.0 ELSE 0.0 END END"
    ),
    "sqlite": (
        "CASE json_type(value) WHEN 'integer' THEN CAST(json_extract(value, '$') AS REAL)"
        " WHEN 'real' THEN json_extract(value, '$') WHEN 'true' THEN 1.0"
        " WHEN 'false' THEN 0.0 END"
    ),
}
VALUE_TEXT_SQL = {
    "postgresql": "CASE WHEN json_typeof(value) = 'string' THEN (value #>> '{}') END",
    "sqlite": "CASE WHEN json_type(value) = 'text' THEN json_extract(value, '$') END",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "ALTER TABLE socio_economic_attributes"
            " ADD COLUMN value_number DOUBLE PRECISION GENERATED ALWAYS AS"
            f" ({VALUE_NUMBER_SQL['postgresql']}) STORED,"
            " ADD COLUMN value_text TEXT GENERATED ALWAYS AS"
            f" ({VALUE_TEXT_SQL['postgresql']}) STORED"
        )
        return
    op.execute(
        "ALTER TABLE socio_economic_attributes ADD COLUMN value_number REAL GENERATED ALWAYS"
        f" AS ({VALUE_NUMBER_SQL['sqlite']}) VIRTUAL"
    )
    op.execute(
        "ALTER TABLE socio_economic_attributes ADD COLUMN value_text TEXT GENERATED ALWAYS"
        f" AS ({VALUE_TEXT_SQL['sqlite']}) VIRTUAL"
    )


def downgrade() -> None:
    with op.batch_alter_table("socio_economic_attributes") as batch:
        batch.drop_column("value_text")
        batch.drop_column("value_number")
