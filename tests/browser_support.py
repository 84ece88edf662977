"""Headless Chromium for the page tests (Debian's package, driven by Python playwright).

One ``browser`` fixture for every page test; ``tests/conftest.py`` imports it, so any test
module can ask for it. The browser process is shared by the session; each module's contexts
are closed when the module ends. Locally it skips with the reason when chromium or playwright is
missing; under CI=true it fails instead, so CI cannot pass without having run the pages.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SRHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_session() -> Iterator[Any]:
    """One Chromium (and one playwright driver) for the whole session: starting them took
    1-2 s per page-test module. Modules get it through ``browser``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install playwright")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _missing(f"{CHROMIUM} not found: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser(chromium_session: Any) -> Iterator[Any]:
    """The session's Chromium for one module. Tests open their own contexts (fresh cookies,
    storage, service workers); whatever contexts the module left open are closed after it,
    as closing a browser of the module's own did."""
    assert chromium_session.is_connected(), "Chromium went away during the session"
    try:
        yield chromium_session
    finally:
        for context in list(chromium_session.contexts):
            context.close()
