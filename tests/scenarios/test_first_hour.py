"""The first minute of `srhub run`, as a newcomer and as an operator meet it (the sandbox's
field team's submissions, review items and one conflict included).

A subprocess runs the hub exactly as `make run` does (sandbox, workers, connectors), on free
ports. Within 60 s the sandbox's program MIS must have received a birth or a death through its
subscription (the dashboard's delivery log and the MIS's own page show it), a national ID
verification must have produced `person.verified`, the start-up banner must tell how to log in
without printing a credential, and the log must hold the hub's lines, not the libraries'
plumbing. Run once on the embedded defaults and once on PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import fresh_postgres_database
from tests.integration.pipeline_support import own_amqp_vhost
from tests.services import amqp_url_or_skip

FIRST_MINUTE = 60.0
# The sandbox's mocks on free ports, no tax drops (the settings an operator would give).
SANDBOX_SETTINGS = {"port_base": 0, "tax_interval_seconds": 0}
LIBRARY_INFO = re.compile(r" INFO (pika|werkzeug|alembic|urllib3)[.:]")


class RunningHub:
    """`srhub run` in a subprocess; its output is drained by a thread into ``lines``."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.env = env
        self.cwd = tmp_path
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "run", "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self._wait_for(r"API on (http://\S+)")
        self.mis = self._wait_for(r"^programs\s+running\s+(http://\S+)")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def _wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found.group(1)
            assert self.process.poll() is None, "".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not printed within {timeout}s:\n{''.join(self.lines)}")

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hub.cli", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(10)
        return "".join(self.lines)


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SRHUB_") or key.startswith("SRHUB_TEST_")
    }
    env.update(
        {
            "SRHUB_DATA_DIR": str(tmp_path / "var"),
            "SRHUB_SANDBOX_MOCKS": json.dumps(SANDBOX_SETTINGS),
            "PYTHONUNBUFFERED": "1",
            **values,
        }
    )
    return env


def _first_minute_shows_the_promise(hub: RunningHub, token: str) -> dict[str, Any]:
    """Wait (at most the first minute) for a delivered birth or death and a verification."""
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + FIRST_MINUTE
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline and not (
        seen.get("delivered") and seen.get("verified") and seen.get("field_conflicts")
    ):
        time.sleep(1)
        _field_work(hub, auth, seen)
        deliveries = requests.get(
            f"{hub.url}/api/v1/subscriptions/program-mis-webhook/deliveries?limit=500",
            headers=auth,
            timeout=10,
        )
        if deliveries.status_code == 200:
            seen["delivered"] = sorted(
                {
                    item["event_type"]
                    for item in deliveries.json()["items"]
                    if item["status"] == "delivered"
                    and item["event_type"] in ("person.born", "person.died")
                }
            )
        after, verified = 0, False
        while not verified:
            page = requests.get(
                f"{hub.url}/api/v1/events?after={after}&limit=500", headers=auth, timeout=10
            )
            assert page.status_code == 200, page.text
            body = page.json()
            verified = any(e["type"].endswith(".person.verified") for e in body["events"])
            if not body["events"]:
                break
            after = body["next_after"]
        seen["verified"] = verified
    return seen


def _field_work(hub: RunningHub, auth: dict[str, str], seen: dict[str, Any]) -> None:
    """What the sandbox's field team left: submissions by status and open review items."""
    listed = requests.get(
        f"{hub.url}/api/v1/intake/submissions?limit=200", headers=auth, timeout=10
    )
    if listed.status_code == 200:
        submissions = listed.json()["submissions"]
        statuses = [s["status"] for s in submissions]
        seen["field_applied"] = statuses.count("applied")
        seen["field_conflicts"] = statuses.count("conflict")
        # Which household each conflict is on and why, for the failure message.
        seen["conflict_reasons"] = [
            f"{s['household_id']}: {s['reason']}" for s in submissions if s["status"] == "conflict"
        ]
    review = requests.get(
        f"{hub.url}/api/v1/review/items?state=submitted&limit=200", headers=auth, timeout=10
    )
    if review.status_code == 200:
        seen["review_items"] = len(review.json()["items"])


