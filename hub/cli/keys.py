"""``srhub keys``: rotate the identifier keys online (docs/identifiers.md, docs/operations.md).

``rotate`` adds a version that new writes use at once; ``rekey`` moves stored rows to it in
batches while the hub runs; ``status`` counts rows per version; ``retire`` removes a version
no row uses any more. Key material is never printed.
"""

from __future__ import annotations

import click

from hub.cli.database import hub_runtime
from hub.cli.errors import CommandError
from hub.settings import load_settings


@click.group()
def keys() -> None:
    """Rotate the identifier encryption and look-up keys."""


def _counts() -> tuple[dict[str, dict[int, int]], list[int], int]:
    from hub.keyrotation.keyfile import KeyRotationError, held_versions
    from hub.keyrotation.rekey import version_counts

    settings = load_settings()
    try:
        held, active = held_versions(settings)
    except KeyRotationError as exc:
        raise CommandError(str(exc)) from None
    with hub_runtime(settings) as runtime, runtime.sessions() as session:
        return version_counts(session, settings.openrosa.realm), held, active


@keys.command("status")
def status() -> None:
    """Rows per key version, by column, and the versions held."""
    from hub.keyrotation.rekey import rows_using

    counts, held, active = _counts()
    click.echo(f"versions held: {', '.join(map(str, held))}; active: {active}")
    for version in held:
        click.echo(f"version {version}: {rows_using(counts, version)} rows")
    for column, per in counts.items():
        shown = ", ".join(f"v{v}={n}" for v, n in sorted(per.items())) or "no rows"
        click.echo(f"  {column}: {shown}")


@keys.command("rotate")
@click.option(
    "--inactive",
    is_flag=True,
    help="Add the version without writing with it yet (hubs on several machines: copy the "
    "key file to all, then `srhub keys activate`).",
)
def rotate_command(inactive: bool) -> None:
    """Add a new key version; new writes use it at once (running hubs within a second)."""
    from hub.keyrotation.keyfile import KeyRotationError, rotate

    try:
        version = rotate(load_settings(), activate=not inactive)
    except KeyRotationError as exc:
        raise CommandError(str(exc)) from None
    if inactive:
        click.echo(f"key version {version} added, not active; `srhub keys activate {version}`")
    else:
        click.echo(f"key version {version} added and active; now run `srhub keys rekey`")


@keys.command("activate")
@click.argument("version", type=click.IntRange(1, 255))
def activate_command(version: int) -> None:
    """Make VERSION (added with `rotate --inactive`) the one new writes use."""
    from hub.keyrotation.keyfile import KeyRotationError, activate

    try:
        activate(load_settings(), version)
    except KeyRotationError as exc:
        raise CommandError(str(exc)) from None
    click.echo(f"key version {version} active; now run `srhub keys rekey`")


@keys.command("rekey")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True)
@click.option("--max-batches", type=click.IntRange(1), default=None, help="Stop after this many.")
def rekey_command(batch: int, max_batches: int | None) -> None:
    """Re-encrypt and re-hash stored rows under the active version, in short transactions.
    Safe to stop and run again; the hub keeps serving meanwhile."""
    from hub.keyrotation.rekey import RekeyProgress, rekey

    settings = load_settings()

    def report(column: str, progress: RekeyProgress) -> None:
        click.echo(f"{column}: {progress.moved[column]} moved", err=True)

    with hub_runtime(settings) as runtime:
        progress = rekey(
            runtime.sessions,
            runtime.cipher,
            settings.openrosa.realm,
            batch=batch,
            max_batches=max_batches,
            on_batch=report,
        )
    skipped = sum(progress.skipped.values())
    click.echo(f"moved {progress.total_moved} rows; {skipped} left (changed or unreadable)")


@keys.command("retire")
@click.argument("version", type=click.IntRange(1, 255))
def retire_command(version: int) -> None:
    """Remove VERSION's keys; refused while any row still uses it."""
    from hub.keyrotation.keyfile import KeyRotationError, retire
    from hub.keyrotation.rekey import rows_using

    counts, _held, _active = _counts()
    try:
        retire(load_settings(), version, rows_using(counts, version))
    except KeyRotationError as exc:
        raise CommandError(str(exc)) from None
    click.echo(f"key version {version} retired")
