"""The token signing keyring: Ed25519 keys with ids, rotated online, published as JWKS.

Why asymmetric: a program or partner system that wants to check a hub token offline (or a
gateway in front of the hub) needs only the public half, fetched from
``/.well-known/jwks.json``; nobody but the hub can mint tokens. Why a keyring: tokens name
their key (``kid``), so a new key can sign from now on while tokens signed by the previous
one stay valid until they expire; a key is then retired, and tokens naming it are refused.

The keyring lives in its own file (``<data_dir>/token-signing-keys.json``, mode 0600), created
on first use, or comes whole from the settings (``SRHUB_TOKEN_SIGNING_KEYS``, a secret store's
JSON). Each process re-reads the file when it changes (checked at most every
``RELOAD_SECONDS``), so a rotation by ``srhub token keys rotate`` reaches every API process
without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.settings.base import SettingsError

RELOAD_SECONDS = 2.0
FILE_FORMAT = "srhub-token-keys/1"


class KeyringError(SettingsError):
    """The keyring cannot be read or changed as asked; the message says why (a settings
    error: the CLI answers it with exit code 3, naming the file)."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """One Ed25519 key: its id, when it was made and, once retired, when."""

    kid: str
    private: Ed25519PrivateKey
    created_at: datetime
    retired_at: datetime | None = None

    def __repr__(self) -> str:  # never print key material
        return f"SigningKey(kid={self.kid!r}, retired={self.retired_at is not None})"

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_jwk(self) -> dict[str, str]:
        raw = self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(raw),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        }

    def to_json(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {
            "kid": self.kid,
            "ed25519": base64.b64encode(seed).decode("ascii"),
            "created_at": self.created_at.isoformat(),
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> SigningKey:
        if not isinstance(data, dict):
            raise KeyringError("a signing key must be a JSON object")
        try:
            seed = base64.b64decode(str(data["ed25519"]), validate=True)
            kid = str(data["kid"])
            created = datetime.fromisoformat(str(data["created_at"]))
            retired = data.get("retired_at")
        except (KeyError, ValueError) as exc:
            raise KeyringError(f"a signing key is malformed ({exc})") from exc
        if len(seed) != 32 or not kid or len(kid) > 64:
            raise KeyringError(f"signing key {kid[:64]!r} needs a 32-byte Ed25519 seed and an id")
        return cls(
            kid=kid,
            private=Ed25519PrivateKey.from_private_bytes(seed),
            created_at=created,
            retired_at=datetime.fromisoformat(str(retired)) if retired else None,
        )

    @classmethod
    def generate(cls, now: datetime | None = None) -> SigningKey:
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        kid = f"{when:%Y%m%d}-{secrets.token_hex(4)}"
        return cls(kid=kid, private=Ed25519PrivateKey.generate(), created_at=when)


@dataclass(frozen=True)
class Keyring:
    """The hub's signing keys, oldest first; the newest unretired one signs."""

    keys: tuple[SigningKey, ...]

    def __post_init__(self) -> None:
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise KeyringError("two signing keys share an id")

    @classmethod
    def generate(cls, now: datetime | None = None) -> Keyring:
        return cls((SigningKey.generate(now),))

    @property
    def active(self) -> SigningKey:
        usable = [k for k in self.keys if k.retired_at is None]
        if not usable:
            raise KeyringError("every token signing key is retired: rotate to make a new one")
        return usable[-1]

    def verifying_key(self, kid: str) -> SigningKey | None:
        """The key a token names, if it may still be trusted (known and not retired)."""
        for key in self.keys:
            if key.kid == kid and key.retired_at is None:
                return key
        return None

    def rotated(self, now: datetime | None = None) -> Keyring:
        """A new key signs from now on; the previous ones keep verifying."""
        return Keyring((*self.keys, SigningKey.generate(now)))

    def retired(self, kid: str, now: datetime | None = None) -> Keyring:
        """Tokens naming ``kid`` are refused from now on. The signing key cannot be retired:
        rotate first, then retire the old key once its tokens have expired."""
        found = [k for k in self.keys if k.kid == kid]
        if not found:
            raise KeyringError(f"no signing key has the id {kid!r}")
        if found[0].retired_at is not None:
            raise KeyringError(f"signing key {kid!r} is already retired")
        if self.active.kid == kid:
            raise KeyringError(
                f"{kid!r} is the key that signs new tokens: rotate first (`srhub token keys "
                "rotate`), then retire it once the tokens it signed have expired"
            )
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        return Keyring(tuple(replace(k, retired_at=when) if k.kid == kid else k for k in self.keys))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public halves of the keys still trusted, for ``/.well-known/jwks.json``."""
        return {"keys": [k.public_jwk() for k in self.keys if k.retired_at is None]}

    def to_json(self) -> str:
        body = {"format": FILE_FORMAT, "keys": [k.to_json() for k in self.keys]}
        return json.dumps(body, indent=2)

    @classmethod
    def from_json(cls, text: str, where: str) -> Keyring:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyringError(f"{where} is not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
            raise KeyringError(f"{where} is not a {FILE_FORMAT} keyring")
        keys = data.get("keys")
        if not isinstance(keys, list) or not keys:
            raise KeyringError(f"{where} holds no signing key")
        return cls(tuple(SigningKey.from_json(k) for k in keys))


def write_keyring(path: Path, keyring: Keyring, *, create_only: bool = False) -> None:
    """Write the keyring file (mode 0600) atomically; with ``create_only`` a file another
    process made first wins, so no two processes ever sign with different first keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(keyring.to_json())
        if create_only:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class KeyringSource:
    """Where a process gets the current keyring: fixed (given in the settings, or a test's)
    or a file, re-read when its modification time or size changes."""

    def __init__(self, *, fixed: Keyring | None = None, path: Path | None = None) -> None:
        if (fixed is None) == (path is None):
            raise ValueError("a keyring source is either fixed or a file")
        self._fixed = fixed
        self._path = path
        self._lock = threading.Lock()
        self._loaded: Keyring | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    @property
    def path(self) -> Path | None:
        return self._path

    def current(self, *, fresh: bool = False) -> Keyring:
        if self._fixed is not None:
            return self._fixed
        assert self._path is not None
        now = time.monotonic()
        with self._lock:
            if self._loaded is not None and not fresh and now - self._checked < RELOAD_SECONDS:
                return self._loaded
            self._checked = now
            if not self._path.is_file():
                write_keyring(self._path, Keyring.generate(), create_only=True)
            stat = self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self._loaded is None or stamp != self._stamp:
                text = self._path.read_text(encoding="utf-8")
                self._loaded = Keyring.from_json(text, str(self._path))
                self._stamp = stamp
            return self._loaded

    def save(self, keyring: Keyring) -> None:
        if self._path is None:
            raise KeyringError(
                "the signing keys come from the settings (SRHUB_TOKEN_SIGNING_KEYS): change "
                "them in the secret store that holds them"
            )
        write_keyring(self._path, keyring)
        self.current(fresh=True)
