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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from standards.identifiers import IdentifierProfile, default_profile

_NONCE_BYTES = 12
_KEY_VERSION = b"\x01"


class IdentifierDecryptionError(Exception):
    """A stored identifier could not be decrypted: wrong key or tampered data."""


def normalise_identifier(
    value: str, system: str = "", profile: IdentifierProfile | None = None
) -> str:
    """Canonical form used for hashing and storage, by ``system``'s rule in ``profile``
    (default: the built-in profile: no spaces/dashes/dots/slashes, upper case)."""
    return (profile or default_profile()).normalise(system, value)


class IdentifierCipher:
    """Encrypts, decrypts and hashes identifier values with keys from settings.

    ``profile`` (default: the built-in one) says how each system's values are normalised.
    """

    def __init__(
        self, encryption_key: bytes, hmac_key: bytes, profile: IdentifierProfile | None = None
    ) -> None:
        if len(encryption_key) != 32 or len(hmac_key) != 32:
            raise ValueError("identifier keys must be 32 bytes each")
        self._aead = AESGCM(encryption_key)
        self._hmac_key = hmac_key
        self.profile = profile or default_profile()

    def lookup_hash(self, system: str, value: str) -> str:
        message = f"{system}\x00{self.profile.normalise(system, value)}".encode()
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, system: str, value: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        plaintext = self.profile.normalise(system, value).encode()
        return _KEY_VERSION + nonce + self._aead.encrypt(nonce, plaintext, system.encode())

    def seal(self, context: str, data: bytes) -> bytes:
        """Encrypt arbitrary bytes (e.g. a record held for review) bound to ``context``."""
        nonce = os.urandom(_NONCE_BYTES)
        return _KEY_VERSION + nonce + self._aead.encrypt(nonce, data, context.encode())

    def unseal(self, context: str, blob: bytes) -> bytes:
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _KEY_VERSION:
            raise IdentifierDecryptionError("sealed data has an unknown format")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_BYTES :], context.encode())
        except InvalidTag as exc:
            raise IdentifierDecryptionError("sealed data failed authentication") from exc

    def decrypt(self, system: str, blob: bytes) -> str:
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _KEY_VERSION:
            raise IdentifierDecryptionError("stored identifier has an unknown format")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_BYTES :], system.encode()).decode()
        except InvalidTag as exc:
            raise IdentifierDecryptionError("stored identifier failed authentication") from exc


def mask_identifier(value: str) -> str:
    """Show only the last two characters, for screens and messages that must not reveal it."""
    if len(value) <= 2:
        return "*" * len(value)
    return "*" * (len(value) - 2) + value[-2:]
