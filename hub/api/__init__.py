"""The hub's HTTP API: ``create_app(settings)`` builds the Flask app with every blueprint,
deny-by-default access control and problem+json errors."""

from __future__ import annotations

import importlib

from flask import Flask

from hub.settings import Settings, load_settings

__all__ = ["BLUEPRINTS", "create_app"]

# Every blueprint of the API, as "module:attribute", registered in this order.
BLUEPRINTS: tuple[str, ...] = (
    "hub.api.health:bp",
    "hub.api.households:bp",
    "hub.api.persons:bp",
    "hub.api.verification:bp",
    "hub.api.prefill:bp",
    "hub.api.dci:bp",
    "hub.api.fhir:bp",
    "hub.api.openapi:bp",
    "hub.api.monitoring:bp",
    "hub.ui:bp",
    "hub.api.subscriptions:bp",
    "hub.api.events:bp",
    "hub.api.intake:bp",
    "hub.collect:bp",
    "hub.openrosa:bp",
    "hub.api.review:bp",
    "hub.api.consents:bp",
    "hub.api.recertification:bp",
    "hub.api.change_requests:bp",
    "hub.api.quality:bp",
    "hub.ui.quality_views:bp",
    "hub.api.duplicates:bp",
    "hub.api.scoring:bp",
    "hub.api.reports:bp",
    "hub.api.simulations:bp",
    "hub.api.tokens:bp",
    "hub.api.read_audit:bp",
    "hub.ui.simulation_views:bp",
    "hub.ui.report_views:bp",
)


def create_app(settings: Settings | None = None, runtime: object | None = None) -> Flask:
    """Build the app. ``runtime`` (a HubRuntime) may be shared with workers in one process."""
    from hub.api.body_limit import LimitedRequest
    from hub.api.context import EXTENSION_KEY
    from hub.api.json_provider import StrictJSONProvider
    from hub.api.problems import install_error_handlers
    from hub.auth.flask_auth import init_app as init_auth
    from hub.logging_setup import install_access_log_redaction, install_database_error_redaction
    from hub.runtime import HubRuntime

    settings = settings or load_settings()
    hub = runtime if isinstance(runtime, HubRuntime) else HubRuntime(settings)
    # Under gunicorn no configure_logging ran: the access log and the handlers gunicorn set
    # up get their redaction here (idempotent).
    install_access_log_redaction()
    install_database_error_redaction()
    app = Flask("hub")
    app.request_class = LimitedRequest
    app.json = StrictJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    if settings.trusted_proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    app.extensions[EXTENSION_KEY] = hub
    from hub.ratelimit.flask_limits import install as install_rate_limits

    # Before authentication: a flood of requests (or of guessed tokens) is refused by a
    # counter update, not by a token check each (hub.ratelimit).
    install_rate_limits(app, settings, hub.engine)
    init_auth(app, settings, hub.sessions)
    install_error_handlers(app)
    from hub.intake.contract import INTAKE_EXTENSION_KEY
    from hub.intake.setup import broker_publisher, intake_service
    from hub.review.service import ReviewQueue

    # Conflicts a reviewer resolves here are applied with the review queue's sink, as the
    # ingest worker's applications are (hub.assembly): both open the submission's review item.
    app.extensions[INTAKE_EXTENSION_KEY] = intake_service(
        hub, publisher=broker_publisher(settings), review=ReviewQueue()
    )
    for target in BLUEPRINTS:
        module_name, _, attribute = target.partition(":")
        app.register_blueprint(getattr(importlib.import_module(module_name), attribute))
    from hub.api.scan_resume import resume_stalled_scans

    # Duplicate and data-quality scans a stopped process left running carry on here.
    resume_stalled_scans(app, hub)
    return app
