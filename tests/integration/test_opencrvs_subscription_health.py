"""A refused or broken OpenCRVS subscription shows in the hub's health and on the dashboard.

The hub runs for real (its app on a free port, the connector host building the civil-registry
connector from the sandbox launcher's section, ``after_serving`` subscribing as ``srhub run``
does) against the sandbox's OpenCRVS-like registry. With the signing secret OpenCRVS issued,
both topics are active and the connector is up; with another secret OpenCRVS denies both, and
``/health/ready``, ``/api/v1/monitoring/health`` and the connector page say ``degraded`` and
why — never a silent "up".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.connectors_host import ConnectorHost
from hub.runtime import HubRuntime
from hub.settings import load_settings
from sandbox_mocks.launcher import RunningSandbox, SandboxConfig, start_sandbox
from tests.integration.test_dashboard import add_user, login_session

NAME = "civil_registry"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    config = SandboxConfig(
        people=300,
        ports={NAME: 0},
        only=[NAME],
        work_dir=tmp_path / "sandbox",
        write_connectors=False,
    )
    with start_sandbox(config) as running:
        yield running


@contextmanager
def running_hub(db_url: str, data_dir: Path, section: dict[str, Any]) -> Iterator[Any]:
    settings = load_settings(env={}, data_dir=data_dir, database_url=db_url, sandbox=False)
    runtime = HubRuntime(settings)
    app = create_app(settings, runtime)
    host = ConnectorHost(settings, runtime.engine).build({NAME: section})
    host.mount(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        host.after_serving(url)  # subscribes, as `srhub run` does once the API serves
        yield SimpleNamespace(url=url, settings=settings, host=host)
    finally:
        server.shutdown()
        thread.join(10)
        host.stop()
        runtime.close()


def connector_health(hub: Any) -> dict[str, Any]:
    token = issue_token(hub.settings, subject="ops", roles=["admin"])
    answer = requests.get(
        f"{hub.url}/api/v1/monitoring/health",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["connectors"][NAME])


def test_active_subscriptions_leave_the_connector_up(
    sandbox: RunningSandbox, db_url: str, tmp_path: Path
) -> None:
    section = dict(sandbox.connectors()[NAME])
    with running_hub(db_url, tmp_path / "var", section) as hub:
        health = connector_health(hub)
        assert health["state"] == "up" and health["problems"] == []
        assert {k: v["state"] for k, v in health["subscriptions"].items()} == {
            "websub:BIRTH_REGISTERED": "active",
            "websub:DEATH_REGISTERED": "active",
        }


def test_a_denied_subscription_is_degraded_with_opencrvs_reason_everywhere(
    sandbox: RunningSandbox, db_url: str, tmp_path: Path
) -> None:
    section = {**sandbox.connectors()[NAME], "webhook_secret": "a-secret-opencrvs-never-issued"}
    with running_hub(db_url, tmp_path / "var", section) as hub:
        health = connector_health(hub)
        assert health["state"] == "degraded"
        reason = "refused (OpenCRVS denied the subscription: hub.secret is incorrect)"
        assert health["problems"] == [
            f"websub:BIRTH_REGISTERED: {reason}",
            f"websub:DEATH_REGISTERED: {reason}",
        ]

        staff = {
            "Authorization": f"Bearer {issue_token(hub.settings, subject='ops', roles=['admin'])}"
        }
        ready = requests.get(f"{hub.url}/health/ready", headers=staff, timeout=10).json()
        connector = ready["checks"]["connectors"][NAME]
        assert connector["state"] == "degraded" and len(connector["problems"]) == 2

        add_user(hub.settings, "ops")
        browser = login_session(hub, "ops")
        overview = browser.get(f"{hub.url}/", timeout=10).text
        assert "hub.secret is incorrect" in overview
        page = browser.get(f"{hub.url}/ui/connectors/{NAME}", timeout=10)
        assert page.status_code == 200
        assert 'id="connector-subscriptions"' in page.text
        assert "websub:DEATH_REGISTERED" in page.text and "refused" in page.text
        assert "OpenCRVS denied the subscription: hub.secret is incorrect" in page.text
        assert 'id="connector-state">degraded' in page.text
        assert "a-secret-opencrvs-never-issued" not in page.text + overview
