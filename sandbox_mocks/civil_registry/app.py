"""The civil-registry (CRVS) mock: an OpenCRVS-like registry that also speaks DCI.

``create_app(config, events=None)`` builds the Flask app. ``events`` is any iterable of
``VitalEvent``; by default the events come from the synthetic population
(``sandbox_mocks.population.iter_vital_events``) for ``config.days`` days from
``config.start_date``.

Time: events become registered when the simulated clock reaches their ``registration_date``.
Move it with ``POST /_admin/clock/advance {"days": N}`` (the answer says how many events were
released and how many deliveries were queued) or let it run with ``rate_days_per_second``.
Registered events then appear in ``GET /feed``, in DCI searches, and go out as webhook
deliveries (``/webhooks``) and DCI ``notify`` calls.

Webhooks behave as OpenCRVS's (``webhooks``): subscribing needs a system client's token from
``POST /auth/token`` (client credentials, ``systems``) and the client's signing secret; the
client configured in ``CivilRegistryConfig`` is registered at start.

Admin: ``/_admin/faults`` (fault injection), ``/_admin/clock``, ``/_admin/deliveries`` (every
outbound attempt), ``/_admin/status`` (event counts, subscriptions), ``POST /_admin/systems``
(register another system client, answered as OpenCRVS's ``registerSystem``) and
``POST /_admin/systems/<client_id>/deactivate`` / ``reactivate``.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox_mocks.civil_registry.config import CivilRegistryConfig
from sandbox_mocks.civil_registry.dci import DciService, dci_blueprint
from sandbox_mocks.civil_registry.dci_envelope import EnvelopeError, error_body
from sandbox_mocks.civil_registry.delivery import Deliverer, RetryPolicy
from sandbox_mocks.civil_registry.feed import feed_blueprint
from sandbox_mocks.civil_registry.store import EventStore
from sandbox_mocks.civil_registry.systems import SystemClients, auth_blueprint
from sandbox_mocks.civil_registry.webhooks import (
    OPENCRVS_DELIVERY,
    WebhookHub,
    webhooks_blueprint,
)
from sandbox_mocks.common.clock import SimClock, install_clock
from sandbox_mocks.common.faults import (
    ADMIN_TOKEN_HEADER,
    add_shutdown_hook,
    default_error_renderer,
    install_faults,
)
from sandbox_mocks.population.model import VitalEvent

EXTENSION_KEY = "civil_registry"
MAX_BODY_BYTES = 2 * 1024 * 1024


class CivilRegistry:
    """The parts of one running registry, kept on ``app.extensions["civil_registry"]``."""

    def __init__(self, config: CivilRegistryConfig, events: Iterable[VitalEvent]) -> None:
        self.config = config
        self.clock = SimClock(config.start_date, config.rate_days_per_second)
        self.store = EventStore(
            events, config.messy_rate, config.population_seed, config.noise_rate
        )
        self.deliverer = Deliverer(config.retry)
        self.systems = SystemClients(config.system_token_seconds)
        self.client = self.systems.register(
            config.system_client_name,
            config.system_client_type,
            client_id=config.system_client_id,
            client_secret=config.system_client_secret,
            sha_secret=config.system_sha_secret,
            webhook_permissions=config.system_client_permissions,
        )
        self.webhooks = WebhookHub(
            self.deliverer,
            self.systems,
            delivery_policy=RetryPolicy(
                max_attempts=config.webhook_attempts,
                base_delay_s=OPENCRVS_DELIVERY.base_delay_s,
                factor=OPENCRVS_DELIVERY.factor,
                timeout_s=config.retry.timeout_s,
            ),
        )
        self.dci = DciService(config.registry_id, self.deliverer)
        self._release_lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def release_due(self) -> dict[str, int]:
        """Register what the clock has reached and push it to every kind of subscriber."""
        with self._release_lock:  # keeps release order == index order == delivery order
            fresh = self.store.release_due(self.clock.today())
            notifies = self.dci.add_released(fresh) if fresh else 0
            webhooks = self.webhooks.publish(fresh) if fresh else 0
        return {"released": len(fresh), "webhooks_queued": webhooks, "notifies_queued": notifies}

    def start_ticker(self) -> None:
        """With a running clock, release events even when nobody calls the mock."""
        if self._ticker is not None:
            return

        def run() -> None:
            while not self._stop.wait(self.config.tick_interval_s):
                if self.clock.rate_days_per_second > 0:
                    self.release_due()

        self._ticker = threading.Thread(target=run, name="crvs-clock-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(2)
        self.deliverer.stop()

    def status(self) -> dict[str, Any]:
        return {
            "events": self.store.counts(),
            "clock": self.clock.to_dict(),
            "webhook_subscriptions": self.webhooks.snapshot(),
            "challenges_sent": self.webhooks.challenges_sent,
            "tokens_issued": self.systems.tokens_issued,
            "dci_subscriptions": self.dci.subscriptions(),
        }


def _default_events(config: CivilRegistryConfig) -> Iterable[VitalEvent]:
    from sandbox_mocks.population import iter_vital_events

    return iter_vital_events(
        config.population_seed,
        config.population_people,
        config.start_date,
        config.days,
        as_of=config.as_of or config.start_date,
    )


def _error_renderer(registry_id: str) -> Any:
    """Injected faults look like this registry's own errors: DCI-shaped on DCI paths."""

    def render(status: int, reason: str) -> Response:
        if request.path.startswith("/registry/"):
            action = request.path.rstrip("/").rsplit("/", 1)[-1]
            code = "err.request.timeout" if status == 504 else "err.service.unavailable"
            response = jsonify(error_body(EnvelopeError(code, reason), registry_id, action))
            response.status_code = status
            return response
        return default_error_renderer(status, reason)

    return render


