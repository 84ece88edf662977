"""The database schema as a whole: which modules declare tables, how to bring a database to
the current schema (Alembic migrations to head), and the check that refuses to work on a
database whose schema is not at head.

Only ``srhub db upgrade`` and ``srhub run`` migrate: every other command checks with
``require_current_schema`` and stops with what to run, so a command never changes the schema
of a production database behind its operator's back.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, inspect, text
from sqlalchemy.exc import InterfaceError, OperationalError

from registry_core.db import Base, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")

# Every module that declares tables on registry_core.db.Base. Alembic and the tests import
# these so that the metadata is complete.
MODEL_MODULES: tuple[str, ...] = (
    "registry_core.models",
    "registry_core.scoring.tables",
    "registry_core.scoring.profiles",
    "registry_core.reports.tables",
    "registry_core.simulation.tables",
    "registry_core.geography.tables",
    "registry_core.reports.snapshots",
    "hub.auth.tables",
    "hub.workers.idempotency",
    "hub.broker.embedded_tables",
    "hub.checkpoints",
    "hub.dci.tables",
    "hub.ui.tables",
    "hub.monitoring.tables",
    "hub.subscriptions.tables",
    "hub.intake.tables",
    "hub.review.tables",
    "hub.corrections.tables",
    "hub.crosscheck.tables",
    "hub.quality.tables",
    "hub.duplicates.tables",
    "hub.ratelimit.tables",
    "hub.readaudit.tables",
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


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached (or refuses the connection). The message names it
    without its password and says what failed."""


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this code needs; the message says what to run."""


def describe(engine: Engine) -> str:
    """The database's URL without its password, for messages."""
    url = engine.url.set(drivername=engine.url.get_backend_name())  # as the operator wrote it
    return url.render_as_string(hide_password=True)


@contextmanager
def connected(engine: Engine, *, begin: bool = False) -> Iterator[Connection]:
    """A connection (in a transaction with ``begin``); a database that cannot be reached is a
    ``DatabaseUnavailable`` naming it and the reason."""
    try:
        connection = engine.connect()
    except (OperationalError, InterfaceError) as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise DatabaseUnavailable(
            f"cannot reach the database {describe(engine)}: {reason}; check that it runs and "
            "SRHUB_DATABASE_URL (user, password, host, database name)"
        ) from exc
    with connection:
        if begin:
            with connection.begin():
                yield connection
        else:
            yield connection


def upgrade_to_head(url: str) -> None:
    """Create or migrate the schema of the database at ``url`` to the newest revision."""
    engine = make_engine(url)
    try:
        with connected(engine, begin=True) as connection:
            restamp_legacy_revision(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def _revision(connection: Connection) -> str | None:
    current = MigrationContext.configure(connection).get_current_revision()
    return LEGACY_REVISIONS.get(current, current) if current else current


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with connected(engine) as connection:
            return _revision(connection)
    finally:
        engine.dispose()


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision of this code's migration chain."""
    head = _scripts().get_current_head()
    assert head is not None, "the migration chain is empty"
    return head


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` belongs to this code's migration chain (a backup or database
    written by a newer hub carries one this code does not know)."""
    from alembic.util.exc import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def require_current_schema(engine: Engine) -> None:
    """Return when the database's schema is at head; else raise ``SchemaNotCurrent`` saying
    what to do (``DatabaseUnavailable`` when it cannot be reached)."""
    with connected(engine) as connection:
        current = _revision(connection)
    head = head_revision()
    if current == head:
        return
    where = describe(engine)
    if current is None:
        raise SchemaNotCurrent(
            f"the database {where} has no hub schema yet: run `srhub db upgrade` first "
            "(`srhub run` also migrates)"
        )
    known = {script.revision for script in _scripts().walk_revisions()}
    if current in known:
        raise SchemaNotCurrent(
            f"the database {where} is at schema revision {current}, this srhub needs {head}: "
            "run `srhub db upgrade`"
        )
    raise SchemaNotCurrent(
        f"the database {where} is at schema revision {current}, which this srhub does not know "
        "(a newer srhub migrated it); use that version of srhub"
    )
