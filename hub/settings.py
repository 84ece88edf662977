"""One settings object for the whole hub.

Values come, in increasing priority, from the built-in defaults (the embedded setup: SQLite under
``./var``, the embedded queue, sandbox mocks), an optional TOML file (``SRHUB_CONFIG`` or
``./srhub.toml``) and ``SRHUB_*`` environment variables. Secrets that are not given are generated
once and kept in a local key file, so a fresh checkout works without any configuration while a
production deployment passes its keys explicitly.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from standards.identifiers import IdentifierProfile, ProfileError, default_profile, load_profile

ENV_PREFIX = "SRHUB_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the hub. Field names map to ``SRHUB_<NAME>`` environment variables."""

    data_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite:///<data_dir>/srhub.db
    amqp_url: str = ""  # empty: the embedded durable queue in the database
    # Where AMQP-channel subscribers consume when the hub's own broker is the embedded queue
    # (ignored when amqp_url is set: they consume on the hub's RabbitMQ). Empty: no AMQP channel
    # on the embedded broker.
    delivery_amqp_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    key_file: Path = Path("")  # empty: <data_dir>/keys.json
    jwt_secret: str = ""  # HS256 signing key for bearer tokens
    jwt_issuer: str = "srhub"
    token_ttl_seconds: int = 8 * 3600
    identifier_encryption_key: str = ""  # base64 of 32 bytes (AES-256-GCM)
    identifier_hmac_key: str = ""  # base64 of 32 bytes (HMAC-SHA256 look-up hash)
    admin_token_file: Path = Path("")  # empty: <data_dir>/admin-token
    sandbox: bool = True
    precedence_file: Path = Path("")  # empty: built-in source precedence
    connectors_file: Path = Path("")  # TOML with [connectors.<name>] tables; sandbox: generated
    # The country's identifier profile (TOML, docs/identifiers.md). Empty: the built-in one (no
    # check digits); `srhub run` with the sandbox on uses the sandbox's own profile.
    identifier_profile: Path = Path("")
    max_request_bytes: int = 2 * 1024 * 1024
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'srhub.db').as_posix()}"

    @property
    def effective_key_file(self) -> Path:
        return self.key_file if str(self.key_file) not in ("", ".") else self.data_dir / "keys.json"

    @property
    def effective_admin_token_file(self) -> Path:
        if str(self.admin_token_file) not in ("", "."):
            return self.admin_token_file
        return self.data_dir / "admin-token"

    @property
    def has_identifier_profile(self) -> bool:
        return str(self.identifier_profile) not in ("", ".")

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.amqp_url

    @property
    def offers_amqp_channel(self) -> bool:
        """AMQP-channel subscriptions can be served: the hub runs on RabbitMQ, or forwards."""
        return not self.uses_embedded_broker or self.forwards_amqp_deliveries

    @property
    def forwards_amqp_deliveries(self) -> bool:
        """The hub runs on the embedded queue and forwards AMQP-channel deliveries to the
        operator's RabbitMQ (``SRHUB_DELIVERY_AMQP_URL``)."""
        return self.uses_embedded_broker and bool(self.delivery_amqp_url)


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    text = raw if not isinstance(raw, str) else raw.strip()
    try:
        if kind in (int, "int"):
            return int(text)
        if kind in (bool, "bool"):
            if isinstance(text, bool):
                return text
            lowered = str(text).lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        if kind in (Path, "Path"):
            return Path(str(text))
        if kind in (dict, "dict[str, Any]"):
            return dict(text) if not isinstance(text, str) else json.loads(text)
        return str(text)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}: cannot read {raw!r} as {kind}") from exc


def load_settings(
    env: dict[str, str] | None = None, config_file: Path | None = None, **overrides: Any
) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and explicit overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    known = {f.name: f.type for f in fields(Settings)}

    path = config_file or (
        Path(env[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in env else None
    )
    if path is None and Path("srhub.toml").is_file():
        path = Path("srhub.toml")
    if path is not None:
        if not path.is_file():
            raise SettingsError(f"{ENV_PREFIX}CONFIG names {path}, which is not a file")
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        section = data.get("srhub", data)
        for key, raw in section.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, raw, known[key])

    for key, kind in known.items():
        name = f"{ENV_PREFIX}{key.upper()}"
        if name in env:
            values[key] = _coerce(key, env[name], kind)

    for key, raw in overrides.items():
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = raw
    settings = Settings(**values)
    _check_amqp_url("delivery_amqp_url", settings.delivery_amqp_url)
    if settings.has_identifier_profile:
        load_identifier_profile(settings)  # a faulty profile stops the hub here, at start
    return settings


def load_identifier_profile(settings: Settings) -> IdentifierProfile:
    """The country profile ``SRHUB_IDENTIFIER_PROFILE`` names (built-in when empty).

    A file that is missing or faulty is a ``SettingsError`` naming the setting, the file and
    every faulty key with its reason.
    """
    if not settings.has_identifier_profile:
        return default_profile()
    try:
        return load_profile(settings.identifier_profile)
    except ProfileError as exc:
        raise SettingsError(f"{ENV_PREFIX}IDENTIFIER_PROFILE: {exc}") from None


def _check_amqp_url(name: str, url: str) -> None:
    """An AMQP URL setting is empty or an amqp(s):// URL with a host; the message never
    repeats the URL (it may hold a password)."""
    if not url:
        return
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("amqp", "amqps") or not rest.split("/", 1)[0].rsplit("@", 1)[-1]:
        raise SettingsError(
            f"{ENV_PREFIX}{name.upper()} must be an amqp:// or amqps:// URL with a host, "
            "e.g. amqp://user:password@rabbitmq:5672/%2F"
        )


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
    return dict(json.loads(path.read_text(encoding="utf-8")))


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


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields changed (tests and CLI flags use this)."""
    return replace(settings, **changes)
