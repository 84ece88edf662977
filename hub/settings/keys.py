"""The hub's secret keys: given in the settings (from a secret store), else kept in a local
key file created on first run, so a fresh checkout works without any configuration."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hub.settings.base import ENV_PREFIX, SettingsError
from hub.settings.model import Settings


@dataclass(frozen=True)
class Keys:
    """The secret keys the hub uses; raw bytes, never logged."""

    jwt_secret: bytes
    identifier_encryption_key: bytes
    identifier_hmac_key: bytes

    def __repr__(self) -> str:  # never print key material
        return "Keys(<redacted>)"


def _decode_key(name: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()} is not valid base64") from exc
    if len(raw) != 32:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()} must decode to 32 bytes, not {len(raw)}")
    return raw


def load_keys(settings: Settings) -> Keys:
    """Return the keys from settings, or from the local key file, creating it on first run.

    The key file is written with mode 0600. Losing it makes stored identifiers unreadable, so
    operations docs tell production to pass keys explicitly from a secret store.
    """
    given = {
        "jwt_secret": settings.jwt_secret,
        "identifier_encryption_key": settings.identifier_encryption_key,
        "identifier_hmac_key": settings.identifier_hmac_key,
    }
    if all(given.values()):
        return Keys(**{k: _decode_key(k, v) for k, v in given.items()})

    path = settings.effective_key_file
    stored = _read_key_file(path)
    missing = [name for name in given if not stored.get(name)]
    if missing:
        fresh = dict(stored)
        for name in missing:
            fresh[name] = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        _write_key_file(path, fresh, replace_existing=bool(stored))
        # Several threads or processes may start at once: whoever created the file first wins,
        # and everyone uses what is on disk, so no two workers ever hold different keys.
        stored = _read_key_file(path)
    merged = {k: (given[k] or stored[k]) for k in given}
    return Keys(**{k: _decode_key(k, v) for k, v in merged.items()})


def _read_key_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        found = None
    if not isinstance(found, dict):
        raise SettingsError(
            f"{path} ({ENV_PREFIX}KEY_FILE) is not a key file (a JSON object of base64 keys); "
            "restore it from its backup: stored identifiers are unreadable without it"
        )
    return {str(k): str(v) for k, v in found.items()}


def _write_key_file(path: Path, keys: dict[str, str], *, replace_existing: bool) -> None:
    """Write a new key file (mode 0600) atomically. A first key file is created with a hard
    link, which fails if another writer got there first; its keys are then kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(keys, fh, indent=2)
        if replace_existing:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
