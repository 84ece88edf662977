"""A full re-score on PostgreSQL written into a fresh table and swapped in.

Why: the upsert (``sql.rescore_statement``) updates every row of ``household_scores`` in
place. Each update is an index probe, a new row version and a new key-index entry (the pages
are full, so no heap-only update), and every re-score leaves the table's previous versions
behind: after three re-scores without a vacuum the table holds four times its rows' pages,
which the next re-score, and every simulation, read again. Writing the new rows into an empty
table without indexes, building the key and the foreign key once afterwards, and swapping the
tables (``DROP`` and ``RENAME`` in the same transaction) costs about a third of the upsert at
200,000 households and leaves a compact table (docs/policy.md, "Third look").

What stays the same as the upsert: the rows (every column, the previous score, version and
values kept when the score or version moved), the other models' rows (copied as they
are), the table's columns, types, defaults, key and foreign key under their migration names,
and the transaction: readers see the old table until the commit. What differs: while the new
table is built, writers of scores wait (``EXCLUSIVE`` lock: a score written meanwhile would be
lost in the swap); the ``DROP`` waits for readers of the old table and then holds them out
until the commit. If a lock is not granted in time (``LOCK_TIMEOUT`` to start; for the
``DROP``, short tries that give up before a deadlock could be declared, ``_take_over``), the
attempt is rolled back to its savepoint and the caller upserts instead.

Rows of the model for dissolved households are not copied: ``rescore.score_everyone``
deletes them before any re-score, so the result equals the upsert's after that delete.
"""

# ruff: noqa: S608 - names are constants; the scores' SELECT binds every value (sql.py).
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from registry_core.scoring.definitions import ModelDefinition
from registry_core.scoring.sql import empty_values, new_scores_select

TABLE = "household_scores"
NEXT = "household_scores_next"
KEY = "pk_household_scores"
FOREIGN_KEY = "fk_household_scores_household_id_households"
LOCK_TIMEOUT = "10s"
TAKE_OVER_TIMEOUT = "400ms"  # below PostgreSQL's default deadlock_timeout (1 s): see _take_over
TAKE_OVER_TRIES = 10
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK = "40P01"
_MOVED = "(o.score IS DISTINCT FROM n.score OR o.model_version IS DISTINCT FROM n.model_version)"
_KEPT = (
    f"CASE WHEN {_MOVED} THEN o.model_version ELSE o.previous_model_version END,"
    f" CASE WHEN {_MOVED} THEN o.score ELSE o.previous_score END,"
    f" CASE WHEN o.household_id IS NULL THEN NULL WHEN {_MOVED}"
    f" THEN COALESCE(o.input_values, {empty_values('postgresql')})"
    " ELSE o.previous_input_values END"
)
# Statistics for the columns queries filter or group on; not the value arrays (per-element
# statistics of two arrays per row were half of ANALYZE's time, and nothing filters on them).
ANALYZED = "household_id, model_code, model_version, score, scorable, computed_at"
ALL_COLUMNS = (
    "household_id, model_code, model_version, score, scorable, input_values, inputs,"
    " previous_model_version, previous_score, previous_input_values, computed_at"
)


def _new_rows_sql(scores: str, columns: list[Column]) -> str:
    """The new table filled by ``CREATE TABLE AS`` from the new rows, joined to the old ones
    for the previous values, each column cast to the old table's type in its order.

    Why ``CREATE TABLE AS`` and not ``INSERT``: it writes through a bulk-insert buffer ring,
    1.0 s against 1.4 s for a million rows (docs/policy.md, "Fifth look"). ``OFFSET 0`` keeps
    the new rows a subquery computed once: flattened, each use of ``n.score`` in ``_KEPT``
    computed the score again (a quarter of the statement at 200,000 households)."""
    casts = ", ".join(f"CAST(r.{c.name} AS {c.type}) AS {c.name}" for c in columns)
    return (
        f"CREATE TABLE {NEXT} AS SELECT {casts} FROM (SELECT n.household_id, n.model_code,"
        " n.model_version, n.score, n.scorable, n.input_values, NULL AS inputs,"
        f" {_KEPT}, n.computed_at FROM ({scores} OFFSET 0) n"
        f" LEFT JOIN {TABLE} o ON o.household_id = n.household_id"
        " AND o.model_code = n.model_code) r"
    )


@dataclass(frozen=True)
class Column:
    """A column of the scores table as the catalog has it (the new table copies it)."""

    name: str
    type: str
    not_null: bool
    default: str | None
    storage: str | None  # ALTER ... SET STORAGE when not the type's own
    compression: str | None  # ALTER ... SET COMPRESSION when set on the column


