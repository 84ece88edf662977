"""`srhub run` as a newcomer meets it: a subprocess with the embedded defaults, on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests


def start_hub(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    env = {**os.environ, "SRHUB_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    for name in ("SRHUB_DATABASE_URL", "SRHUB_AMQP_URL", "SRHUB_CONFIG"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "run", "--port", "0", *extra],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    url = ""
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"API on (http://\S+)", line)
        if found:
            url = found.group(1)
        if "ready" in line:
            break
    assert url, "".join(lines)
    return process, url, lines


def test_run_serves_health_and_refuses_anonymous_requests(tmp_path: Path):
    process, url, lines = start_hub(tmp_path, "--no-sandbox", "--no-workers")
    try:
        assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
        anonymous = requests.get(f"{url}/api/v1/households", timeout=5)
        assert anonymous.status_code == 401
        token = (tmp_path / "var" / "admin-token").read_text().strip()
        # The newcomer is told where the token is; the token itself never reaches the log.
        assert not any(token in line for line in lines)
        assert any("admin-token" in line and "dashboard" in line for line in lines)
        # No sandbox: the built-in identifier profile (no check digits), said at start.
        assert any("identifier profile default" in line for line in lines)
        authorised = requests.get(
            f"{url}/api/v1/households", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert authorised.status_code == 200 and authorised.json()["total"] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert "stopped" in rest
