"""Rate limits across two gunicorn workers on PostgreSQL: one budget, not one per process."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database
from tests.integration.test_serve_slow_clients import free_port, wait_for_health

LIMIT = 40


def serve_and_count(tmp_path: Path, url: str, storage: str) -> tuple[dict[int, int], set[str]]:
    """Start `srhub serve --workers 2`, send 120 requests (a new connection each) and return
    the count of each status and the ids of the processes that answered."""
    env = {
        **os.environ,
        "SRHUB_DATA_DIR": str(tmp_path / "var"),
        "SRHUB_DATABASE_URL": url,
        "SRHUB_RATE_LIMITS__ENABLED": "true",
        "SRHUB_RATE_LIMITS__STORAGE": storage,
        "SRHUB_RATE_LIMITS__PER_ADDRESS": f"{LIMIT}/minute",
    }
    env.pop("SRHUB_AMQP_URL", None)
    env.pop("SRHUB_CONFIG", None)
    subprocess.run([sys.executable, "-m", "hub.cli", "db", "upgrade"], env=env, check=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=(tmp_path / f"serve-{storage}.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    counts: dict[int, int] = {}
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process)  # spends one request
        counts[200] = 1
        time.sleep(2.0)  # both workers booted
        for _ in range(119):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/health")
            status = conn.getresponse().status
            conn.close()
            counts[status] = counts.get(status, 0) + 1
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    return counts, set(children)


@pytest.mark.postgres
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_two_gunicorn_workers_share_one_limit(tmp_path: Path) -> None:
    with fresh_postgres_database("srhub_limits") as url:
        shared, children = serve_and_count(tmp_path / "db", url, "database")
        assert len(children) == 2
        # Across both processes at most LIMIT requests were let through in the window (fewer
        # when start-up polls that timed out on the client were still counted by the server).
        assert 1 <= shared.get(200, 0) <= LIMIT, shared
        assert shared.get(429, 0) >= 120 - LIMIT, shared
        # The control: counters kept in each process let each process admit LIMIT, so the
        # same traffic gets more through (both processes served it).
        separate, _ = serve_and_count(tmp_path / "mem", url, "memory")
        assert separate.get(200, 0) > LIMIT, separate
