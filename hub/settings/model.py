"""The settings object and how it is read.

Values come, in increasing priority, from the built-in defaults (the embedded setup: SQLite
under ``./var``, the embedded queue, sandbox mocks), an optional TOML file (``SRHUB_CONFIG`` or
``./srhub.toml``), ``SRHUB_*`` environment variables and explicit overrides (tests, CLI flags).

Each component's settings are a typed section (``settings.monitoring``, ``settings.dci``,
``settings.notifications``, ``settings.sandbox_mocks``, ``settings.ui``), written as a TOML
table ``[srhub.<section>]``, a JSON object in ``SRHUB_<SECTION>`` or one variable per field,
``SRHUB_<SECTION>__<FIELD>``. The ``extra`` table of earlier releases (``SRHUB_EXTRA``,
``[srhub.extra]``) is still read: each of its keys goes to the section that owns it. Within
one source a section's own table wins over ``extra``; every key is checked at start.
"""

from __future__ import annotations

import json
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from hub.settings.base import ENV_PREFIX, Section, SettingsError, read_value
from hub.settings.corrections import CorrectionsSettings
from hub.settings.dci import DciSettings
from hub.settings.intake import IntakeSettings
from hub.settings.monitoring import MonitoringSettings
from hub.settings.notifications import NotificationSettings
from hub.settings.openrosa import OpenRosaSettings
from hub.settings.outbound import OutboundSettings
from hub.settings.quality import QualitySettings
from hub.settings.rate_limits import RateLimitSettings
from hub.settings.read_audit import ReadAuditSettings
from hub.settings.recertification import RecertificationSettings
from hub.settings.reports import ReportSettings
from hub.settings.sandbox import SandboxMockSettings
from hub.settings.serving import ServingSettings
from hub.settings.ui import UiSettings
from standards.identifiers import IdentifierProfile, ProfileError, default_profile, load_profile

