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


def test_the_chain_runs_in_file_order_and_old_stamps_are_renamed(tmp_path):
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from hub.dbschema import LEGACY_REVISIONS, MIGRATIONS, alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    ordered = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    files = sorted(p.stem for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    # Each file's revision id starts with its number, and the chain runs in file order.
    assert [rev[:4] for rev in ordered] == [name[:4] for name in files]
    assert all(len(rev) <= 32 for rev in ordered)  # alembic_version.version_num is 32 wide
    assert set(LEGACY_REVISIONS.values()) <= set(ordered)

    # A database migrated by the old chain up to its "0002" (subscriptions, the fourth step)
    # is re-stamped with that step's new id, then upgraded from there to head.
    from alembic import command

    url = f"sqlite:///{(tmp_path / 'old.db').as_posix()}"
    command.upgrade(alembic_config(url), "0004_subscriptions")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
            assert not inspect(conn).has_table("dci_unsigned_senders")
        assert current_revision(url) == "0004_subscriptions"
        upgrade_to_head(url)  # runs the steps after the fourth, once
        assert current_revision(url) == ordered[-1]
        with engine.connect() as conn:
            assert inspect(conn).has_table("dci_unsigned_senders")
            stamped = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert stamped == ordered[-1]
    finally:
        engine.dispose()
