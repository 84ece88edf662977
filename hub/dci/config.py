"""The DCI server's signing key, kept beside its settings (``settings.dci``, defined and
checked in ``hub/settings/dci.py``).

Signatures are always required: there is no setting to turn them off. A sender that cannot sign
is let in one by one, by an operator (``srhub dci allow-unsigned``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.settings import DciSettings, Settings, SettingsError
from standards.dci.signature import public_key_base64

SIGNING_KEY_FILE = "dci-signing-key.pem"


# The DCI server's settings are ``settings.dci`` (``hub/settings/dci.py``); the name DciConfig
# stays for the server's annotations.
DciConfig = DciSettings


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    key_id: str

    @property
    def public_key_b64(self) -> str:
        return public_key_base64(self.private_key.public_key())


def load_signing_key(settings: Settings, config: DciConfig) -> SigningKey:
    """The hub's ed25519 signing key; created (mode 0600) on first use when none is given.

    The key id is derived from the public key, so partners can tell keys apart after a
    rotation without us keeping a counter.
    """
    path = Path(config.signing_key_file) if config.signing_key_file else None
    path = path or settings.data_dir / SIGNING_KEY_FILE
    if path.exists() and not path.is_file():
        raise SettingsError(f"dci.signing_key_file: {path} is not a file")
    if path.is_file():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError:
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise SettingsError(f"{path} does not hold an ed25519 private key (PEM, PKCS8)")
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return load_signing_key(settings, config)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    raw = public_key_base64(key.public_key())
    return SigningKey(key, "hub-" + hashlib.sha256(raw.encode()).hexdigest()[:12])
