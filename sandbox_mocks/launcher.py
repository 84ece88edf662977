"""Start every sandbox mock on its own port and tell the hub where they are.

``start_sandbox(config)`` builds the synthetic population once, builds each mock's Flask app,
serves each on a loopback port (fixed defaults 8101-8105; 0 picks a free one), and writes a
connector configuration (TOML) with the URLs, credentials, secrets and the tax drop folder.
It returns a ``RunningSandbox``: a context manager that stops every server and background
thread on exit. ``srhub sandbox up`` is a thin wrapper; ``srhub run`` and the tests use it
in-process.

Every mock is part of the build: one whose package cannot be imported stops the start with
the module's name (a broken installation), never a sandbox silently short of a partner.

Secrets (SOAP password, DCI bearer token, the civil registry's system client — id, secret and
signing secret, as an OpenCRVS administrator registers one for the hub — and the program MIS
webhook secret) are generated per start unless the config gives them; they appear only in the
connectors file, never in logs.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import secrets
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from flask import Flask

from sandbox_mocks.common.server import MockServer
from sandbox_mocks.population.ids import SANDBOX_PROFILE_PATH
from sandbox_mocks.population.model import Household

log = logging.getLogger(__name__)

MOCK_NAMES: tuple[str, ...] = ("national_id", "civil_registry", "tax", "gis", "programs")
DEFAULT_PORTS: dict[str, int] = {
    "national_id": 8101,
    "civil_registry": 8102,
    "tax": 8103,
    "gis": 8104,
    "programs": 8105,
}
TITLES: dict[str, str] = {
    "national_id": "National ID authority (SOAP)",
    "civil_registry": "Civil registry (FHIR, webhooks, DCI)",
    "tax": "Tax authority (file drops + status API)",
    "gis": "GIS (REST / GeoJSON)",
    "programs": "Program MIS (REST + notification receiver)",
}
NATIONAL_ID_PATH = "/soap/national-id"
# The sandbox country's identifier profile (Verhoeff national IDs): the mocks check with it and
# `srhub run` gives it to the hub while the sandbox runs (SRHUB_IDENTIFIER_PROFILE overrides).
SANDBOX_IDENTIFIER_PROFILE = SANDBOX_PROFILE_PATH.resolve()


class SandboxError(RuntimeError):
    """The sandbox could not start; the message says which mock and what to change."""


@dataclass
class SandboxConfig:
    people: int = 2000
    seed: int = 42
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    work_dir: Path = Path("var/sandbox")
    drop_folder: Path | None = None  # default: <work_dir>/tax-drops
    connectors_file: Path | None = None  # default: <work_dir>/connectors.toml
    write_connectors: bool = True
    only: Sequence[str] | None = None  # start just these mocks (default: all)
    noise_rate: float = 0.03  # data-entry noise of every partner's copy of a person
    as_of: date | None = None  # census date of the population (default: the generator's)
    soap_username: str = "hub-client"
    soap_password: str | None = None  # None: generated
    dci_bearer_token: str | None = None  # civil registry DCI API token; None: generated
    programs_webhook_secret: str | None = None  # None: generated
    tax_interval_seconds: float = 60.0  # 0: drop only on demand
    tax_rows_per_file: int = 100
    tax_drop_on_start: bool = True
    amqp_url: str | None = None  # program MIS consumes amqp_queue there when set
    amqp_queue: str = "sr.deliver.program-mis"
    civil_registry_rate_days_per_second: float = 0.0
    civil_registry_messy_rate: float = 0.0  # share of bundles with real-world quirks (0..1)
    extra: dict[str, Any] = field(default_factory=dict)

    def port(self, name: str) -> int:
        return int(self.ports.get(name, DEFAULT_PORTS[name]))


@dataclass
class MockInfo:
    """One mock as the table and the connectors file show it."""

    name: str
    title: str
    status: str  # "running"
    url: str | None = None
    port: int | None = None
    details: dict[str, Any] = field(default_factory=dict)  # what a connector needs


@dataclass
class _Built:
    app: Flask
    details: Callable[[str], dict[str, Any]]  # base URL -> connector settings


class RunningSandbox:
    """The started mocks. Stop with ``stop()`` or by leaving the ``with`` block."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.mocks: dict[str, MockInfo] = {}
        self.servers: dict[str, MockServer] = {}
        self.connectors_file: Path | None = None
        self.households: list[Household] = []

    @property
    def running(self) -> dict[str, MockInfo]:
        return {n: m for n, m in self.mocks.items() if m.status == "running"}

    def url(self, name: str) -> str:
        info = self.mocks.get(name)
        if info is None or info.url is None:
            raise KeyError(f"mock {name!r} is not running")
        return info.url

    def connectors(self) -> dict[str, dict[str, Any]]:
        """What the connectors file holds, for in-process use (``srhub run``)."""
        return {
            name: {"kind": name, "url": info.url, **info.details}
            for name, info in self.running.items()
        }

    def app(self, name: str) -> Flask:
        return self.servers[name].app

    def stop(self) -> None:
        for name in reversed(list(self.servers)):
            try:
                self.servers[name].stop()
            except Exception:  # one stubborn mock must not keep the others running
                log.exception("stopping the %s mock failed", name)
        self.servers.clear()

    def table(self) -> str:
        return render_table(self)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- builders
