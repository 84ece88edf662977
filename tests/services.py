"""Reaching the real PostgreSQL and RabbitMQ servers that service tests need.

Locally, a server that is not configured or not reachable makes its tests skip with a reason
that says which variable to set. Under ``CI=true`` the same situation fails the run: CI must
never go green by skipping the tests that matter.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

DATABASE_ENV = "SRHUB_TEST_DATABASE_URL"
AMQP_ENV = "SRHUB_TEST_AMQP_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if in_ci():
        pytest.fail(f"CI=true and a required service is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def _tcp_reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def postgres_url_or_skip() -> str:
    url = os.environ.get(DATABASE_ENV, "")
    if not url:
        unavailable(f"{DATABASE_ENV} is not set; set it to a PostgreSQL URL to run these tests")
    if not _tcp_reachable(url, 5432):
        unavailable(f"PostgreSQL at {DATABASE_ENV} is not reachable")
    return url


def amqp_url_or_skip() -> str:
    url = os.environ.get(AMQP_ENV, "")
    if not url:
        unavailable(f"{AMQP_ENV} is not set; set it to an amqp:// URL to run these tests")
    if not _tcp_reachable(url, 5672):
        unavailable(f"RabbitMQ at {AMQP_ENV} is not reachable")
    return url


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
