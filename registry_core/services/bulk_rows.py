"""Writing many rows of one table at once: ``COPY`` on PostgreSQL, a multi-row INSERT elsewhere.

Why: SQLAlchemy's executemany on psycopg sends one INSERT per row (pipelined); a batch of a
bulk load is tens of thousands of rows over eight tables, and ``COPY ... FROM STDIN`` takes
them in one stream, several times faster. SQLite (the embedded registry, the tests) keeps
the portable executemany. Either way the rows go through the caller's transaction.

Values are those the table's columns take; JSON columns are serialised here (``COPY`` reads
text), timestamps must be timezone-aware (as ``UTCDateTime`` requires).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy.orm import Session


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
    names = ", ".join(f'"{c}"' for c in columns)
    driver: Any = connection.connection.driver_connection
    with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row[c], default=_json_default) if c in as_json else row[c]
                    for c in columns
                ]
            )
