"""The DCI server's settings, read from ``settings.extra["dci"]`` (``SRHUB_EXTRA`` as JSON or
the ``extra.dci`` table of the TOML file), with defaults that suit one machine.

Example: ``SRHUB_EXTRA='{"dci": {"registry_id": "sr.gov.example", "max_page_size": 50}}'``.

Signatures are always required: there is no setting to turn them off. A sender that cannot sign
is let in one by one, by an operator (``srhub dci allow-unsigned``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.settings import Settings, SettingsError
from standards.dci.signature import public_key_base64

SIGNING_KEY_FILE = "dci-signing-key.pem"


@dataclass(frozen=True)
class DciConfig:
    registry_id: str = "social-registry"  # our sender_id on everything we send
    receiver_id: str = ""  # when set, requests naming another receiver_id are refused
    max_batch: int = 10  # search_request / subscribe_request items per message
    default_page_size: int = 20
    max_page_size: int = 100
    max_message_age_seconds: int = 600
    max_clock_skew_seconds: int = 60
    async_workers: int = 2
    max_pending: int = 100  # queued async jobs before answering NACK
    callback_timeout_seconds: float = 10.0
    callback_attempts: int = 3
    signing_key_file: str = ""  # empty: <data_dir>/dci-signing-key.pem
    score_model: str = ""  # eligibility model reported as poverty_score; empty: newest
    # How long a process trusts what it read of a sender's keys: a key an operator registers
    # or revokes takes effect within this time.
    key_cache_seconds: float = 5.0
    # Sync searches record their transaction and spend the message id with PostgreSQL's
    # synchronous_commit off (their own small connection pool): the row is written, but a
    # database crash may forget the last fraction of a second of them. Registry data is never
    # written this way. False: every ledger row waits for its WAL flush (bench.api: about 8%
    # fewer searches per second on the 2-core machine).
    relaxed_search_ledger: bool = True

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=self.max_message_age_seconds)

    @property
    def max_future(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> DciConfig:
        raw = settings.extra.get("dci", {}) if isinstance(settings.extra, dict) else {}
        if not isinstance(raw, dict):
            raise SettingsError("extra.dci must be a table of DCI settings")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "require_signatures":  # the old switch: on is now the only way
                if value is not True:
                    raise SettingsError(
                        "extra.dci.require_signatures cannot be turned off: every DCI sender "
                        "must sign. Let a sender that cannot sign in with "
                        "`srhub dci allow-unsigned SENDER_ID --reason ...`"
                    )
                continue
            if key not in known:
                raise SettingsError(f"unknown DCI setting extra.dci.{key}")
            default = getattr(cls, key)
            if isinstance(default, bool) and not isinstance(value, bool):
                raise SettingsError(f"extra.dci.{key} must be true or false")
            numeric = isinstance(default, int | float) and not isinstance(default, bool)
            if numeric and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise SettingsError(f"extra.dci.{key} must be a positive number")
            values[key] = value
        return cls(**values)


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
    if path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SettingsError(f"{path} does not hold an ed25519 private key")
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