def create_app(
    config: CivilRegistryConfig | None = None, events: Iterable[VitalEvent] | None = None
) -> Flask:
    config = config or CivilRegistryConfig()
    registry = CivilRegistry(config, events if events is not None else _default_events(config))
    app = Flask("civil_registry")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions[EXTENSION_KEY] = registry
    render_error = _error_renderer(config.registry_id)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        """404, 405, 413 ... in the registry's formats, never an HTML page."""
        status = exc.code or 500
        if request.path.startswith("/registry/"):
            action = request.path.rstrip("/").rsplit("/", 1)[-1]
            code = "err.request.bad" if status < 500 else "err.service.unavailable"
            response = jsonify(
                error_body(
                    EnvelopeError(code, exc.description or exc.name), config.registry_id, action
                )
            )
        else:
            response = jsonify(
                {
                    "error": {
                        "code": exc.name.lower().replace(" ", "_"),
                        "message": exc.description or exc.name,
                    }
                }
            )
        response.status_code = status
        return response

    install_faults(
        app,
        config.faults,
        error_renderer=render_error,
        admin_token=config.admin_token,
    )

    @app.before_request
    def _guard_admin_and_release() -> Response | tuple[Response, int] | None:
        if request.path.startswith("/_admin") and config.admin_token is not None:
            given = request.headers.get(ADMIN_TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), config.admin_token.encode()):
                body = {"error": {"code": "unauthorized", "message": "admin token missing"}}
                return jsonify(body), 401
        if registry.clock.rate_days_per_second > 0:
            registry.release_due()
        return None

    install_clock(app, registry.clock, on_change=registry.release_due)
    app.register_blueprint(auth_blueprint(registry.systems))
    app.register_blueprint(webhooks_blueprint(registry.webhooks))
    app.register_blueprint(feed_blueprint(registry.store))
    app.register_blueprint(dci_blueprint(registry.dci, config.dci_bearer_token))

    @app.get("/_admin/deliveries")
    def deliveries() -> Response:
        limit = request.args.get("limit", "1000")
        return jsonify(registry.deliverer.snapshot(int(limit) if limit.isdigit() else 1000))

    @app.get("/_admin/status")
    def status() -> Response:
        return jsonify(registry.status())

    @app.post("/_admin/systems")
    def register_system() -> tuple[Response, int]:
        """Register a system client, answered as OpenCRVS's ``registerSystem`` (201)."""
        body = request.get_json(silent=True) or {}
        permissions = {
            str(w.get("event")): [str(p) for p in w.get("permissions", [])]
            for w in (body.get("settings") or {}).get("webhook", [])
            if isinstance(w, dict)
        }
        try:
            client = registry.systems.register(
                str(body.get("name") or "system"),
                str(body.get("type") or "HEALTH"),
                webhook_permissions=permissions,
            )
        except ValueError as exc:
            return jsonify({"error": {"code": "bad_request", "message": str(exc)}}), 400
        return jsonify({"clientSecret": client.client_secret, "system": client.public()}), 201

    @app.post("/_admin/systems/<client_id>/<action>")
    def system_status(client_id: str, action: str) -> tuple[Response, int]:
        states = {"deactivate": "deactivated", "reactivate": "active"}
        if action not in states:
            return jsonify({"error": {"code": "not_found", "message": "no such action"}}), 404
        client = registry.systems.set_status(client_id, states[action])
        if client is None:
            return jsonify({"error": {"code": "not_found", "message": "no such client"}}), 404
        return jsonify(client.public()), 200

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok", "service": "civil_registry"})

    registry.release_due()  # events registered on the start date are known from the start
    registry.start_ticker()
    add_shutdown_hook(app, registry.stop)
    return app


def registry_of(app: Flask) -> CivilRegistry:
    registry = app.extensions[EXTENSION_KEY]
    assert isinstance(registry, CivilRegistry)
    return registry
