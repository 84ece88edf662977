"""The hub's secret keys: given in the settings (from a secret store), else kept in a local
key file created on first run, so a fresh checkout works without any configuration."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.settings.base import ENV_PREFIX, SettingsError
from hub.settings.model import Settings
from registry_core.crypto import LEGACY_VERSION, IdentifierCipher
from standards.identifiers import IdentifierProfile

KEYRING_FIELD = "identifier_keys"  # the key file's versions after a rotation
_LEGACY = ("identifier_encryption_key", "identifier_hmac_key")


@dataclass(frozen=True)
class Keys:
    """The secret keys the hub uses; raw bytes, never logged.

    ``identifier_versions`` holds every identifier key version (encryption key, look-up key)
    and ``identifier_active`` the one new data uses. ``identifier_hmac_key`` is the first
    look-up key: it also keys the pseudonymous references partners hold, which must never
    change, so it stays after its version is retired. ``identifier_encryption_key`` is the
    active encryption key.
    """

    jwt_secret: bytes
    identifier_encryption_key: bytes
    identifier_hmac_key: bytes
    identifier_versions: Mapping[int, tuple[bytes, bytes]] = field(default_factory=dict)
    identifier_active: int = LEGACY_VERSION

    def __repr__(self) -> str:  # never print key material
        return "Keys(<redacted>)"

    def identifier_cipher(self, profile: IdentifierProfile | None = None) -> IdentifierCipher:
        """The identifier cipher holding every version, the active one writing."""
        versions = self.identifier_versions or {
            LEGACY_VERSION: (self.identifier_encryption_key, self.identifier_hmac_key)
        }
        return IdentifierCipher.from_versions(versions, self.identifier_active, profile)


def _decode_key(name: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()} is not valid base64") from exc
    if len(raw) != 32:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()} must decode to 32 bytes, not {len(raw)}")
    return raw


def identifier_versions(stored: Mapping[str, Any]) -> tuple[dict[int, tuple[bytes, bytes]], int]:
    """The identifier key versions of a key file's content and the active one.

    A key file without ``identifier_keys`` (every file written before rotation existed) is
    version 1 alone: its ``identifier_encryption_key`` and ``identifier_hmac_key``. After a
    rotation, version 1 is still those two fields (while the encryption key is there) and later
    versions sit in ``identifier_keys.versions``.
    """
    versions: dict[int, tuple[bytes, bytes]] = {}
    if stored.get("identifier_encryption_key"):
        versions[LEGACY_VERSION] = (
            _decode_key("identifier_encryption_key", str(stored["identifier_encryption_key"])),
            _decode_key("identifier_hmac_key", str(stored.get("identifier_hmac_key", ""))),
        )
    ring = stored.get(KEYRING_FIELD)
    if ring is None:
        return versions, LEGACY_VERSION
    problem = f"{ENV_PREFIX}KEY_FILE: {KEYRING_FIELD} "
    if not isinstance(ring, Mapping) or not isinstance(ring.get("versions"), Mapping):
        raise SettingsError(problem + "must be an object with 'active' and 'versions'")
    for name, pair in ring["versions"].items():
        if not str(name).isdigit() or not 2 <= int(name) <= 255 or not isinstance(pair, Mapping):
            raise SettingsError(problem + f"has a bad version {name!r} (2 to 255, an object)")
        versions[int(name)] = (
            _decode_key(f"identifier_keys.{name}.encryption", str(pair.get("encryption", ""))),
            _decode_key(f"identifier_keys.{name}.lookup", str(pair.get("lookup", ""))),
        )
    active = ring.get("active")
    if not isinstance(active, int) or active not in versions:
        raise SettingsError(problem + f"names an active version ({active!r}) it does not hold")
    return versions, active


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
        return _plain_keys(given)

    path = settings.effective_key_file
    stored = read_key_file(path)
    # After version 1 is retired its encryption key is gone on purpose: not missing.
    required = [n for n in given if n != "identifier_encryption_key" or KEYRING_FIELD not in stored]
    missing = [name for name in required if not stored.get(name)]
    if missing:
        fresh = dict(stored)
        for name in missing:
            fresh[name] = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        write_key_file(path, fresh, replace_existing=bool(stored))
        # Several threads or processes may start at once: whoever created the file first wins,
        # and everyone uses what is on disk, so no two workers ever hold different keys.
        stored = read_key_file(path)
    merged = {k: str(given[k] or stored.get(k, "")) for k in given}
    if not given["identifier_encryption_key"] and not given["identifier_hmac_key"]:
        versions, active = identifier_versions(stored)
        return Keys(
            jwt_secret=_decode_key("jwt_secret", merged["jwt_secret"]),
            identifier_encryption_key=versions[active][0],
            identifier_hmac_key=_decode_key("identifier_hmac_key", merged["identifier_hmac_key"]),
            identifier_versions=versions,
            identifier_active=active,
        )
    return _plain_keys(merged)


def _plain_keys(texts: Mapping[str, str]) -> Keys:
    """One identifier key version (1), as every deployment had before rotation."""
    raw = {k: _decode_key(k, v) for k, v in texts.items()}
    return Keys(raw["jwt_secret"], raw["identifier_encryption_key"], raw["identifier_hmac_key"])


def read_key_file(path: Path) -> dict[str, Any]:
    """The key file's content ({} when there is none yet)."""
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
    return {str(k): (v if k == KEYRING_FIELD else str(v)) for k, v in found.items()}


def write_key_file(path: Path, keys: Mapping[str, Any], *, replace_existing: bool) -> None:
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


class KeyFileWatch:
    """A ``KeySource`` for ``IdentifierCipher.follow``: re-reads the key file when it changed
    (its inode, modification time and size, looked at most once a second, or at once when
    forced), so ``srhub keys rotate`` / ``retire`` in another process reach a running hub."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self._path = path
        self._interval = interval
        self._seen = self._stamp()
        self._checked = time.monotonic()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size  # a rewrite is a new file

    def __call__(self, force: bool) -> tuple[dict[int, tuple[bytes, bytes]], int] | None:
        now = time.monotonic()
        if not force and now - self._checked < self._interval:
            return None
        self._checked = now
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        self._seen = stamp
        try:
            return identifier_versions(read_key_file(self._path))
        except SettingsError:
            return None  # a half-edited file: keep the keys in use, look again later


def follows_key_file(settings: Settings) -> bool:
    """Whether the identifier keys come from the key file (not from the settings)."""
    return not (settings.identifier_encryption_key or settings.identifier_hmac_key)


def identifier_cipher(
    settings: Settings, keys: Keys, profile: IdentifierProfile | None = None
) -> IdentifierCipher:
    """The cipher for ``keys``, following the key file while the hub runs when the keys come
    from it."""
    cipher = keys.identifier_cipher(profile)
    if follows_key_file(settings):
        cipher.follow(KeyFileWatch(settings.effective_key_file))
    return cipher
