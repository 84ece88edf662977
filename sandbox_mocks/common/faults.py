"""Fault injection for every sandbox mock: make a partner system slow, broken or absent on demand.

Why: the hub's resilience (retries, circuit breakers, dead letters, the health dashboard) can only
be shown and tested against partners that misbehave in controlled, repeatable ways. Every mock
installs the same faults so a test or a demo can say "the civil registry is down for an hour" or
"one answer in ten is a 503" without touching the mock's own code.

API
---
``FaultConfig``
    Dataclass with the standing faults. Fields (all optional):

    - ``latency_ms`` / ``latency_jitter_ms``: delay added to every answer; the jitter is drawn
      uniformly in ``[0, latency_jitter_ms]``.
    - ``error_rate`` (0..1) and ``error_status`` (5xx, default 503): share of requests that get
      an error answer instead of the real one. The body comes from the error renderer.
    - ``timeout_rate`` (0..1) and ``timeout_s`` (default 30): share of requests held for
      ``timeout_s`` seconds (longer than any sane client timeout), then answered 504.
    - ``malformed_rate`` (0..1) and ``malformed_mode`` (``truncate`` | ``garbage``): share of
      answers whose body is cut in half or replaced by bytes no parser accepts, while the
      status and content type still claim success.
    - ``down`` (bool): the system is down now; every request gets a 503.
    - ``down_windows``: list of ``DownWindow(start, until)`` (aware datetimes, UTC if naive);
      inside a window the system is down. Either bound may be ``None`` (open-ended).
    - ``seed``: seed of the random draws, so a run with the same requests in the same order gets
      the same faults.
    - ``exempt_prefixes``: request paths never faulted (default ``("/_admin",)``, so a test can
      always repair a mock it broke).
    - ``header_faults``: honour the per-request headers below (default true).

    ``FaultConfig.from_dict(d)`` validates a mapping (unknown keys and bad values raise
    ``ValueError`` with the reason); ``FaultConfig.from_file(path)`` reads TOML (``.toml``) or
    JSON. ``to_dict()`` is the inverse.

``install_faults(app, config=None, *, error_renderer=None, admin_token=None, now=None)``
    Installs the faults on a Flask app and returns the ``FaultInjector``. Also registers the
    admin endpoint ``/_admin/faults``:

    - ``GET`` -> ``{"config": {...}, "stats": {"requests", "errors", "timeouts", ...}}``
    - ``PUT`` with a full or partial config -> replaces the config (missing fields take
      defaults). ``PATCH`` merges into the current one. ``DELETE`` restores the config the app
      started with. Invalid bodies get a 400 with the reason.

    If ``admin_token`` is set, admin calls must carry ``X-Mock-Admin-Token`` with that value.

``error_renderer(status: int, reason: str) -> flask.Response``
    Builds the error answer. The default is JSON ``{"error": {"code", "message"}}``; a SOAP mock
    passes one that renders a SOAP Fault.

Per-request headers (when ``header_faults`` is true), comma-separated in ``X-Mock-Fault``:

- ``error`` or ``error=503``: answer with that status;
- ``timeout`` or ``timeout=2.5``: hold the request (seconds), then 504;
- ``malformed`` or ``malformed=garbage``: corrupt the body;
- ``down``: answer as if the system were down;
- ``X-Mock-Latency-Ms: 500``: add latency to this request.

Holds and delays wait on an event that ``FaultInjector.release()`` sets, so stopping a server
never waits for a 30-second timeout fault to finish.
"""

from __future__ import annotations

import hmac
import json
import random
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.datastructures import Headers

ErrorRenderer = Callable[[int, str], Response]

MALFORMED_MODES = ("truncate", "garbage")
SHUTDOWN_HOOKS = "sandbox_shutdown_hooks"
EXTENSION_KEY = "sandbox_faults"
ADMIN_TOKEN_HEADER = "X-Mock-Admin-Token"  # noqa: S105 - a header name, not a secret
FAULT_HEADER = "X-Mock-Fault"
LATENCY_HEADER = "X-Mock-Latency-Ms"
MAX_HOLD_S = 3600.0