def _import_factory(module_name: str) -> tuple[Any, Any]:
    """(module, create_app) of a mock package (a missing one raises ModuleNotFoundError)."""
    module = importlib.import_module(module_name)
    factory = getattr(module, "create_app", None)
    if factory is None:
        raise SandboxError(f"{module_name} has no create_app factory: the installation is broken")
    return module, factory


def _config_instance(module: Any, class_name: str, **wanted: Any) -> Any:
    """Build a mock's config dataclass, setting only the fields that class really has.

    Each mock owns its config; the launcher passes what it knows by the field names it
    recognises and leaves the rest at the mock's defaults.
    """
    cls = getattr(module, class_name, None)
    if cls is None:
        config_module = importlib.import_module(f"{module.__name__}.config")
        cls = getattr(config_module, class_name)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in wanted.items() if k in names and v is not None})


def _build_national_id(cfg: SandboxConfig, ctx: dict[str, Any]) -> _Built:
    module, factory = _import_factory("sandbox_mocks.national_id")
    conf = _config_instance(
        module,
        "NationalIdConfig",
        seed=cfg.seed,
        people=cfg.people,
        noise_rate=cfg.noise_rate,
        username=cfg.soap_username,
        password=ctx["soap_password"],
    )

    def details(url: str) -> dict[str, Any]:
        return {
            "endpoint_url": url + NATIONAL_ID_PATH,
            "wsdl_url": url + NATIONAL_ID_PATH + "?wsdl",
            "username": cfg.soap_username,
            "password": ctx["soap_password"],
        }

    return _Built(factory(conf), details)


def _build_civil_registry(cfg: SandboxConfig, ctx: dict[str, Any]) -> _Built:
    module, factory = _import_factory("sandbox_mocks.civil_registry")
    kwargs: dict[str, Any] = {
        "population_seed": cfg.seed,
        "population_people": cfg.people,
        "dci_bearer_token": ctx["dci_bearer_token"],
        "rate_days_per_second": cfg.civil_registry_rate_days_per_second,
        "system_client_id": ctx["crvs_client_id"],
        "system_client_secret": ctx["crvs_client_secret"],
        "system_sha_secret": ctx["crvs_sha_secret"],
        "messy_rate": cfg.civil_registry_messy_rate,
    }
    if cfg.as_of is not None:
        kwargs["start_date"] = cfg.as_of
    conf = _config_instance(module, "CivilRegistryConfig", **kwargs)

    def details(url: str) -> dict[str, Any]:
        return {
            "base_url": url,
            "fhir_feed_url": url + "/feed",
            "webhooks_url": url + "/webhooks",
            "dci_base_url": url + "/registry",
            "dci_bearer_token": ctx["dci_bearer_token"],
            "registry_id": getattr(conf, "registry_id", "civil-registry"),
            # OpenCRVS's webhooks: the system client registered for the hub
            "signature_scheme": "opencrvs",
            "auth_url": url + "/auth",
            "client_id": ctx["crvs_client_id"],
            "client_secret": ctx["crvs_client_secret"],
            "webhook_secret": ctx["crvs_sha_secret"],
        }

    return _Built(factory(conf), details)


