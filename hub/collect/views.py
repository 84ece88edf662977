"""Serves the intake page shell, its service worker and its built assets.

Nothing here reads or writes households: the page is static, and everything it sends or fetches
goes through ``/openrosa`` with the field worker's own token. Asset URLs carry the build's
content hash (``static/build.json``) so browsers and the service worker never mix two builds.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, render_template, send_from_directory

from hub.auth.flask_auth import public

STATIC_DIR = Path(__file__).with_name("static")
# Where the page finds the OpenRosa server (the URL a field worker would type into ODK Collect).
OPENROSA_BASE = "/openrosa"
SYNC_INTERVAL_MS = 30_000
ASSETS = frozenset({"collect.js", "collect.css", "sw.js"})
# enketo-core sets inline styles on widgets; it runs no eval and loads nothing from elsewhere.
# Its one inline handler, onsubmit="return false;" on the form, is allowed by its hash alone.
ENKETO_ONSUBMIT_HASH = "sha256-2rvfFrggTCtyF5WOiTri1gDS8Boibj4Njn0e+VCBmDI="
CSP = (
    f"default-src 'none'; script-src 'self' 'unsafe-hashes' '{ENKETO_ONSUBMIT_HASH}'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "worker-src 'self'; manifest-src 'self'; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

bp = Blueprint("collect", __name__, url_prefix="/collect", template_folder="templates")


@functools.cache
def build_version() -> str:
    """The content hash ``make assets`` wrote; "missing" when the assets were never built."""
    try:
        return str(json.loads((STATIC_DIR / "build.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "missing"


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.route("/")
@public
def page() -> Any:
    version = build_version()
    if version == "missing":
        abort(503, description="The intake page's assets are not built: run `make assets`.")
    response = Response(
        render_template(
            "collect/index.html",
            version=version,
            openrosa_base=OPENROSA_BASE,
            sync_interval_ms=SYNC_INTERVAL_MS,
        ),
        mimetype="text/html",
    )
    # The service worker keeps its own copy for offline use; browsers should not keep another.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/sw.js")
@public
def service_worker() -> Any:
    # Served from /collect/ so its scope is the page's; revalidated on every update check.
    response = send_from_directory(STATIC_DIR, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/static/<name>")
@public
def asset(name: str) -> Any:
    if name not in ASSETS:
        abort(404)
    # URLs carry ?v=<content hash>: one URL is one content forever.
    response = send_from_directory(STATIC_DIR, name, max_age=365 * 24 * 3600)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
