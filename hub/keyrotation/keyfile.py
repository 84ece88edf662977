"""Adding and retiring identifier key versions in the key file.

Version 1 is the key file's original pair (``identifier_encryption_key``,
``identifier_hmac_key``), so every key file written before rotation existed loads unchanged.
Later versions sit in ``identifier_keys`` with the active one. Retiring version 1 removes its
encryption key; its look-up key stays as the key of the pseudonymous references partners
hold (``Keys.identifier_hmac_key``), which must not change, and is no longer used for hashes.

The file is replaced atomically (``write_key_file``); running hub processes pick the change up
within a second (``hub.settings.keys.KeyFileWatch``).
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from hub.settings import Settings, SettingsError
from hub.settings.keys import (
    KEYRING_FIELD,
    follows_key_file,
    identifier_versions,
    read_key_file,
    write_key_file,
)
from registry_core.crypto import LEGACY_VERSION


class KeyRotationError(Exception):
    """A rotation step that must not happen; the text says why."""


def _stored(settings: Settings) -> dict[str, Any]:
    if not follows_key_file(settings):
        raise KeyRotationError(
            "the identifier keys come from the settings (SRHUB_IDENTIFIER_ENCRYPTION_KEY / "
            "SRHUB_IDENTIFIER_HMAC_KEY), not the key file: `srhub keys` rotates the key file only"
        )
    stored = read_key_file(settings.effective_key_file)
    if not stored:
        raise KeyRotationError(
            f"{settings.effective_key_file} does not exist yet: start the hub once first"
        )
    return stored


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _write(settings: Settings, stored: dict[str, Any], ring: dict[str, Any]) -> None:
    content = dict(stored)
    content[KEYRING_FIELD] = ring
    try:
        identifier_versions(content)  # never write a file the hub could not load
    except SettingsError as exc:
        raise KeyRotationError(str(exc)) from exc
    write_key_file(settings.effective_key_file, content, replace_existing=True)


def _ring(stored: dict[str, Any]) -> dict[str, Any]:
    ring = stored.get(KEYRING_FIELD) or {"active": LEGACY_VERSION, "versions": {}}
    return {"active": ring["active"], "versions": dict(ring["versions"])}


def rotate(settings: Settings, *, activate: bool = True) -> int:
    """Add a new key version and make it the active one (or, with ``activate=False``, only
    held: every process can read it before any writes with it); return its number."""
    stored = _stored(settings)
    versions, _active = identifier_versions(stored)
    new = max(versions) + 1
    if new > 255:
        raise KeyRotationError("255 key versions used: no version number left")
    ring = _ring(stored)
    ring["versions"][str(new)] = {"encryption": _new_key(), "lookup": _new_key()}
    if activate:
        ring["active"] = new
    _write(settings, stored, ring)
    return new


def activate(settings: Settings, version: int) -> None:
    """Make a held ``version`` the one new data is written with."""
    stored = _stored(settings)
    versions, _active = identifier_versions(stored)
    if version not in versions:
        raise KeyRotationError(f"key version {version} is not in the key file")
    ring = _ring(stored)
    ring["active"] = version
    _write(settings, stored, ring)


def held_versions(settings: Settings) -> tuple[list[int], int]:
    """The versions in the key file and the active one."""
    versions, active = identifier_versions(_stored(settings))
    return sorted(versions), active


def retire(settings: Settings, version: int, rows_using: int) -> None:
    """Remove ``version``'s keys, which ``rows_using`` rows still need (refused unless 0)."""
    stored = _stored(settings)
    versions, active = identifier_versions(stored)
    if version not in versions:
        raise KeyRotationError(f"key version {version} is not in the key file")
    if version == active:
        raise KeyRotationError(f"key version {version} is the active one: rotate first")
    if rows_using:
        raise KeyRotationError(
            f"{rows_using} rows still use key version {version}: run `srhub keys rekey` first"
        )
    ring = _ring(stored)
    if version == LEGACY_VERSION:
        stored = {k: v for k, v in stored.items() if k != "identifier_encryption_key"}
    else:
        del ring["versions"][str(version)]
    _write(settings, stored, ring)
