"""PostgreSQL: ``pg_dump`` custom format, counted in the very snapshot it dumps.

The manifest's row counts must describe the dump exactly, even while the hub writes: the
counts run in a REPEATABLE READ transaction whose snapshot is exported
(``pg_export_snapshot()``) and handed to ``pg_dump --snapshot``, so both read the same
instant. Restores go through ``pg_restore --single-transaction``: a failure leaves the target
as it was. The password travels in ``PGPASSWORD``, never on a command line ``ps`` can show.
"""

# ruff: noqa: S608 - table names come from the database's own catalog and are quoted
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from hub.backup.archive import BackupError
from registry_core.db import make_engine

_LIST_TABLES = text(
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on PATH: install the PostgreSQL client of the server's major "
            f"version (Debian: apt install postgresql-client-<major>)"
        )
    return found


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq reads it (no driver suffix, no password) and the environment that
    carries the password."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    # the tools' paths come from shutil.which and the arguments from the hub's own settings
    finished = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        detail = (finished.stderr or finished.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: {' | '.join(detail[-3:]) or finished.returncode}")


def _counts(conn: Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in conn.execute(_LIST_TABLES).scalars():
        quoted = str(name).replace('"', '""')
        counts[str(name)] = int(conn.execute(text(f'SELECT count(*) FROM "{quoted}"')).scalar_one())
    return counts


def _revision(conn: Connection, tables: dict[str, int] | list[str]) -> str | None:
    if "alembic_version" not in tables:
        return None
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(found) if found is not None else None


def dump(url: str, target: Path) -> tuple[dict[str, int], str | None]:
    """Dump the database to ``target``; return its row counts and schema revision, read in
    the dump's own snapshot."""
    pg_dump = _tool("pg_dump")
    engine = make_engine(url)
    try:
        snapshot_reader = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with snapshot_reader as conn, conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            counts = _counts(conn)
            revision = _revision(conn, counts)
            libpq, env = libpq_target(url)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    f"--dbname={libpq}",
                ],
                env,
                "pg_dump",
            )
    finally:
        engine.dispose()
    return counts, revision


def table_rows(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _counts(conn)
    finally:
        engine.dispose()


def has_tables(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(_LIST_TABLES).first() is not None
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _revision(conn, list(conn.execute(_LIST_TABLES).scalars()))
    finally:
        engine.dispose()


def empty_schema(url: str) -> None:
    """Drop every table of the hub's schema (the target of a ``--replace`` restore)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            names = list(conn.execute(_LIST_TABLES).scalars())
            if names:
                quoted = ", ".join('"{}"'.format(str(n).replace('"', '""')) for n in names)
                conn.execute(text(f"DROP TABLE {quoted} CASCADE"))
            for kind in ("SEQUENCE", "TYPE", "FUNCTION"):
                _drop_remaining(conn, kind)
    finally:
        engine.dispose()


def _drop_remaining(conn: Connection, kind: str) -> None:
    if kind == "SEQUENCE":
        query = text(
            "SELECT sequence_name FROM information_schema.sequences "
            "WHERE sequence_schema = current_schema()"
        )
    elif kind == "TYPE":  # enum types the migrations created
        query = text(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = current_schema() AND t.typtype = 'e'"
        )
    else:
        # Functions the migrations created: the read audit's append-only guard, the member
        # profiles' triggers and their refresh function. Not an extension's: those belong to
        # the extension (pg_depend 'e') and go with it.
        query = text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = current_schema() AND NOT EXISTS ("
            "SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
        )
        for signature in list(conn.execute(query).scalars()):
            # regprocedure's text is already quoted where needed: name(argument types)
            conn.execute(text(f"DROP FUNCTION IF EXISTS {signature} CASCADE"))
        return
    for name in list(conn.execute(query).scalars()):
        conn.execute(
            text('DROP {} IF EXISTS "{}" CASCADE'.format(kind, str(name).replace('"', '""')))
        )


def restore(dump_file: Path, url: str) -> None:
    pg_restore = _tool("pg_restore")
    libpq, env = libpq_target(url)
    _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={libpq}",
            str(dump_file),
        ],
        env,
        "pg_restore",
    )
