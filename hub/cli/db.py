"""``srhub db``: bring the database schema to the current version (one of the two commands
that migrate; ``srhub run`` is the other)."""

from __future__ import annotations

import click

from hub.settings import load_settings


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
def upgrade() -> None:
    """Create or migrate the database named by SRHUB_DATABASE_URL to the newest schema."""
    from hub.dbschema import current_revision, upgrade_to_head
    from hub.runtime import HubRuntime

    settings = load_settings()
    url = settings.effective_database_url
    upgrade_to_head(url)
    runtime = HubRuntime(settings)
    try:
        runtime.registry.ensure_identifier_systems()
    finally:
        runtime.close()
    click.echo(f"database at revision {current_revision(url)}")


@db.command()
def current() -> None:
    """Print the schema revision of the database (and whether it is at this version's head)."""
    from hub.dbschema import current_revision, head_revision

    revision = current_revision(load_settings().effective_database_url)
    head = head_revision()
    if revision is None:
        click.echo(f"(empty database; head is {head}: run `srhub db upgrade`)")
    elif revision == head:
        click.echo(revision)
    else:
        click.echo(f"{revision} (head is {head}: run `srhub db upgrade`)")