if typing.TYPE_CHECKING:
    from registry_core.matching import PersonMatcher


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
    # base64 of 32 bytes: the hub's own HMAC secret (dashboard session cookies, OpenRosa
    # nonces). Bearer tokens are signed by the Ed25519 keyring below.
    jwt_secret: str = ""
    # The bearer-token signing keyring as JSON (a secret store's copy of the keyring file);
    # empty: the local keyring file, created on first use (docs/auth.md).
    token_signing_keys: str = ""
    token_keyring_file: Path = Path("")  # empty: <data_dir>/token-signing-keys.json
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
    # A person-matching model learnt by `srhub matcher train` (splink settings JSON, with its
    # <name>.srhub.json beside it; docs/matching.md). Empty: the built-in fixed-prior matcher.
    matcher_model: Path = Path("")
    max_request_bytes: int = 2 * 1024 * 1024
    # How many reverse proxies in front of the hub set X-Forwarded-For/-Proto/-Host/-Port/
    # -Prefix (0: none, the headers are ignored). Behind a TLS proxy, set it so the hub knows a
    # request came over HTTPS (OpenRosa Basic, secure cookies) and prints its public URLs
    # (form lists, manifests). Never more than the proxies really there: a client could forge
    # the headers.
    trusted_proxies: int = 0
    # The components' own settings (hub/settings/<component>.py).
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    dci: DciSettings = field(default_factory=DciSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    sandbox_mocks: SandboxMockSettings = field(default_factory=SandboxMockSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    openrosa: OpenRosaSettings = field(default_factory=OpenRosaSettings)
    recertification: RecertificationSettings = field(default_factory=RecertificationSettings)
    corrections: CorrectionsSettings = field(default_factory=CorrectionsSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    reports: ReportSettings = field(default_factory=ReportSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    read_audit: ReadAuditSettings = field(default_factory=ReadAuditSettings)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'srhub.db').as_posix()}"

    @property
    def effective_key_file(self) -> Path:
        return self.key_file if str(self.key_file) not in ("", ".") else self.data_dir / "keys.json"

    @property
    def effective_token_keyring_file(self) -> Path:
        if str(self.token_keyring_file) not in ("", "."):
            return self.token_keyring_file
        return self.data_dir / "token-signing-keys.json"

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


SECTIONS: dict[str, type[Section]] = {
    cls.name: cls
    for cls in (
        MonitoringSettings,
        DciSettings,
        NotificationSettings,
        SandboxMockSettings,
        UiSettings,
        IntakeSettings,
        OpenRosaSettings,
        RecertificationSettings,
        CorrectionsSettings,
        QualitySettings,
        ReportSettings,
        OutboundSettings,
        ServingSettings,
        RateLimitSettings,
        ReadAuditSettings,
    )
}
_HINTS = typing.get_type_hints(Settings)
SCALARS: dict[str, object] = {
    f.name: _HINTS[f.name] for f in fields(Settings) if f.name not in SECTIONS
}


def _extra_keys() -> dict[str, tuple[str, str | None]]:
    """The keys of the old ``extra`` table and where each lives now: a whole section
    (``dci``, ``notifications``) or one field of one."""
    keys: dict[str, tuple[str, str | None]] = {
        "dci": ("dci", None),
        "notifications": ("notifications", None),
        "monitoring_interval_seconds": ("monitoring", "interval_seconds"),
        "ui_secure_cookies": ("ui", "secure_cookies"),
    }
    for name in MonitoringSettings.field_names():
        if name != "interval_seconds":
            keys[name] = ("monitoring", name)
    for name in SandboxMockSettings.field_names():
        keys[f"sandbox_{name}"] = ("sandbox_mocks", name)
    return keys


EXTRA_KEYS = _extra_keys()


@dataclass(frozen=True)
class _Layer:
    """Values for one section from one source, applied in the order read."""

    section: str
    values: object
    where: str
    text: bool = False
    names: Mapping[str, str] = field(default_factory=dict)


def _extra_layers(raw: object, where: str) -> list[_Layer]:
    """The old ``extra`` table, split into the sections that own its keys."""
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where} must be a table (a JSON object) of component settings")
    layers: list[_Layer] = []
    flat: dict[str, dict[str, object]] = {}
    names: dict[str, dict[str, str]] = {}
    for key, value in raw.items():
        target = EXTRA_KEYS.get(str(key))
        if target is None:
            raise SettingsError(
                f"{where}.{key} is not a setting; the keys of extra are: " + ", ".join(EXTRA_KEYS)
            )
        section, name = target
        if name is None:
            layers.append(_Layer(section, value, f"{where}.{key}"))
        else:
            flat.setdefault(section, {})[name] = value
            names.setdefault(section, {})[name] = f"{where}.{key}"
    layers.extend(_Layer(s, values, where, names=names[s]) for s, values in flat.items())
    return layers


def _json_object(text: str, var: str) -> object:
    """The JSON in environment variable ``var``; the message never repeats it (it may hold a
    secret)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{var} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def _scalar(name: str, raw: object, hint: object) -> object:
    if hint is Path:
        if isinstance(raw, str | Path):
            return Path(str(raw).strip())
        raise SettingsError(f"{name} must be a path")
    return read_value(name, raw, hint, text=isinstance(raw, str))


def _file_values(path: Path) -> tuple[dict[str, object], list[_Layer]]:
    if not path.is_file():
        raise SettingsError(f"{ENV_PREFIX}CONFIG names {path}, which is not a file")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("srhub", data)
    values: dict[str, object] = {}
    extra: list[_Layer] = []
    sections: list[_Layer] = []
    for key, raw in table.items():
        if key == "extra":
            extra = _extra_layers(raw, f"{path}: extra")
        elif key in SECTIONS:
            sections.append(_Layer(key, raw, f"{path}: {key}"))
        elif key in SCALARS:
            values[key] = _scalar(f"{path}: {key}", raw, SCALARS[key])
        else:
            raise SettingsError(f"unknown setting {key!r} in {path}")
    return values, extra + sections


def _env_values(env: Mapping[str, str]) -> tuple[dict[str, object], list[_Layer]]:
    values: dict[str, object] = {}
    for key, hint in SCALARS.items():
        var = f"{ENV_PREFIX}{key.upper()}"
        if var in env:
            values[key] = _scalar(var, env[var], hint)
    layers: list[_Layer] = []
    var = f"{ENV_PREFIX}EXTRA"
    if env.get(var, "").strip():
        layers += _extra_layers(_json_object(env[var], var), f"{var}: extra")
    for name in SECTIONS:
        var = f"{ENV_PREFIX}{name.upper()}"
        if env.get(var, "").strip():
            layers.append(_Layer(name, _json_object(env[var], var), f"{var}: {name}"))
        prefix = f"{var}__"
        for key in sorted(k for k in env if k.startswith(prefix)):
            field_name = key[len(prefix) :].lower()
            layers.append(
                _Layer(name, {field_name: env[key]}, var, text=True, names={field_name: key})
            )
    return values, layers


def _split_overrides(
    overrides: Mapping[str, object],
) -> tuple[dict[str, object], list[_Layer], dict[str, Section]]:
    """Explicit overrides: scalars, tables (``extra=``, ``monitoring={...}``) and whole
    sections (``monitoring=MonitoringSettings(...)``)."""
    values: dict[str, object] = {}
    layers: list[_Layer] = []
    whole: dict[str, Section] = {}
    for key, raw in overrides.items():
        if key == "extra":
            layers += _extra_layers(raw, "extra")
        elif key in SECTIONS:
            if isinstance(raw, SECTIONS[key]):
                whole[key] = raw
            else:
                layers.append(_Layer(key, raw, key))
        elif key in SCALARS:
            values[key] = raw
        else:
            raise SettingsError(f"unknown setting {key!r}")
    return values, layers, whole


def _sections(
    start: Mapping[str, Section], layers: list[_Layer], whole: Mapping[str, Section]
) -> dict[str, Section]:
    found = dict(start)
    for layer in layers:
        found[layer.section] = found[layer.section].merged(
            layer.values, layer.where, text=layer.text, names=layer.names
        )
    found.update(whole)
    return found


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None, **overrides: object
) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and explicit
    overrides; a faulty value anywhere is a ``SettingsError`` naming it."""
    env = dict(os.environ if env is None else env)
    path = config_file or (
        Path(env[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in env else None
    )
    if path is None and Path("srhub.toml").is_file():
        path = Path("srhub.toml")
    values: dict[str, object] = {}
    layers: list[_Layer] = []
    if path is not None:
        from_file, file_layers = _file_values(path)
        values.update(from_file)
        layers += file_layers
    from_env, env_layers = _env_values(env)
    values.update(from_env)
    layers += env_layers
    given, override_layers, whole = _split_overrides(overrides)
    values.update(given)
    layers += override_layers
    defaults = {name: cls() for name, cls in SECTIONS.items()}
    settings = Settings(**values, **_sections(defaults, layers, whole))  # type: ignore[arg-type]
    _check_database_url(settings.database_url)
    _check_amqp_url("amqp_url", settings.amqp_url)
    _check_amqp_url("delivery_amqp_url", settings.delivery_amqp_url)
    if settings.has_identifier_profile:
        load_identifier_profile(settings)  # a faulty profile stops the hub here, at start
    return settings


def with_overrides(settings: Settings, **changes: object) -> Settings:
    """A copy of ``settings`` with some fields changed (tests and CLI flags use this); a
    section given as a table (or as ``extra=``) is merged over the current one."""
    values, layers, whole = _split_overrides(changes)
    current = {name: getattr(settings, name) for name in SECTIONS}
    return replace(settings, **values, **_sections(current, layers, whole))  # type: ignore[arg-type]


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


def load_person_matcher(settings: Settings) -> PersonMatcher:
    """The matcher the hub resolves incoming persons with: the trained model
    ``SRHUB_MATCHER_MODEL`` names, or the built-in matcher when the setting is empty.

    A model that is missing or not one the hub can evaluate is a ``SettingsError`` naming the
    setting and the reason (never a data value).
    """
    from registry_core.matching import Matcher, TrainedMatcher, TrainedModel

    path = settings.matcher_model
    if str(path) in ("", "."):
        return Matcher()
    try:
        return TrainedMatcher(TrainedModel.load(path))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{ENV_PREFIX}MATCHER_MODEL: {path}: {exc}") from None


def _check_database_url(url: str) -> None:
    """``SRHUB_DATABASE_URL`` is empty or a URL SQLAlchemy can read; the message never
    repeats it (it may hold a password)."""
    if not url:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError):
        raise SettingsError(
            f"{ENV_PREFIX}DATABASE_URL is not a database URL; e.g. "
            "postgresql://user:password@host:5432/srhub or sqlite:///var/srhub.db"
        ) from None


def _check_amqp_url(name: str, url: str) -> None:
    """An AMQP URL setting is empty, or amqp(s):// URLs with a host separated by commas (a
    cluster's nodes); the message never repeats the URL (it may hold a password)."""
    if not url:
        return
    for node in url.split(","):
        scheme, _, rest = node.strip().partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        if scheme.lower() not in ("amqp", "amqps") or not host:
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()} must be an amqp:// or amqps:// URL with a host, "
                "e.g. amqp://user:password@rabbitmq:5672/%2F, or several separated by commas "
                "(the nodes of a cluster)"
            )
