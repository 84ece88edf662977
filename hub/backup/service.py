"""Make and restore backups: the steps, their order and every check between them."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy.engine import make_url

from hub.backup import keys as backup_keys
from hub.backup import postgres_backend, sqlite_backend
from hub.backup.archive import (
    BackupError,
    Manifest,
    extract_dump,
    read_manifest,
    sha256_of,
    write_archive,
)
from hub.settings import Settings

ARCHIVE_PREFIX = "srhub-backup-"
ARCHIVE_SUFFIX = ".tar"


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    manifest: Manifest
    removed: tuple[Path, ...] = ()  # older archives pruned by ``keep``


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    needs_upgrade: bool  # the backup's schema is older than this hub's: run `srhub db upgrade`


def _backend(url: str) -> str:
    driver = make_url(url).drivername
    if driver.startswith("sqlite"):
        return "sqlite"
    if driver.startswith("postgres"):
        return "postgresql"
    raise BackupError(f"backups cover SQLite and PostgreSQL, not {driver}")


def _hub_version() -> str:
    try:
        return version("social-registry-hub")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def _archive_name(folder: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = folder / f"{ARCHIVE_PREFIX}{stamp}{ARCHIVE_SUFFIX}"
    counter = 1
    while candidate.exists():
        candidate = folder / f"{ARCHIVE_PREFIX}{stamp}-{counter}{ARCHIVE_SUFFIX}"
        counter += 1
    return candidate


def make_backup(
    settings: Settings, folder: Path, *, keep: int | None = None, now: datetime | None = None
) -> BackupResult:
    """Write one archive of the hub's database into ``folder``; keep the newest ``keep``."""
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1: the newest backup is never pruned")
    url = settings.effective_database_url
    backend = _backend(url)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    when = now or datetime.now(UTC)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".srhub-backup-") as work:
        dump_file = Path(work) / ("database.sqlite" if backend == "sqlite" else "database.pgdump")
        if backend == "sqlite":
            sqlite_backend.dump(sqlite_backend.sqlite_path(make_url(url).database), dump_file)
            rows = sqlite_backend.table_rows(dump_file)
            revision = sqlite_backend.revision(dump_file)
        else:
            rows, revision = postgres_backend.dump(url, dump_file)
        manifest = Manifest(
            backend=backend,
            created_at=when.astimezone(UTC).isoformat(timespec="seconds"),
            hub_version=_hub_version(),
            schema_revision=revision,
            dump_sha256=sha256_of(dump_file),
            dump_bytes=dump_file.stat().st_size,
            table_rows=rows,
            keys_fingerprint=backup_keys.fingerprint(settings),
        )
        archive = _archive_name(folder, when)
        write_archive(archive, manifest, dump_file)
    removed = prune(folder, keep) if keep is not None else ()
    return BackupResult(archive, manifest, removed)


def prune(folder: Path, keep: int) -> tuple[Path, ...]:
    """Delete all but the newest ``keep`` archives (names sort by their UTC time)."""
    archives = sorted(p for p in folder.glob(f"{ARCHIVE_PREFIX}*{ARCHIVE_SUFFIX}") if p.is_file())
    old = archives[:-keep] if len(archives) > keep else []
    for path in old:
        path.unlink()
    return tuple(old)


def _check_revision(manifest: Manifest) -> bool:
    """True when the backup's schema is behind this hub's head (an upgrade follows)."""
    from hub.dbschema import head_revision, is_known_revision

    if manifest.schema_revision is None:
        raise BackupError("the backup holds no hub schema (no alembic_version): nothing to restore")
    if not is_known_revision(manifest.schema_revision):
        raise BackupError(
            f"the backup's schema {manifest.schema_revision} is unknown to this hub "
            f"(hub {_hub_version()}; it was written by hub {manifest.hub_version}): restore it "
            "with that version or a newer one"
        )
    return manifest.schema_revision != head_revision()


def _check_keys(settings: Settings, manifest: Manifest) -> None:
    if manifest.keys_fingerprint is None:
        return
    current = backup_keys.fingerprints(settings)
    if current is None:
        raise BackupError(
            "the hub has no identifier keys yet, and the backup's identifiers are sealed: put "
            "the backup's key file in place (`--keys-from FOLDER`, written by `srhub backup "
            "--keys-to`), or set the keys from your secret store"
        )
    # Every key version the backup's data was sealed under must be held here (a backup taken
    # before a rotation restores as long as its version has not been retired).
    if not set(manifest.keys_fingerprint.split(",")) <= current:
        raise BackupError(
            "the hub's identifier keys are not the ones this backup was sealed with (their "
            "fingerprints differ): restore the matching key file first (`--keys-from`), or "
            "its identifiers would be unreadable"
        )


def restore_backup(
    settings: Settings, archive: Path, *, replace: bool = False, keys_from: Path | None = None
) -> RestoreResult:
    """Check the archive, the keys and the target, put the data back, then check the rows."""
    manifest = read_manifest(archive)
    url = settings.effective_database_url
    backend = _backend(url)
    if backend != manifest.backend:
        raise BackupError(
            f"this is a {manifest.backend} backup and the hub's database is {backend}: restore "
            "it into the same kind of database"
        )
    needs_upgrade = _check_revision(manifest)
    if keys_from is not None:
        backup_keys.import_keys(settings, keys_from)
    _check_keys(settings, manifest)
    if backend == "sqlite":
        target = sqlite_backend.sqlite_path(make_url(url).database)
        occupied = sqlite_backend.has_tables(target)
    else:
        occupied = postgres_backend.has_tables(url)
    if occupied and not replace:
        raise BackupError(
            "the target database already holds tables: stop the hub and pass --replace to "
            "overwrite it, or point SRHUB_DATABASE_URL at an empty database"
        )
    with tempfile.TemporaryDirectory(prefix=".srhub-restore-") as work:
        dump_file = extract_dump(archive, manifest, Path(work))
        if backend == "sqlite":
            sqlite_backend.restore(dump_file, target)
            restored = sqlite_backend.table_rows(target)
        else:
            if occupied:
                postgres_backend.empty_schema(url)
            postgres_backend.restore(dump_file, url)
            restored = postgres_backend.table_rows(url)
    if restored != manifest.table_rows:
        differing = sorted(
            name
            for name in set(restored) | set(manifest.table_rows)
            if restored.get(name) != manifest.table_rows.get(name)
        )
        raise BackupError(
            f"the restored database does not hold what the backup counted (tables differ: "
            f"{', '.join(differing[:10])}); do not start the hub on it"
        )
    return RestoreResult(manifest, needs_upgrade)
