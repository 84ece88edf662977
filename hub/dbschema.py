"""The database schema as a whole: which modules declare tables, and how to bring a database
to the current schema (Alembic migrations to head)."""

from __future__ import annotations

import importlib

from sqlalchemy import Table

from registry_core.db import Base, make_engine

# Every module that declares tables on registry_core.db.Base. Alembic and the tests import
# these so that the metadata is complete.
MODEL_MODULES: tuple[str, ...] = (
    "registry_core.models",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def all_tables() -> list[Table]:
    import_all_models()
    return list(Base.metadata.sorted_tables)


def upgrade_to_head(url: str) -> None:
    """Create or migrate the schema of the database at ``url`` to the newest revision."""
    import_all_models()
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
