"""SQLite: the online backup API copies a consistent image while the hub keeps running.

``sqlite3.Connection.backup`` copies page by page under SQLite's own locking, so a hub writing
at the same time is neither stopped nor seen half-way: the copy is one transaction's view. The
restore goes the same way in reverse (the backup file is the source, the live file the
destination), so other connections see the old database or the new one, never a mix.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from hub.backup.archive import BackupError

_PAGES_PER_STEP = 4096  # ~16 MiB per step at 4 KiB pages: the hub's writers get turns


def sqlite_path(url_database: str | None) -> Path:
    if not url_database or url_database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url_database)


def dump(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"the SQLite database {source} does not exist")
    with closing(_connect(source)) as live, closing(sqlite3.connect(target)) as copy:
        live.backup(copy, pages=_PAGES_PER_STEP)


def table_rows(database: Path) -> dict[str, int]:
    with closing(_connect(database, read_only=True)) as conn:
        return _counts(conn)


def revision(database: Path) -> str | None:
    with closing(_connect(database, read_only=True)) as conn:
        return _revision(conn)


def has_tables(database: Path) -> bool:
    if not database.is_file():
        return False
    with closing(_connect(database, read_only=True)) as conn:
        return bool(_names(conn))


def restore(dump_file: Path, target: Path) -> None:
    with closing(_connect(dump_file, read_only=True)) as source:
        verdict = source.execute("PRAGMA integrity_check").fetchone()
        if not verdict or verdict[0] != "ok":
            raise BackupError(f"the SQLite dump fails its integrity check: {verdict}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(target, timeout=30)) as live:
            source.backup(live, pages=_PAGES_PER_STEP)


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30)


def _names(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in _names(conn):
        quoted = name.replace('"', '""')
        # the name comes from sqlite_master and is quoted
        query = f'SELECT count(*) FROM "{quoted}"'  # noqa: S608
        counts[name] = int(conn.execute(query).fetchone()[0])
    return counts


def _revision(conn: sqlite3.Connection) -> str | None:
    if "alembic_version" not in _names(conn):
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None
