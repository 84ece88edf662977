"""Emptying the session's PostgreSQL database between tests, cheaply.

``TRUNCATE`` of every hub table replaces ~200 relation files (tables, indexes, TOAST) per test
and cost 0.7-1.5 s on the CI machine, for ~550 PostgreSQL tests. Most tests leave a handful of
rows in a few tables, so this reset looks which tables hold rows (one query), deletes those
rows (children first), and restarts the sequences that were used: the same empty database with
fresh ids as ``TRUNCATE ... RESTART IDENTITY``, in ~10 ms.

Two kinds of table still get ``TRUNCATE``: tables with many rows (deleting 100,000 rows would
be slower and leave them bloated for the next tests) and tables with ``BEFORE DELETE``
triggers, which may refuse it (the read audit is append-only). Tables that triggers keep from
others (the scoring profiles and their fact keys) are emptied last: deleting the rows they are
kept from refreshes them on the way.
"""

# ruff: noqa: S608 - table names come from the metadata and the catalog, and are quoted
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

# Above this many rows a table is truncated rather than deleted from.
MANY_ROWS = 1000
# Kept by triggers from other tables: emptied after them (``registry_core.scoring.profiles``).
DERIVED = ("scoring_household_profiles", "scoring_fact_keys")


@dataclass(frozen=True)
class Schema:
    """What the reset needs to know about the hub's tables; read once per database."""

    tables: tuple[str, ...]  # parents before children (metadata's sorted order)
    guarded: frozenset[str]  # tables with BEFORE DELETE triggers (DELETE may be refused)
    sequences: tuple[tuple[str, int], ...]  # (sequence, start value) owned by the tables

    @classmethod
    def read(cls, connection: Connection, tables: list[str]) -> Schema:
        guarded = connection.execute(
            text(
                "SELECT DISTINCT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
                "WHERE NOT g.tgisinternal AND c.relname = ANY(:t) "
                # pg_trigger.tgtype: 2 = BEFORE, 8 = DELETE
                "AND g.tgtype & 2 = 2 AND g.tgtype & 8 = 8 "
                "AND c.relnamespace = current_schema()::regnamespace"
            ),
            {"t": tables},
        )
        sequences = connection.execute(
            text(
                "SELECT s.oid::regclass::text, q.seqstart FROM pg_class s "
                "JOIN pg_sequence q ON q.seqrelid = s.oid "
                "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
                "AND d.deptype IN ('a', 'i') "
                "JOIN pg_class t ON t.oid = d.refobjid "
                "WHERE s.relkind = 'S' AND t.relname = ANY(:t) "
                "AND t.relnamespace = current_schema()::regnamespace"
            ),
            {"t": tables},
        )
        return cls(
            tables=tuple(tables),
            guarded=frozenset(row[0] for row in guarded),
            sequences=tuple((row[0], int(row[1])) for row in sequences),
        )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _filled(connection: Connection, schema: Schema) -> dict[str, int]:
    """Tables holding rows, with their row count capped at ``MANY_ROWS + 1``."""
    probe = " UNION ALL ".join(
        f"SELECT {i} AS position, count(*) AS found FROM "
        f"(SELECT 1 FROM {_quoted(name)} LIMIT {MANY_ROWS + 1}) AS x{i}"
        for i, name in enumerate(schema.tables)
    )
    return {
        schema.tables[position]: found
        for position, found in connection.execute(
            text(f"SELECT position, found FROM ({probe}) AS p WHERE found > 0")
        )
    }


def _empty(connection: Connection, schema: Schema) -> None:
    filled = _filled(connection, schema)
    truncate = [name for name, rows in filled.items() if rows > MANY_ROWS or name in schema.guarded]
    if truncate:
        # CASCADE empties the tables that reference them too (they are emptied anyway).
        connection.execute(text(f"TRUNCATE {', '.join(map(_quoted, truncate))} CASCADE"))
    for name in reversed(schema.tables):  # children before parents
        if name in filled and name not in truncate and name not in DERIVED:
            connection.execute(text(f"DELETE FROM {_quoted(name)}"))
    for name in DERIVED:
        if name in schema.tables:
            connection.execute(text(f"DELETE FROM {_quoted(name)}"))
    connection.execute(
        text(
            "SELECT setval(s.name::regclass, s.start, false) "
            "FROM unnest(CAST(:names AS text[]), CAST(:starts AS bigint[])) AS s(name, start) "
            "WHERE pg_sequence_last_value(s.name::regclass) IS NOT NULL"
        ),
        {
            "names": [name for name, _ in schema.sequences],
            "starts": [start for _, start in schema.sequences],
        },
    )


def reset(engine: Engine, schema: Schema) -> None:
    """Empty the hub's tables and restart their sequences (see the module docstring)."""
    with engine.begin() as connection:
        _empty(connection, schema)