def _build_tax(cfg: SandboxConfig, ctx: dict[str, Any]) -> _Built:
    from sandbox_mocks.tax import TaxAuthorityConfig, create_app

    folder = (cfg.drop_folder or cfg.work_dir / "tax-drops").resolve()
    conf = TaxAuthorityConfig(
        drop_folder=folder,
        households=ctx["households"](),
        seed=cfg.seed,
        interval_seconds=cfg.tax_interval_seconds,
        rows_per_file=cfg.tax_rows_per_file,
        noise_rate=cfg.noise_rate,
        drop_on_start=cfg.tax_drop_on_start,
    )

    def details(url: str) -> dict[str, Any]:
        return {
            "drop_folder": str(folder),
            "manifest_glob": "*.manifest.json",
            "status_url": url + "/status",
            "api_url": url,
        }

    return _Built(create_app(conf), details)


def _build_gis(cfg: SandboxConfig, ctx: dict[str, Any]) -> _Built:
    module, factory = _import_factory("sandbox_mocks.gis")
    conf = _config_instance(
        module,
        "GisConfig",
        seed=cfg.seed,
        people=cfg.people,
    )
    prefix = getattr(module, "PREFIX", "")
    return _Built(factory(conf), lambda url: {"base_url": url, "api_url": url + prefix})


def _build_programs(cfg: SandboxConfig, ctx: dict[str, Any]) -> _Built:
    from sandbox_mocks.population import DEFAULT_AS_OF
    from sandbox_mocks.programs import ProgramMisConfig, create_app

    conf = ProgramMisConfig(
        households=ctx["households"](),
        seed=cfg.seed,
        as_of=cfg.as_of or DEFAULT_AS_OF,
        noise_rate=cfg.noise_rate,
        webhook_secret=ctx["programs_webhook_secret"],
        amqp_url=cfg.amqp_url,
        amqp_queue=cfg.amqp_queue,
    )

    def details(url: str) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "base_url": url,
            "webhook_url": url + "/notifications/webhook",
            "webhook_secret": ctx["programs_webhook_secret"],
            "webhook_signature_header": "X-Hub-Signature-256",
            "dci_notify_url": url + "/registry/notify",
            "notifications_url": url + "/notifications",
        }
        if cfg.amqp_url:
            settings["amqp_queue"] = cfg.amqp_queue
        return settings

    return _Built(create_app(conf), details)


BUILDERS: dict[str, Callable[[SandboxConfig, dict[str, Any]], _Built]] = {
    "national_id": _build_national_id,
    "civil_registry": _build_civil_registry,
    "tax": _build_tax,
    "gis": _build_gis,
    "programs": _build_programs,
}


# ---------------------------------------------------------------------------- starting
def start_sandbox(config: SandboxConfig | None = None) -> RunningSandbox:
    """Start the mocks; on any failure stop what already started and raise (``SandboxError``
    for what the config can change, ``ModuleNotFoundError`` for a broken installation)."""
    config = config or SandboxConfig()
    wanted = list(config.only) if config.only else list(MOCK_NAMES)
    unknown = [n for n in wanted if n not in BUILDERS]
    if unknown:
        raise SandboxError(f"unknown mock(s) {unknown}; expected some of {list(MOCK_NAMES)}")
    sandbox = RunningSandbox(config)
    ctx = _context(config, sandbox)
    try:
        for name in MOCK_NAMES:
            if name in wanted:
                _start_one(name, config, ctx, sandbox)
        if config.write_connectors:
            path = config.connectors_file or config.work_dir / "connectors.toml"
            write_connectors_file(path, sandbox)
            sandbox.connectors_file = path.resolve()
    except BaseException:
        sandbox.stop()
        raise
    return sandbox


