"""``srhub backup`` and ``srhub restore``: one archive per run, checked both ways.

Nightly, from cron or a systemd timer (docs/operations.md, "Backups")::

    srhub backup --to /srv/backups/srhub --keep 14

The key files go elsewhere, once and after every key change::

    srhub backup --to /srv/backups/srhub --keys-to /media/keys-usb/srhub-2026-12
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hub.cli.errors import CommandError
from hub.settings import load_settings


def _fail(exc: Exception) -> CommandError:
    return CommandError(str(exc))


@click.command()
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the archive (default: <data_dir>/backups).",
)
@click.option("--keep", type=int, default=None, help="Keep only the newest N archives there.")
@click.option(
    "--keys-to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also copy the local key files into this (new or empty) folder, kept apart.",
)
def backup(folder: Path | None, keep: int | None, keys_to: Path | None) -> None:
    """Write a consistent backup of the registry database while the hub runs."""
    from hub.backup import BackupError, make_backup
    from hub.backup.archive import describe
    from hub.backup.keys import export_keys

    settings = load_settings()
    try:
        result = make_backup(settings, folder or settings.data_dir / "backups", keep=keep)
        written = export_keys(settings, keys_to) if keys_to is not None else []
    except BackupError as exc:
        raise _fail(exc) from exc
    summary = describe(result.manifest) | {
        "archive": str(result.archive),
        "pruned": [p.name for p in result.removed],
        "key_files": [str(p) for p in written],
    }
    click.echo(json.dumps(summary, indent=2))


@click.command()
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--replace",
    is_flag=True,
    help="Overwrite a database that already holds tables (stop the hub first).",
)
@click.option(
    "--keys-from",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Put the key files saved by `srhub backup --keys-to` in place first.",
)
def restore(archive: Path, replace: bool, keys_from: Path | None) -> None:
    """Restore a backup archive into the database SRHUB_DATABASE_URL names."""
    from hub.backup import BackupError, restore_backup
    from hub.backup.archive import describe

    try:
        result = restore_backup(load_settings(), archive, replace=replace, keys_from=keys_from)
    except BackupError as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps(describe(result.manifest) | {"restored": True}, indent=2))
    if result.needs_upgrade:
        click.echo("the backup's schema is older than this hub's: run `srhub db upgrade` next")
