"""Protecting personal identifiers at rest.

Each value is normalised by its system's rule in the country profile (so " 123-456 " and
"123456" are the same identifier), then stored twice: an AES-256-GCM ciphertext, bound to its
identifier system as associated data so a value cannot be moved to another system unnoticed, and
an HMAC-SHA256 of system and value for exact look-up. Neither reveals the value without the
keys, which live outside the database.

The cipher holds the profile because the look-up hash *is* the normalisation: every path that
looks a person up (API, mappings, DCI and FHIR searches, the matcher's identifier step) goes
through ``lookup_hash`` here, so one number written two ways always finds the same person.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from standards.identifiers import IdentifierProfile, default_profile

_NONCE_BYTES = 12
LEGACY_VERSION = 1  # the version byte every ciphertext written before rotation carries
_TAG_BYTES = 16


# Asked with ``force``; returns (versions, active) when the keys changed, else None.
KeySource = Callable[[bool], "tuple[Mapping[int, tuple[bytes, bytes]], int] | None"]


class IdentifierDecryptionError(Exception):
    """A stored identifier could not be decrypted: wrong key or tampered data."""


def normalise_identifier(
    value: str, system: str = "", profile: IdentifierProfile | None = None
) -> str:
    """Canonical form used for hashing and storage, by ``system``'s rule in ``profile``
    (default: the built-in profile: no spaces/dashes/dots/slashes, upper case)."""
    return (profile or default_profile()).normalise(system, value)


def ciphertext_version(blob: bytes) -> int:
    """The key version a ciphertext was sealed with (its first byte)."""
    return blob[0] if blob else 0


class IdentifierCipher:
    """Encrypts, decrypts and hashes identifier values with versioned keys from settings.

    Keys rotate online (docs/identifiers.md, "Rotating the identifier keys"): each version is an
    encryption key and a look-up key; new data uses the **active** version, and every version
    still held can be read. A ciphertext's first byte names its version; a look-up hash is
    searched under every version held (``lookup_hashes``), so a person is found whether their
    row has been re-keyed yet or not.

    ``IdentifierCipher(encryption_key, hmac_key)`` is one key pair, version 1 (what every
    deployment had before rotation). ``profile`` (default: the built-in one) says how each
    system's values are normalised.
    """

    def __init__(
        self,
        encryption_key: bytes,
        hmac_key: bytes,
        profile: IdentifierProfile | None = None,
        *,
        versions: Mapping[int, tuple[bytes, bytes]] | None = None,
        active: int = LEGACY_VERSION,
    ) -> None:
        pairs = dict(versions) if versions else {LEGACY_VERSION: (encryption_key, hmac_key)}
        self._install(pairs, active)
        self._source: KeySource | None = None
        self.profile = profile or default_profile()

    @classmethod
    def from_versions(
        cls,
        versions: Mapping[int, tuple[bytes, bytes]],
        active: int,
        profile: IdentifierProfile | None = None,
    ) -> IdentifierCipher:
        """A cipher holding several key versions (encryption key, look-up key), one active."""
        enc, look = versions[active]
        return cls(enc, look, profile, versions=versions, active=active)

    def _install(self, pairs: Mapping[int, tuple[bytes, bytes]], active: int) -> None:
        if active not in pairs:
            raise ValueError(f"the active identifier key version {active} is not held")
        aeads: dict[int, AESGCM] = {}
        lookup_keys: dict[int, bytes] = {}
        for version, (enc, look) in pairs.items():
            if not 1 <= version <= 255:
                raise ValueError("identifier key versions run from 1 to 255")
            if len(enc) != 32 or len(look) != 32:
                raise ValueError("identifier keys must be 32 bytes each")
            aeads[version] = AESGCM(enc)
            lookup_keys[version] = look
        # One assignment, so a thread reading meanwhile sees the old set or the new one.
        self._state = (aeads, lookup_keys, active)

    @property
    def active_version(self) -> int:
        """The version new ciphertexts and hashes are written under."""
        return self._state[2]

    def follow(self, source: KeySource) -> None:
        """Take new key versions from ``source`` while running: it is asked before each use
        and returns the versions and the active one when they changed (None otherwise), so a
        rotation done by another process reaches this one without a restart."""
        self._source = source

    def refresh(self, force: bool = False) -> None:
        """Take the key versions' latest state from the followed source (if any)."""
        self._refresh(force)

    def _refresh(self, force: bool = False) -> None:
        if self._source is not None:
            found = self._source(force)
            if found is not None:
                self._install(*found)

    @property
    def versions(self) -> tuple[int, ...]:
        """The key versions held, ascending."""
        self._refresh()
        return tuple(sorted(self._state[0]))

    def lookup_hash(self, system: str, value: str, version: int | None = None) -> str:
        """The look-up hash under the active key (what a write stores), or ``version``'s."""
        if version is None:
            self._refresh()
        _, lookup_keys, active = self._state
        key = lookup_keys[active if version is None else version]
        message = f"{system}\x00{self.profile.normalise(system, value)}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def active_lookup(self, system: str, value: str) -> tuple[int, str]:
        """The active version and the hash under it (what a write stores beside the row)."""
        self._refresh()
        active = self._state[2]
        return active, self.lookup_hash(system, value, active)

    def lookup_hashes(self, system: str, value: str) -> list[str]:
        """The hashes to search for: one per key version held, the active one first. During a
        rotation rows hashed under an older key are still found (collisions between versions
        are as unlikely as any HMAC-SHA256 collision)."""
        self._refresh()
        _, lookup_keys, active = self._state
        order = [active, *sorted(v for v in lookup_keys if v != active)]
        return [self.lookup_hash(system, value, v) for v in order]

    def encrypt(self, system: str, value: str) -> bytes:
        plaintext = self.profile.normalise(system, value).encode()
        return self._seal_bytes(plaintext, system.encode())

    def seal(self, context: str, data: bytes) -> bytes:
        """Encrypt arbitrary bytes (e.g. a record held for review) bound to ``context``."""
        return self._seal_bytes(data, context.encode())

    def unseal(self, context: str, blob: bytes) -> bytes:
        return self._open_bytes(blob, context.encode(), "sealed data")

    def decrypt(self, system: str, blob: bytes) -> str:
        return self._open_bytes(blob, system.encode(), "stored identifier").decode()

    def reseal(self, context: str, blob: bytes) -> bytes:
        """``blob`` sealed again under the active key (the re-key job's step); unchanged
        when it already is."""
        if ciphertext_version(blob) == self.active_version:
            return blob
        return self.seal(context, self.unseal(context, blob))

    def _seal_bytes(self, data: bytes, associated: bytes) -> bytes:
        self._refresh()
        aeads, _, active = self._state
        nonce = os.urandom(_NONCE_BYTES)
        return bytes([active]) + nonce + aeads[active].encrypt(nonce, data, associated)

    def _open_bytes(self, blob: bytes, associated: bytes, what: str) -> bytes:
        aead = self._state[0].get(ciphertext_version(blob))
        if aead is None:  # written under a version another process added: look again
            self._refresh(force=True)
            aead = self._state[0].get(ciphertext_version(blob))
        if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES or aead is None:
            raise IdentifierDecryptionError(f"{what} has an unknown format or key version")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[1 + _NONCE_BYTES :], associated)
        except InvalidTag as exc:
            raise IdentifierDecryptionError(f"{what} failed authentication") from exc


def mask_identifier(value: str) -> str:
    """Show only the last two characters, for screens and messages that must not reveal it."""
    if len(value) <= 2:
        return "*" * len(value)
    return "*" * (len(value) - 2) + value[-2:]
