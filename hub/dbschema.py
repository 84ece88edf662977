"""The database schema as a whole: which modules declare tables, and how to bring a database
to the current schema (Alembic migrations to head)."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Table

from registry_core.db import Base, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")

# Every module that declares tables on registry_core.db.Base. Alembic and the tests import
# these so that the metadata is complete.
MODEL_MODULES: tuple[str, ...] = (
    "registry_core.models",
    "hub.auth.tables",
    "hub.workers.idempotency",
    "hub.broker.embedded_tables",
    "connectors.base.tables",
    "hub.dci.tables",
    "hub.ui.tables",
    "hub.monitoring.tables",
    "hub.subscriptions.tables",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def all_tables() -> list[Table]:
    import_all_models()
    return list(Base.metadata.sorted_tables)


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    """Create or migrate the schema of the database at ``url`` to the newest revision."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