def _columns(connection: Any) -> list[Column]:
    """The scores table's columns in order: the migrations' shape, whatever it becomes."""
    rows = connection.execute(
        text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid),"
            " CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage END,"
            " NULLIF(CAST(a.attcompression AS text), '')"
            " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum"
        ),
        {"table": TABLE},
    )
    return [Column(*row) for row in rows]


_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
_COMPRESSION = {"p": "pglz", "l": "lz4"}


def _shape_sql(columns: list[Column]) -> str:
    """``ALTER TABLE`` giving the new table the old one's constraints, defaults, storage,
    key and foreign key (under their migration names), in one statement: one scan."""
    parts = [f"ALTER COLUMN {c.name} SET NOT NULL" for c in columns if c.not_null]
    parts += [f"ALTER COLUMN {c.name} SET DEFAULT {c.default}" for c in columns if c.default]
    parts += [
        f"ALTER COLUMN {c.name} SET STORAGE {_STORAGE[c.storage]}" for c in columns if c.storage
    ]
    parts += [
        f"ALTER COLUMN {c.name} SET COMPRESSION {_COMPRESSION[c.compression]}"
        for c in columns
        if c.compression
    ]
    parts += [
        f"ADD CONSTRAINT {NEXT}_key PRIMARY KEY (household_id, model_code)",
        f"ADD CONSTRAINT {FOREIGN_KEY} FOREIGN KEY (household_id) REFERENCES households (id)",
    ]
    return f"ALTER TABLE {NEXT} " + ", ".join(parts)


def rebuild_scores(
    connection: Any,
    model: ModelDefinition,
    code: str,
    version: int,
    as_of: date,
    now: datetime,
) -> int | None:
    """Re-score every household (not dissolved) of a linear ``model`` into a new table and
    swap it in; returns the households scored, or None when a lock was not granted in time
    (nothing changed: upsert instead). ``connection``: a Session or Connection in a
    PostgreSQL transaction (``sql.prepare_for_bulk`` already run)."""
    statement = new_scores_select(model, code, version, "postgresql", as_of, now)
    savepoint = connection.begin_nested()
    try:
        connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        connection.execute(text(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE"))
        columns = _columns(connection)
        fill = statement.fill(lambda scores, _code: _new_rows_sql(scores, columns))
        scored = int(connection.execute(fill).rowcount)
        connection.execute(
            text(
                f"INSERT INTO {NEXT} ({ALL_COLUMNS}) SELECT {ALL_COLUMNS} FROM {TABLE}"
                " WHERE model_code <> :code"
            ),
            {"code": code},
        )
        connection.execute(text(_shape_sql(columns)))
        connection.execute(text(f"ANALYZE {NEXT} ({ANALYZED})"))
        if not _take_over(connection):
            savepoint.rollback()
            return None
        connection.execute(text(f"DROP TABLE {TABLE}"))
        connection.execute(text(f"ALTER TABLE {NEXT} RENAME TO {TABLE}"))
        connection.execute(text(f"ALTER TABLE {TABLE} RENAME CONSTRAINT {NEXT}_key TO {KEY}"))
        connection.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) not in (LOCK_NOT_AVAILABLE, DEADLOCK):
            raise
        savepoint.rollback()
        return None
    savepoint.commit()
    return scored


def _take_over(connection: Any) -> bool:
    """The old table's ``ACCESS EXCLUSIVE`` lock, tried ``TAKE_OVER_TRIES`` times for
    ``TAKE_OVER_TIMEOUT`` each. Why short tries: a transaction that read the old table and now
    waits to write a score (behind our ``EXCLUSIVE`` lock) will never let go, and waiting on
    it would be a deadlock that PostgreSQL resolves after ``deadlock_timeout`` (1 s by
    default) by aborting one of the two, possibly the scoring worker's. Giving up first (the
    caller rolls the whole attempt back, releasing the worker, and upserts) avoids it; a
    plain reader (a simulation) is waited for across the tries."""
    for _ in range(TAKE_OVER_TRIES):
        attempt = connection.begin_nested()
        try:
            connection.execute(text(f"SET LOCAL lock_timeout = '{TAKE_OVER_TIMEOUT}'"))
            connection.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in (LOCK_NOT_AVAILABLE, DEADLOCK):
                raise
            attempt.rollback()
            continue
        attempt.commit()
        return True
    return False
