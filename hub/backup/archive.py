"""The backup archive: a plain tar with ``manifest.json`` and one database file.

Plain tar because both dumps are already what they should be (SQLite pages, or pg_dump's
compressed custom format) and any operator tool (``tar tf``, ``age``, ``rsync``) handles it.
Reading never extracts to paths named by the archive: the two members are looked up by their
fixed names and streamed, so a crafted archive cannot write outside the restore folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

MANIFEST = "manifest.json"
FORMAT = "srhub-backup/1"
DUMP_NAMES = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}


class BackupError(Exception):
    """A backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    """What a restore checks: where the dump came from and what it must hold."""

    backend: str  # "sqlite" or "postgresql"
    created_at: str  # ISO 8601, UTC
    hub_version: str
    schema_revision: str | None
    dump_sha256: str
    dump_bytes: int
    table_rows: dict[str, int] = field(default_factory=dict)
    keys_fingerprint: str | None = None
    format: str = FORMAT

    @property
    def dump_name(self) -> str:
        return DUMP_NAMES[self.backend]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BackupError(f"the archive's {MANIFEST} is not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupError(
                f"the archive's {MANIFEST} is not a {FORMAT} manifest; was it written by "
                "`srhub backup`?"
            )
        if data.get("backend") not in DUMP_NAMES:
            raise BackupError(f"the archive names an unknown database kind {data.get('backend')!r}")
        rows = data.get("table_rows") or {}
        if not isinstance(rows, dict) or not all(isinstance(v, int) for v in rows.values()):
            raise BackupError(f"the archive's {MANIFEST} has malformed table counts")
        try:
            return cls(
                backend=str(data["backend"]),
                created_at=str(data["created_at"]),
                hub_version=str(data["hub_version"]),
                schema_revision=data.get("schema_revision"),
                dump_sha256=str(data["dump_sha256"]),
                dump_bytes=int(data["dump_bytes"]),
                table_rows={str(k): int(v) for k, v in rows.items()},
                keys_fingerprint=data.get("keys_fingerprint"),
            )
        except KeyError as exc:
            raise BackupError(f"the archive's {MANIFEST} lacks {exc.args[0]!r}") from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_archive(target: Path, manifest: Manifest, dump: Path) -> None:
    """Write the archive next to ``target`` and rename it into place, so a crash mid-way never
    leaves a file that looks like a finished backup."""
    partial = target.with_name(f".{target.name}.partial")
    with tarfile.open(partial, "w") as tar:
        info = tarfile.TarInfo(MANIFEST)
        body = manifest.to_json()
        info.size = len(body)
        info.mode = 0o600
        tar.addfile(info, io.BytesIO(body))
        tar.add(dump, arcname=manifest.dump_name, recursive=False)
    partial.chmod(0o600)
    partial.replace(target)


def read_manifest(archive: Path) -> Manifest:
    with _open(archive) as tar:
        return Manifest.from_json(_member(tar, MANIFEST).read())


def extract_dump(archive: Path, manifest: Manifest, into: Path) -> Path:
    """Stream the dump out of the archive into ``into`` and check its checksum and size."""
    target = into / manifest.dump_name
    with _open(archive) as tar, target.open("wb") as out:
        shutil.copyfileobj(_member(tar, manifest.dump_name), out, 1 << 20)
    size = target.stat().st_size
    if size != manifest.dump_bytes or sha256_of(target) != manifest.dump_sha256:
        raise BackupError(
            f"the dump in {archive.name} does not match its manifest (size or SHA-256 differ): "
            "the archive is damaged; restore an earlier one"
        )
    return target


def _open(archive: Path) -> tarfile.TarFile:
    if not archive.is_file():
        raise BackupError(f"{archive} is not a file")
    try:
        return tarfile.open(archive, "r:")
    except tarfile.TarError as exc:
        raise BackupError(f"{archive} is not a backup archive (tar): {exc}") from exc


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        info = tar.getmember(name)
    except KeyError as exc:
        raise BackupError(f"the archive has no {name}") from exc
    if not info.isfile():
        raise BackupError(f"the archive's {name} is not a regular file")
    extracted = tar.extractfile(info)
    if extracted is None:  # pragma: no cover - isfile() above
        raise BackupError(f"the archive's {name} cannot be read")
    return extracted


def describe(manifest: Manifest) -> dict[str, Any]:
    """The manifest as the CLI prints it (no key material: the fingerprint is one-way)."""
    return {
        "backend": manifest.backend,
        "created_at": manifest.created_at,
        "schema_revision": manifest.schema_revision,
        "hub_version": manifest.hub_version,
        "tables": len(manifest.table_rows),
        "rows": sum(manifest.table_rows.values()),
    }