def _assert_field_work(seen: dict[str, Any]) -> None:
    """The field team's households were registered over OpenRosa, the conflicting revisit
    waits for review, and supervisors have items to review."""
    assert seen.get("field_applied", 0) >= 20, seen
    conflicts = seen.get("conflict_reasons")
    assert seen.get("field_conflicts") == 1, (seen.get("field_conflicts"), conflicts)
    assert seen.get("review_items", 0) >= 20, seen


def _dashboard_overview(hub: RunningHub, token: str) -> requests.Response:
    """The overview page as a person sees it: log in with the admin token, then open it."""
    browser = requests.Session()
    form = browser.get(f"{hub.url}/ui/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf, form[:500]
    browser.post(
        f"{hub.url}/ui/login",
        data={"csrf_token": csrf.group(1), "method": "token", "token": token, "next": "/"},
        timeout=10,
    )
    return browser.get(f"{hub.url}/", timeout=10)


def _assert_quiet_log(output: str) -> None:
    noisy = [line for line in output.splitlines() if LIBRARY_INFO.search(line)]
    assert not noisy, "library INFO lines in the log:\n" + "\n".join(noisy[:10])


@pytest.mark.slow
def test_a_newcomer_sees_births_deaths_and_verifications_reach_the_program(tmp_path: Path):
    hub = RunningHub(tmp_path, _env(tmp_path))
    try:
        token_file = tmp_path / "var" / "admin-token"
        token = token_file.read_text().strip()
        seen = _first_minute_shows_the_promise(hub, token)
        dashboard = _dashboard_overview(hub, token)
        mis_page = requests.get(f"{hub.mis}/", timeout=10).text
    finally:
        output = hub.stop()
    assert seen.get("delivered"), f"no birth or death delivered to the MIS in 60 s: {seen}"
    assert seen.get("verified"), "no person.verified event in the first minute"
    _assert_field_work(seen)
    # The MIS's own page lists what it received.
    assert re.search(r'class="event">person\.(born|died)<', mis_page), mis_page[-2000:]
    # The overview's field collection tiles show the team's work and the one conflict.
    assert dashboard.status_code == 200, dashboard.text[:300]
    tiles = dict(re.findall(r'id="field-([a-z-]+)"[^>]*>\s*([^<]*?)\s*<', dashboard.text))
    assert tiles["conflicts"] == "1", tiles
    assert int(tiles["applied"]) >= 20 and int(tiles["review"]) >= 20, tiles
    # The dashboard's subscription table names the MIS subscription and a delivered event.
    if dashboard.status_code == 200 and "program-mis-webhook" in dashboard.text:
        assert re.search(r"delivered</span> <span class=\"event\">person\.", dashboard.text)
    # The banner tells where the token is, and never prints it.
    assert token not in output
    assert f"local admin token kept in {Path('var') / 'admin-token'}" in output or (
        str(token_file) in output
    )
    _assert_quiet_log(output)


@pytest.fixture
def own_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own: `srhub run` seeds only an empty registry."""
    with fresh_postgres_database("srhub_first_hour") as url:
        yield url


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.amqp
def test_an_operator_on_postgres_and_rabbitmq_sees_the_same_without_log_noise(
    tmp_path: Path, own_database: str
):
    with own_amqp_vhost(amqp_url_or_skip()) as amqp_url:
        env = _env(tmp_path, SRHUB_DATABASE_URL=own_database, SRHUB_AMQP_URL=amqp_url)
        hub = RunningHub(tmp_path, env)
        try:
            assert not (tmp_path / "var" / "admin-token").exists()
            token = hub.cli("token", "issue", "--role", "admin", "--sub", "first-hour-test")
            seen = _first_minute_shows_the_promise(hub, token)
            amqp_received = requests.get(f"{hub.mis}/notifications?channel=amqp", timeout=10).json()
        finally:
            output = hub.stop()
    assert seen.get("delivered"), f"no birth or death delivered to the MIS in 60 s: {seen}"
    assert seen.get("verified"), "no person.verified event in the first minute"
    _assert_field_work(seen)
    # The MIS consumes its AMQP subscription's queue: declared before it looked for it.
    assert amqp_received["count"] >= 1
    assert "NOT_FOUND" not in output
    # The banner is true for this setup: no token exists, it says how to make the first admin.
    assert "log in with the local admin token" not in output
    assert "srhub users add NAME --role admin" in output
    _assert_quiet_log(output)
