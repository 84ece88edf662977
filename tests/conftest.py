"""Fixtures shared by every test: databases on both backends, settings, keys.

``db_url`` is parametrised over SQLite and PostgreSQL, so every test that asks for a database
runs on both. PostgreSQL tests get a database of their own per test session (created and
dropped here), so concurrent runs on one server never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from tests.browser_support import browser, chromium_session  # noqa: F401 - page tests' Chromium
from tests.services import postgres_url_or_skip, unique_name

# The suite's flows send thousands of requests, and dozens of deliberately bad credentials,
# from one address within seconds: the rate limits are off unless a test turns them on
# (tests/integration/test_rate_limits.py and test_serve_rate_limits.py do).
os.environ.setdefault("SRHUB_RATE_LIMITS__ENABLED", "false")


# Users made by the tests store scrypt hashes with N = 2**10 instead of the production 2**15
# (~0.1 s per hash and per login on the CI machine, paid hundreds of times). The hash is still
# scrypt, stored with its parameters and checked by the production code; only the cost differs.
# tests/integration/test_dashboard_parts.py uses the same cheap parameters for its own hashes.
TEST_SCRYPT_N = 2**10


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    from functools import partial

    from hub.openrosa import accounts
    from hub.ui import passwords

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "hash_password", partial(passwords.hash_password, n=TEST_SCRYPT_N))
        yield


@contextmanager
def fresh_postgres_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (named ``<prefix>_<pid>_<random>``), dropped after: empty, or
    a copy of the database ``template`` (which nobody may be connected to meanwhile)."""
    admin_url = make_url(postgres_url_or_skip()).set(drivername="postgresql+psycopg")
    name = unique_name(prefix)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    copied = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copied}'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session; dropped afterwards."""
    with fresh_postgres_database("srhub_test") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_schema_ready(postgres_server_database: str) -> str:
    """The session's PostgreSQL database with the full schema migrated to head, once."""
    from hub.dbschema import upgrade_to_head

    upgrade_to_head(postgres_server_database)
    return postgres_server_database


@pytest.fixture(scope="session")
def postgres_reset(postgres_schema_ready: str) -> Iterator[Callable[[], None]]:
    """Empties the session's PostgreSQL database (see ``tests.db_reset``); one engine and one
    look at the schema for the whole session."""
    from hub.dbschema import all_tables
    from tests.db_reset import Schema, reset

    engine = create_engine(make_url(postgres_schema_ready), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            schema = Schema.read(connection, [t.name for t in all_tables()])
        yield lambda: reset(engine, schema)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_schema_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; each test gets a copy of it.

    Migrating a new file took ~0.7 s per test; copying the migrated one takes ~20 ms and gives
    the same schema (the migrations themselves are tested in test_migrations.py). The engine
    that migrated it is disposed, so WAL is checkpointed into the file before it is copied.
    """
    from hub.dbschema import upgrade_to_head

    path = tmp_path_factory.mktemp("sqlite-template") / "srhub.db"
    upgrade_to_head(f"sqlite:///{path.as_posix()}")
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        assert not leftover.exists() or leftover.stat().st_size == 0, leftover
    return path


def migrated_sqlite(template: Path, path: Path) -> str:
    """A copy of the migrated template at ``path``; returns its URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return f"sqlite:///{path.as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: a new SQLite file (a copy of the session's migrated
    one), or the session's PostgreSQL database emptied before the test."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_schema_template")
        yield migrated_sqlite(template, tmp_path / "srhub.db")
        return
    url = request.getfixturevalue("postgres_schema_ready")
    request.getfixturevalue("postgres_reset")()
    yield url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    from registry_core.db import make_engine

    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def cipher():
    import os

    from registry_core.crypto import IdentifierCipher

    return IdentifierCipher(os.urandom(32), os.urandom(32))


@pytest.fixture
def registry(db_engine: Engine, cipher):
    """Registry services over the parametrised database, built-in identifier systems present."""
    from registry_core.db import make_session_factory
    from registry_core.service import Registry

    service = Registry(make_session_factory(db_engine), cipher)
    service.ensure_identifier_systems()
    return service
