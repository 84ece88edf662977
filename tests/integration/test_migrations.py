"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL,
and running them again changes nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hub.dbschema import all_tables, current_revision, upgrade_to_head
from registry_core.db import Base, make_engine


def test_migrations_match_the_models(db_url: str):
    upgrade_to_head(db_url)  # a second run on a migrated database is a no-op
    assert current_revision(db_url) is not None
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            differences = compare_metadata(context, Base.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert {t.name for t in all_tables()} <= tables