def _context(config: SandboxConfig, sandbox: RunningSandbox) -> dict[str, Any]:
    """Shared inputs: secrets (given or generated) and the population, built at most once."""

    def households() -> list[Household]:
        if not sandbox.households:
            from sandbox_mocks.population import DEFAULT_AS_OF, iter_households

            sandbox.households = list(
                iter_households(config.seed, config.people, config.as_of or DEFAULT_AS_OF)
            )
        return sandbox.households

    return {
        "households": households,
        "soap_password": config.soap_password or secrets.token_urlsafe(18),
        "dci_bearer_token": config.dci_bearer_token or secrets.token_urlsafe(24),
        "programs_webhook_secret": config.programs_webhook_secret or secrets.token_urlsafe(24),
        # OpenCRVS makes all three UUIDs (user-mgnt registerSystem)
        "crvs_client_id": str(uuid.uuid4()),
        "crvs_client_secret": str(uuid.uuid4()),
        "crvs_sha_secret": str(uuid.uuid4()),
    }


def _start_one(
    name: str, config: SandboxConfig, ctx: dict[str, Any], sandbox: RunningSandbox
) -> None:
    built = BUILDERS[name](config, ctx)
    port = config.port(name)
    try:
        if port:
            _check_port_free(config.host, port)
        server = MockServer(built.app, config.host, port).start()
    except (OSError, SystemExit) as exc:  # werkzeug exits on a busy port; keep control here
        _stop_app(built.app)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "port in use"
        flag = "--" + name.replace("_", "-") + "-port"
        raise SandboxError(
            f"cannot serve the {name} mock on {config.host}:{port} ({reason}); "
            f"stop what uses the port or pass {flag} with another port (0 picks a free one)"
        ) from None
    sandbox.servers[name] = server
    sandbox.mocks[name] = MockInfo(
        name,
        TITLES[name],
        "running",
        url=server.url,
        port=server.port,
        details=built.details(server.url),
    )


def _check_port_free(host: str, port: int) -> None:
    """Bind and release the port the way werkzeug will, to fail with our own message."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _stop_app(app: Flask) -> None:
    """Run the shutdown hooks of an app that never got served (its threads already run)."""
    MockServer(app).stop()


# ------------------------------------------------------------------------ connectors file
def _toml_escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value)
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c.isprintable() else _toml_escape(c) for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_table(lines: list[str], name: str, table: dict[str, Any]) -> None:
    lines.append(f"[{name}]")
    for key, value in table.items():
        if value is not None and not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    lines.append("")


def connectors_document(sandbox: RunningSandbox) -> str:
    """The TOML text: one ``[connectors.<name>]`` table per running mock."""
    cfg = sandbox.config
    lines = [
        "# Connector settings for the sandbox mocks, written by `srhub sandbox up`.",
        "# Holds sandbox credentials and secrets: keep it out of version control.",
        "",
    ]
    _toml_table(
        lines,
        "sandbox",
        {
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seed": cfg.seed,
            "people": cfg.people,
            "host": cfg.host,
        },
    )
    for name, table in sandbox.connectors().items():
        _toml_table(lines, f"connectors.{name}", table)
    return "\n".join(lines)


def write_connectors_file(path: Path, sandbox: RunningSandbox) -> None:
    """Written atomically and readable by the owner only (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(connectors_document(sandbox))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------- table
def _table_rows(sandbox: RunningSandbox) -> Iterator[tuple[str, str, str, str]]:
    for name in MOCK_NAMES:
        info = sandbox.mocks.get(name)
        if info is None:
            continue
        detail = info.title
        if name == "national_id":
            detail = f"SOAP {info.details['endpoint_url']}  WSDL ?wsdl"
        elif name == "tax":
            detail = f"drop folder {info.details['drop_folder']}"
        elif name == "programs":
            detail = f"webhook {info.details['webhook_url']}"
        yield name, "running", info.url or "-", detail


def render_table(sandbox: RunningSandbox) -> str:
    rows = [("MOCK", "STATUS", "URL", "DETAILS"), *_table_rows(sandbox)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
        for r in rows
    ]
    if sandbox.connectors_file is not None:
        lines.append(f"connectors config: {sandbox.connectors_file}")
    lines.append(f"identifier profile: {SANDBOX_IDENTIFIER_PROFILE}")
    return "\n".join(lines)
