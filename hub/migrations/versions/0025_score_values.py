"""Scores keep their variables' values as numbers; contributions are derived on read.

``household_scores`` gains ``input_values`` and ``previous_input_values`` (DOUBLE PRECISION[]
on PostgreSQL, a JSON array elsewhere: each variable's value in the model version's declared
order) and loses ``contributions`` and ``previous_contributions`` (weight times value, now
computed from the version's definition when a score is read). ``inputs`` stays for scores
recorded from outside (no model version) and becomes nullable. Why: building named JSON and
contributions per household was half of a full re-score's cost (docs/policy.md).

Existing model scores get their values from their named inputs and their version's variable
order. Their previous contributions cannot be turned back into values (a weight may be 0), so
the previous score and version are kept and "which variables moved it" is empty until the
score moves again.

Revision ID: 0025_score_values
Revises: 0024_read_audit
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0025_score_values"
down_revision = "0024_read_audit"
branch_labels = None
depends_on = None

VALUES = sa.JSON().with_variant(postgresql.ARRAY(postgresql.DOUBLE_PRECISION()), "postgresql")

# PostgreSQL: each model score's named inputs in its version's variable order, set-based.
POSTGRES_FILL = """
UPDATE household_scores hs SET input_values = ARRAY(
    SELECT CAST(hs.inputs ->> (v.value ->> 'name') AS DOUBLE PRECISION)
    FROM scoring_models sm,
        json_array_elements(CAST(sm.definition AS JSON) -> 'variables') WITH ORDINALITY v(value, n)
    WHERE sm.code = hs.model_code AND sm.version = hs.model_version
    ORDER BY v.n
), inputs = NULL
WHERE hs.model_version IS NOT NULL
"""
POSTGRES_BACK = """
UPDATE household_scores hs SET inputs = COALESCE((
    SELECT jsonb_object_agg(v.value ->> 'name', hs.input_values[v.n])
    FROM scoring_models sm,
        json_array_elements(CAST(sm.definition AS JSON) -> 'variables') WITH ORDINALITY v(value, n)
    WHERE sm.code = hs.model_code AND sm.version = hs.model_version
), '{}'::jsonb)
WHERE hs.model_version IS NOT NULL
"""


def _names(bind: Any) -> dict[tuple[str, int], list[str]]:
    rows = bind.execute(sa.text("SELECT code, version, definition FROM scoring_models"))
    names = {}
    for code, version, definition in rows:
        document = json.loads(definition) if isinstance(definition, str) else definition
        names[(code, version)] = [v["name"] for v in document.get("variables", [])]
    return names


def _fill_elsewhere(bind: Any) -> None:
    """SQLite: the same conversion row by row (registries on SQLite are small)."""
    names = _names(bind)
    rows = bind.execute(
        sa.text(
            "SELECT household_id, model_code, model_version, inputs FROM household_scores"
            " WHERE model_version IS NOT NULL"
        )
    ).fetchall()
    for household_id, code, version, inputs in rows:
        named = json.loads(inputs) if isinstance(inputs, str) else (inputs or {})
        values = [named.get(name) for name in names.get((code, version), [])]
        bind.execute(
            sa.text(
                "UPDATE household_scores SET input_values = :v, inputs = NULL"
                " WHERE household_id = :h AND model_code = :c"
            ),
            {"v": json.dumps(values), "h": household_id, "c": code},
        )


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("household_scores") as batch:
        batch.add_column(sa.Column("input_values", VALUES, nullable=True))
        batch.add_column(sa.Column("previous_input_values", VALUES, nullable=True))
        batch.alter_column("inputs", existing_type=sa.JSON(), nullable=True)
    if bind.dialect.name == "postgresql":
        op.execute(POSTGRES_FILL)
    else:
        _fill_elsewhere(bind)
    with op.batch_alter_table("household_scores") as batch:
        batch.drop_column("contributions")
        batch.drop_column("previous_contributions")


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("household_scores") as batch:
        batch.add_column(sa.Column("contributions", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("previous_contributions", sa.JSON(), nullable=True))
    if bind.dialect.name == "postgresql":
        op.execute(POSTGRES_BACK)
    else:
        names = _names(bind)
        rows = bind.execute(
            sa.text(
                "SELECT household_id, model_code, model_version, input_values"
                " FROM household_scores WHERE model_version IS NOT NULL"
            )
        ).fetchall()
        for household_id, code, version, values in rows:
            listed = json.loads(values) if isinstance(values, str) else (values or [])
            named = dict(zip(names.get((code, version), []), listed, strict=False))
            bind.execute(
                sa.text(
                    "UPDATE household_scores SET inputs = :i"
                    " WHERE household_id = :h AND model_code = :c"
                ),
                {"i": json.dumps(named), "h": household_id, "c": code},
            )
    op.execute("UPDATE household_scores SET inputs = '{}' WHERE inputs IS NULL")
    with op.batch_alter_table("household_scores") as batch:
        batch.alter_column("inputs", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("contributions", server_default=None)
        batch.drop_column("input_values")
        batch.drop_column("previous_input_values")
