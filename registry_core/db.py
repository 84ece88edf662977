"""Database plumbing shared by the registry core and the hub's own tables.

One declarative ``Base`` (so Alembic sees a single metadata), portable column types (UUID keys
and timezone-aware times behave the same on SQLite and PostgreSQL), and an engine factory that
puts SQLite into WAL mode with a busy timeout so several worker processes can share one file.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, delete, event, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware in Python, on every backend.

    SQLite has no time zone type: values are stored as naive UTC and given back their zone on
    load. Naive datetimes are refused on the way in, so local times never sneak in unnoticed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; registry times must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """The single declarative base of every table of the project."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from pysqlite; the "begin" listener issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; SQLite files get WAL, a busy timeout and their folder.

    Bound parameters are hidden from SQLAlchemy's error messages and logs
    (``hide_parameters``): they are names, dates of birth, addresses and identifier hashes,
    and an error's text ends up in logs and dead-letter reasons.
    """
    parsed = make_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # BEGIN IMMEDIATE takes the write lock at the start, so a transaction that reads and
        # then writes never fails on a lock upgrade when several processes share the file;
        # WAL keeps plain readers outside transactions unblocked.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for a hot path of reads and single-statement writes.

    On PostgreSQL it runs in autocommit: each statement is its own transaction (one statement
    reads one snapshot; a data-modifying CTE is atomic), so no BEGIN and COMMIT round trips are
    paid. On SQLite (no data-modifying CTEs, one writer at a time) it is one ordinary
    transaction, committed when the block ends without error.
    """
    if is_postgresql(engine):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection
        return
    with engine.begin() as connection:
        yield connection


def delete_older_than(
    session: Session, key: Any, moment: Any, cutoff: datetime, chunk: int = 10_000
) -> int:
    """Delete the rows whose ``moment`` column is before ``cutoff``, oldest first along its
    index, ``chunk`` rows per statement so no statement holds a long lock; ``key`` is the
    primary key column. Returns how many rows were deleted."""
    table = key.class_
    total = 0
    while True:
        keys = (
            session.execute(select(key).where(moment < cutoff).order_by(moment).limit(chunk))
            .scalars()
            .all()
        )
        if not keys:
            return total
        session.execute(delete(table).where(key.in_(keys)))
        total += len(keys)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