def _parse_time(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not an ISO 8601 date-time") from None
    else:
        raise ValueError(f"{name}: expected an ISO 8601 date-time string")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DownWindow:
    """A period in which the mock plays dead. ``None`` on either side means open-ended."""

    start: datetime | None = None
    until: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        if self.start is not None and moment < self.start:
            return False
        return not (self.until is not None and moment >= self.until)

    @classmethod
    def from_dict(cls, data: Any) -> DownWindow:
        if not isinstance(data, Mapping):
            raise ValueError("down_windows: each window must be an object with start/until")
        unknown = set(data) - {"start", "until", "from"}
        if unknown:
            raise ValueError(f"down_windows: unknown keys {sorted(unknown)}")
        start = _parse_time(data.get("start", data.get("from")), "down_windows.start")
        until = _parse_time(data.get("until"), "down_windows.until")
        if start and until and until <= start:
            raise ValueError("down_windows: 'until' must be after 'start'")
        return cls(start=start, until=until)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass
class FaultConfig:
    """The standing faults of one mock. See the module docstring for each field."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    timeout_rate: float = 0.0
    timeout_s: float = 30.0
    malformed_rate: float = 0.0
    malformed_mode: str = "truncate"
    down: bool = False
    down_windows: list[DownWindow] = field(default_factory=list)
    seed: int | None = None
    exempt_prefixes: tuple[str, ...] = ("/_admin",)
    header_faults: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field; called on every construction."""
        for name in ("error_rate", "timeout_rate", "malformed_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{name}: expected a number between 0 and 1")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name}: {value} is outside 0..1")
        for name in ("latency_ms", "latency_jitter_ms"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: expected a non-negative number of milliseconds")
            if value > MAX_HOLD_S * 1000:
                raise ValueError(f"{name}: more than {MAX_HOLD_S:.0f} s is not a latency")
        if not isinstance(self.timeout_s, int | float) or not 0 <= self.timeout_s <= MAX_HOLD_S:
            raise ValueError(f"timeout_s: expected 0..{MAX_HOLD_S:.0f} seconds")
        if not isinstance(self.error_status, int) or not 400 <= self.error_status <= 599:
            raise ValueError("error_status: expected an HTTP error status 400..599")
        if self.malformed_mode not in MALFORMED_MODES:
            raise ValueError(f"malformed_mode: expected one of {list(MALFORMED_MODES)}")
        if not isinstance(self.down, bool):
            raise ValueError("down: expected true or false")
        seed = self.seed
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError("seed: expected an integer or null")
        if not all(isinstance(w, DownWindow) for w in self.down_windows):
            raise ValueError("down_windows: expected DownWindow items")
        if not all(isinstance(p, str) for p in self.exempt_prefixes):
            raise ValueError("exempt_prefixes: expected a list of path prefixes")

    @classmethod
    def from_dict(cls, data: Any) -> FaultConfig:
        """Build from a JSON/TOML mapping, refusing unknown keys so typos do not pass silently."""
        if not isinstance(data, Mapping):
            raise ValueError("fault config must be an object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {sorted(unknown)}")
        kwargs: dict[str, Any] = dict(data)
        if "down_windows" in kwargs:
            windows = kwargs["down_windows"] or []
            if not isinstance(windows, list):
                raise ValueError("down_windows: expected a list")
            kwargs["down_windows"] = [DownWindow.from_dict(w) for w in windows]
        if "exempt_prefixes" in kwargs:
            prefixes = kwargs["exempt_prefixes"]
            if not isinstance(prefixes, list | tuple):
                raise ValueError("exempt_prefixes: expected a list")
            kwargs["exempt_prefixes"] = tuple(prefixes)
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> FaultConfig:
        """Read a ``.toml`` file (a ``[faults]`` table or top-level keys) or a JSON file."""
        path = Path(path)
        raw = path.read_bytes()
        data: Any = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("faults"), dict):
            data = data["faults"]
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["down_windows"] = [w.to_dict() for w in self.down_windows]
        out["exempt_prefixes"] = list(self.exempt_prefixes)
        return out


