"""The keys a backup depends on, handled apart from it.

A backup holds identifiers sealed with the identifier keys, so a restore is worth nothing
without them — and an archive that carried them would hand a thief everything. So the archive
holds only a one-way fingerprint of the identifier keys; the restore refuses when the keys in
place differ. ``--keys-to`` / ``--keys-from`` copy the local key files (identifier keys, DCI
signing key, token signing keyring) to and from a folder the operator keeps elsewhere (another
medium, a secret store's import), mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

from hub.backup.archive import BackupError
from hub.settings import Settings, SettingsError
from hub.settings.keys import KEYRING_FIELD, identifier_versions

_LABEL = b"srhub-backup-keys/1\x00"
KEY_FILE_NAME = "keys.json"
DCI_KEY_NAME = "dci-signing-key.pem"
TOKEN_KEYRING_NAME = "token-signing-keys.json"  # noqa: S105 - a file name


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise BackupError(f"an identifier key is not valid base64: {exc}") from exc


def _identifier_keys(settings: Settings) -> list[tuple[bytes, bytes]] | None:
    """The identifier key versions the hub would use (encryption, look-up), read without
    creating a key file."""
    encryption, lookup = settings.identifier_encryption_key, settings.identifier_hmac_key
    if encryption and lookup:
        return [(_decode(encryption), _decode(lookup))]
    path = settings.effective_key_file
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path} cannot be read as a key file: {exc}") from exc
    if not isinstance(stored, dict):
        raise BackupError(f"{path} is not a key file")
    if not stored.get("identifier_encryption_key") and KEYRING_FIELD not in stored:
        return None
    try:
        versions, _active = identifier_versions(stored)
    except SettingsError as exc:
        raise BackupError(str(exc)) from exc
    return [versions[v] for v in sorted(versions)] or None


def fingerprints(settings: Settings) -> set[str] | None:
    """One one-way digest per identifier key version held (None when the hub has none yet)."""
    keys = _identifier_keys(settings)
    if keys is None:
        return None
    return {hashlib.sha256(_LABEL + enc + look).hexdigest()[:32] for enc, look in keys}


def fingerprint(settings: Settings) -> str | None:
    """The digests of the identifier key versions, comma-separated (one version, as before
    rotation existed: the same single digest every earlier backup holds)."""
    found = fingerprints(settings)
    return ",".join(sorted(found)) if found else None


def _local_key_files(settings: Settings) -> list[tuple[Path, str]]:
    found = [(settings.effective_key_file, KEY_FILE_NAME)]
    dci_key = Path(settings.dci.signing_key_file or settings.data_dir / DCI_KEY_NAME)
    found.append((dci_key, DCI_KEY_NAME))
    found.append((settings.effective_token_keyring_file, TOKEN_KEYRING_NAME))
    return [(path, name) for path, name in found if path.is_file()]


def export_keys(settings: Settings, folder: Path) -> list[Path]:
    """Copy the hub's local key files into ``folder`` (created 0700; files 0600)."""
    files = _local_key_files(settings)
    if not files:
        raise BackupError(
            "the hub has no local key file: its keys come from the settings (a secret store), "
            "which is where they are backed up"
        )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for source, name in files:
        target = folder / name
        if target.exists():
            raise BackupError(f"{target} already exists; give an empty folder for the keys")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
        written.append(target)
    return written


def import_keys(settings: Settings, folder: Path) -> list[Path]:
    """Put key files saved by ``export_keys`` in place. An existing, different key file is
    never overwritten: it may seal data this backup does not hold."""
    if not (folder / KEY_FILE_NAME).is_file():
        raise BackupError(
            f"{folder} holds no {KEY_FILE_NAME} (written by `srhub backup --keys-to`)"
        )
    targets = {
        KEY_FILE_NAME: settings.effective_key_file,
        DCI_KEY_NAME: Path(settings.dci.signing_key_file or settings.data_dir / DCI_KEY_NAME),
        TOKEN_KEYRING_NAME: settings.effective_token_keyring_file,
    }
    placed = []
    for name, target in targets.items():
        source = folder / name
        if not source.is_file():
            continue
        if target.is_file():
            if target.read_bytes() == source.read_bytes():
                continue
            raise BackupError(
                f"{target} already exists with other keys; move it away first if nothing "
                "sealed with it must be kept (the restore needs the backup's keys)"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out)
        placed.append(target)
    return placed
