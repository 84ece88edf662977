"""Half-open connections (slowloris) against `srhub serve` (gunicorn) and `srhub run` (waitress).

Issue 17 found `srhub run` on Werkzeug's development server grew one thread per connection
(500 half-open connections -> 424 threads) with no header timeout. Both servers now keep
connections whose request head is still arriving out of the request threads, drop them after
a timeout, and keep answering `/health`; their thread and process counts stay bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="counts threads in /proc")


def hub_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "SRHUB_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    for name in ("SRHUB_DATABASE_URL", "SRHUB_AMQP_URL", "SRHUB_CONFIG"):
        env.pop(name, None)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(url: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server stopped before it answered"
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("no /health answer")


def tree_threads(pid: int) -> tuple[int, int]:
    """(processes, threads) of ``pid`` and its children, from /proc."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    threads = 0
    for each in pids:
        with contextlib.suppress(FileNotFoundError):
            threads += len(os.listdir(f"/proc/{each}/task"))
    return len(pids), threads


def stall(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that each send part of a request line and headers, then stall."""
    sockets = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        partial = b"GET /health HTTP/1.1\r\nHost: x\r\n" if index % 2 else b"GET /hea"
        sock.sendall(partial)
        sockets.append(sock)
    return sockets


def health_seconds(url: str) -> float:
    started = time.monotonic()
    answer = requests.get(f"{url}/health", timeout=10)
    assert answer.status_code == 200
    return time.monotonic() - started


@contextlib.contextmanager
def stopping(process: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def survives_half_open(url: str, port: int, pid: int, count: int) -> None:
    _, threads_before = tree_threads(pid)
    sockets = stall(port, count)
    try:
        time.sleep(1.0)
        assert health_seconds(url) < 3.0
        _, threads = tree_threads(pid)
        # Bounded by the configuration, not by the number of connections.
        assert threads <= threads_before + 8, (threads_before, threads)
        assert threads < count / 4
        assert health_seconds(url) < 3.0
    finally:
        for sock in sockets:
            sock.close()


def start_serve(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], str, int]:
    """`srhub serve` on a free port over a migrated SQLite database, once /health answers."""
    env = hub_env(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "hub.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port), *flags],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
    except AssertionError:
        process.kill()
        raise AssertionError((tmp_path / "serve.log").read_text()) from None
    return process, url, port


def test_serve_survives_500_half_open_connections(tmp_path: Path):
    process, url, port = start_serve(
        tmp_path, "--workers", "2", "--threads", "4", "--header-timeout", "30"
    )
    with stopping(process):
        time.sleep(1.0)  # both workers booted
        survives_half_open(url, port, process.pid, 500)


def test_serve_drops_a_head_that_does_not_arrive_in_time(tmp_path: Path):
    process, _, port = start_serve(
        tmp_path, "--workers", "1", "--threads", "2", "--header-timeout", "1"
    )
    with stopping(process):
        (sock,) = stall(port, 1)
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, no answer
        assert time.monotonic() - started < 5
        sock.close()
        # A complete request sent in pieces is still answered.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET /health HT")
            time.sleep(0.3)
            slow.sendall(b"TP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert slow.recv(100).startswith(b"HTTP/1.1 200")


def test_run_survives_half_open_connections(tmp_path: Path):
    log_path = tmp_path / "run.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "run", "--port", "0", "--no-sandbox", "--no-workers"],
        env=hub_env(tmp_path),
        cwd=tmp_path,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = ""
    with stopping(process):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not url:
            found = re.search(r"API on (http://\S+)", log_path.read_text())
            url = found.group(1) if found else ""
            time.sleep(0.2)
        assert url, log_path.read_text()
        wait_for_health(url, process)
        port = int(url.rsplit(":", 1)[1])
        survives_half_open(url, port, process.pid, 500)
