"""Liveness (``/health``: the process serves requests) and readiness (``/health/ready``: the
database and the broker answer; each connector's state is reported but a partner outage does
not make the hub unready — it shows as ``degraded``). Both are public and carry no secrets:
states, times, reason codes and queue depths only."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from hub.auth.flask_auth import public

bp = Blueprint("health", __name__)


@bp.get("/health")
@public
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
@public
def ready() -> Response:
    from hub.monitoring.health import readiness

    is_ready, detail = readiness(current_app)
    response = jsonify(detail)
    response.status_code = 200 if is_ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
