"""Fixtures shared by every test: databases on both backends, settings, keys.

``db_url`` is parametrised over SQLite and PostgreSQL, so every test that asks for a database
runs on both. PostgreSQL tests get a database of their own per test session (created and
dropped here), so concurrent runs on one server never see each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from tests.browser_support import browser  # noqa: F401 - every page test's Chromium
from tests.services import postgres_url_or_skip, unique_name

# The suite's flows send thousands of requests, and dozens of deliberately bad credentials,
# from one address within seconds: the rate limits are off unless a test turns them on
# (tests/integration/test_rate_limits.py and test_serve_rate_limits.py do).
os.environ.setdefault("SRHUB_RATE_LIMITS__ENABLED", "false")


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (named ``<prefix>_<pid>_<random>``), dropped after."""
    admin_url = make_url(postgres_url_or_skip()).set(drivername="postgresql+psycopg")
    name = unique_name(prefix)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
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


def _truncate_all(engine: Engine) -> None:
    from hub.dbschema import all_tables

    names = ", ".join(f'"{t.name}"' for t in all_tables())
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: a new SQLite file, or the session's PostgreSQL database
    emptied before the test."""
    if request.param == "sqlite":
        from hub.dbschema import upgrade_to_head

        url = f"sqlite:///{(tmp_path / 'srhub.db').as_posix()}"
        upgrade_to_head(url)
        yield url
        return
    url = request.getfixturevalue("postgres_schema_ready")
    engine = create_engine(make_url(url))
    try:
        _truncate_all(engine)
    finally:
        engine.dispose()
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
