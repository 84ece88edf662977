"""Liveness: answers as long as the process serves requests. Readiness checks come later."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from hub.auth.flask_auth import public

bp = Blueprint("health", __name__)


@bp.get("/health")
@public
def health() -> Response:
    return jsonify({"status": "ok"})
