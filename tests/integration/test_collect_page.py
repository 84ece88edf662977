"""The intake page as the real hub serves it: public shell and assets (they hold no data), a
strict CSP, versioned URLs, and the built assets consistent with their recorded hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from hub.api import create_app
from hub.auth.flask_auth import undeclared_endpoints
from hub.collect.views import ASSETS, STATIC_DIR, build_version
from hub.settings import load_settings


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = load_settings(env={}, data_dir=tmp_path, database_url=db_url, sandbox=False)
    yield create_app(settings)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_page_and_its_assets_are_public_and_versioned(app: Flask) -> None:
    assert undeclared_endpoints(app) == []
    client = app.test_client()
    assert client.get("/collect").status_code in (301, 308)  # the page lives at /collect/
    page = client.get("/collect/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    version = build_version()
    assert f"/collect/static/collect.js?v={version}" in html
    assert f"/collect/static/collect.css?v={version}" in html
    assert f"/collect/sw.js?v={version}" in html
    assert 'data-openrosa="/openrosa"' in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-hashes' 'sha256-" in csp  # no inline scripts, no eval
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp

    script = client.get(f"/collect/static/collect.js?v={version}")
    assert script.status_code == 200
    assert "immutable" in script.headers["Cache-Control"]
    worker = client.get(f"/collect/sw.js?v={version}")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert worker.headers["Cache-Control"] == "no-cache"
    assert client.get("/collect/static/build.json").status_code == 404  # only the named assets
    assert client.get("/collect/static/..%2Fviews.py").status_code == 404


def test_the_committed_build_matches_its_recorded_hash() -> None:
    """build.json is written from the three files by `make assets`: a hand-edited or partly
    rebuilt asset would make browsers and the service worker mix two builds."""
    digest = hashlib.sha256()
    for name in ("collect.js", "sw.js", "collect.css"):
        digest.update((STATIC_DIR / name).read_bytes())
    recorded = json.loads((STATIC_DIR / "build.json").read_text())["version"]
    assert recorded == digest.hexdigest()[:16]
    assert {"collect.js", "sw.js", "collect.css"} == ASSETS
    assert (STATIC_DIR / "collect.js").stat().st_size > 500_000  # enketo-core is inside