def default_error_renderer(status: int, reason: str) -> Response:
    """JSON error body; mocks speaking another format pass their own renderer."""
    response = jsonify({"error": {"code": f"mock.fault.{status}", "message": reason}})
    response.status_code = status
    return response


@dataclass
class _Decision:
    """What happens to one request, drawn once in ``before_request``."""

    delay_s: float = 0.0
    error_status: int | None = None
    reason: str = ""
    hold_s: float | None = None
    malformed: str | None = None
    down: bool = False


class FaultInjector:
    """Holds the live config and the random stream; one per Flask app."""

    def __init__(
        self,
        config: FaultConfig,
        error_renderer: ErrorRenderer | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._initial = config
        self._config = config
        self._random = random.Random(config.seed)
        self._render = error_renderer or default_error_renderer
        self._now = now or (lambda: datetime.now(UTC))
        self._released = threading.Event()
        self.stats: dict[str, int] = {
            "requests": 0,
            "delayed": 0,
            "errors": 0,
            "timeouts": 0,
            "malformed": 0,
            "down": 0,
        }

    @property
    def config(self) -> FaultConfig:
        return self._config

    def set_config(self, config: FaultConfig) -> None:
        """Replace the faults; a new seed restarts the random stream so runs stay repeatable."""
        with self._lock:
            self._config = config
            self._random = random.Random(config.seed)

    def reset(self) -> None:
        self.set_config(self._initial)

    def release(self) -> None:
        """Wake every held request now (used on shutdown); later holds return immediately."""
        self._released.set()

    def is_down(self) -> bool:
        config = self._config
        if config.down:
            return True
        moment = self._now()
        return any(window.covers(moment) for window in config.down_windows)

    def _draw(self, rate: float) -> bool:
        # Draw even when the rate is 0 or 1 so the stream position does not depend on the rates.
        value = self._random.random()
        return value < rate

    def decide(self, path: str, headers: Mapping[str, str] | Headers) -> _Decision:
        """Draw this request's faults from the standing config, then apply header overrides."""
        config = self._config
        decision = _Decision()
        if any(path.startswith(prefix) for prefix in config.exempt_prefixes):
            return decision
        with self._lock:
            self.stats["requests"] += 1
            jitter = self._random.random() * config.latency_jitter_ms
            error = self._draw(config.error_rate)
            hold = self._draw(config.timeout_rate)
            malformed = self._draw(config.malformed_rate)
        decision.delay_s = (config.latency_ms + jitter) / 1000.0
        if self.is_down():
            decision.error_status, decision.reason = 503, "service is down (simulated outage)"
            decision.down = True
        elif hold:
            decision.hold_s = config.timeout_s
        elif error:
            decision.error_status = config.error_status
            decision.reason = "simulated server error (fault injection)"
        elif malformed:
            decision.malformed = config.malformed_mode
        if config.header_faults:
            _apply_headers(decision, headers)
        return decision

    def count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self._released.wait(seconds)

    def render_error(self, status: int, reason: str) -> Response:
        return self._render(status, reason)


def _apply_headers(decision: _Decision, headers: Mapping[str, str] | Headers) -> None:
    """Per-request faults from ``X-Mock-Fault`` / ``X-Mock-Latency-Ms``; bad values are ignored
    with a reason in ``X-Mock-Fault-Ignored`` rather than failing the real request."""
    latency = headers.get(LATENCY_HEADER)
    if latency:
        try:
            value = float(latency)
        except ValueError:
            value = -1.0
        if 0 <= value <= MAX_HOLD_S * 1000:
            decision.delay_s += value / 1000.0
    spec = headers.get(FAULT_HEADER, "")
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, arg = part.partition("=")
        name, arg = name.strip().lower(), arg.strip()
        if name == "error":
            status = int(arg) if arg.isdigit() else 503
            decision.error_status = status if 400 <= status <= 599 else 503
            decision.reason = "simulated server error (requested by header)"
            decision.hold_s = None
        elif name == "timeout":
            try:
                hold = float(arg) if arg else 30.0
            except ValueError:
                hold = 30.0
            decision.hold_s = min(max(hold, 0.0), MAX_HOLD_S)
            decision.error_status = None
        elif name == "malformed":
            decision.malformed = arg if arg in MALFORMED_MODES else "truncate"
        elif name == "down":
            decision.error_status, decision.reason = 503, "service is down (requested by header)"
            decision.down = True


def corrupt(body: bytes, mode: str) -> bytes:
    """Break a body so that JSON and XML parsers both refuse it."""
    if mode == "garbage":
        return b"\x00<<garbled \xff\xfe payload"
    if len(body) <= 1:
        return b"{"
    return body[: len(body) // 2]


def _check_admin(token: str | None) -> Response | None:
    if token is None:
        return None
    given = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if hmac.compare_digest(given.encode(), token.encode()):
        return None
    response = jsonify({"error": {"code": "unauthorized", "message": "admin token missing"}})
    response.status_code = 401
    return response


def add_shutdown_hook(app: Flask, hook: Callable[[], None]) -> None:
    """Register something to stop when ``MockServer.stop()`` stops this app."""
    app.extensions.setdefault(SHUTDOWN_HOOKS, []).append(hook)


def install_faults(
    app: Flask,
    config: FaultConfig | None = None,
    *,
    error_renderer: ErrorRenderer | None = None,
    admin_token: str | None = None,
    now: Callable[[], datetime] | None = None,
) -> FaultInjector:
    """Install fault injection and the ``/_admin/faults`` endpoint on ``app``."""
    injector = FaultInjector(config or FaultConfig(), error_renderer=error_renderer, now=now)
    app.extensions[EXTENSION_KEY] = injector
    add_shutdown_hook(app, injector.release)

    @app.before_request
    def _inject_before() -> Response | None:
        decision = injector.decide(request.path, request.headers)
        request.environ["sandbox.fault"] = decision
        if decision.delay_s > 0:
            injector.count("delayed")
            injector.wait(decision.delay_s)
        if decision.hold_s is not None:
            injector.count("timeouts")
            injector.wait(decision.hold_s)
            return injector.render_error(504, "simulated timeout: request held by the mock")
        if decision.error_status is not None:
            injector.count("down" if decision.down else "errors")
            return injector.render_error(decision.error_status, decision.reason)
        return None

    @app.after_request
    def _inject_after(response: Response) -> Response:
        decision = request.environ.get("sandbox.fault")
        if isinstance(decision, _Decision) and decision.malformed and response.status_code < 400:
            injector.count("malformed")
            response.direct_passthrough = False
            response.set_data(corrupt(response.get_data(), decision.malformed))
        return response

    def admin_faults() -> tuple[Response, int] | Response:
        denied = _check_admin(admin_token)
        if denied is not None:
            return denied
        if request.method == "DELETE":
            injector.reset()
        elif request.method in ("PUT", "PATCH"):
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return jsonify(
                    {"error": {"code": "bad_request", "message": "body must be a JSON object"}}
                ), 400
            base = injector.config.to_dict() if request.method == "PATCH" else {}
            base.update(body)
            try:
                injector.set_config(FaultConfig.from_dict(base))
            except (ValueError, TypeError) as exc:
                return jsonify({"error": {"code": "bad_request", "message": str(exc)}}), 400
        return jsonify({"config": injector.config.to_dict(), "stats": dict(injector.stats)})

    app.add_url_rule(
        "/_admin/faults",
        endpoint="sandbox_admin_faults",
        view_func=admin_faults,
        methods=["GET", "PUT", "PATCH", "DELETE"],
    )
    return injector


def get_injector(app: Flask) -> FaultInjector | None:
    injector = app.extensions.get(EXTENSION_KEY)
    return injector if isinstance(injector, FaultInjector) else None
