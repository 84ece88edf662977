"""The database schema as a whole: which modules declare tables, and how to bring a database
to the current schema (Alembic migrations to head)."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Table, inspect, text

from registry_core.db import Base, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")

# Every module that declares tables on registry_core.db.Base. Alembic and the tests import
# these so that the metadata is complete.
MODEL_MODULES: tuple[str, ...] = (
    "registry_core.models",
    "hub.auth.tables",
    "hub.workers.idempotency",
    "hub.broker.embedded_tables",
    "hub.checkpoints",
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


# Revision ids before the chain was renumbered to follow its own order (it ran 0001, 0004,
# 0005, 0002, 0006, 0007, ...). A database stamped with one of them is re-stamped with the new
# id of the same migration before upgrading: same schema, new name.
LEGACY_REVISIONS: dict[str, str] = {
    "0001": "0001_initial",
    "0004": "0002_dashboard_users",
    "0005": "0003_message_log_alerts",
    "0002": "0004_subscriptions",
    "0006": "0005_outbox_index",
    "0007": "0006_delivery_log_index",
    "0008_dci_unsigned": "0007_dci_unsigned",
    "0009": "0008_message_log_notes",
}


def restamp_legacy_revision(connection: Connection) -> str | None:
    """Rename an old revision id in ``alembic_version`` to its new one; returns the new id
    when one was renamed."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    new = LEGACY_REVISIONS.get(str(current)) if current is not None else None
    if new is None:
        return None
    connection.execute(
        text("UPDATE alembic_version SET version_num = :new WHERE version_num = :old"),
        {"new": new, "old": current},
    )
    return new


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
            restamp_legacy_revision(connection)
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
            current = MigrationContext.configure(connection).get_current_revision()
            return LEGACY_REVISIONS.get(current, current) if current else current
    finally:
        engine.dispose()
