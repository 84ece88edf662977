"""Health over real HTTP: ``/health``, ``/health/ready``, ``/metrics`` and the monitoring API
of a hub running the GIS connector against the sandbox GIS mock, an ingest worker and
monitoring. A partner outage injected in the mock shows as ``down``/``degraded`` (and an
open-circuit alert) within seconds, and as ``up`` (alert resolved) after it heals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.broker import connect
from hub.connectors_host import ConnectorHost
from hub.dbschema import upgrade_to_head
from hub.monitoring.service import Monitoring, monitoring_middleware, start_monitoring
from hub.pipeline.ingest import ingest_handlers
from hub.pipeline.routes import default_routes
from hub.runtime import HubRuntime
from hub.settings import Settings, load_settings
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import INGEST_QUEUE, WORKER_QUEUES
from sandbox_mocks.launcher import SandboxConfig, start_sandbox
from tests.services import amqp_url_or_skip

RESILIENCE = {
    "timeout_seconds": 2,
    "max_attempts": 1,
    "initial_backoff_seconds": 0.05,
    "max_backoff_seconds": 0.1,
    "jitter_seconds": 0.01,
    "failure_threshold": 2,
    "cooldown_seconds": 1,
}


@dataclass
class MonitoredHub:
    settings: Settings
    url: str
    gis_url: str
    monitor: Monitoring

    def headers(self, role: str) -> dict[str, str]:
        token = issue_token(self.settings, subject="ops", roles=[role])
        return {"Authorization": f"Bearer {token}"}

    def get(self, path: str, role: str | None = None) -> requests.Response:
        headers = self.headers(role) if role else {}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=10)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.1)


@pytest.fixture
def hub(db_url: str, tmp_path: Path) -> Iterator[MonitoredHub]:
    sandbox = start_sandbox(
        SandboxConfig(
            people=50, seed=7, only=["gis"], ports={"gis": 0}, work_dir=tmp_path / "sandbox"
        )
    )
    settings = load_settings(
        env={},
        database_url=db_url,
        data_dir=tmp_path / "var",
        sandbox=False,
        extra={"monitoring_interval_seconds": 0.2, "message_log_flush_seconds": 0.1},
    )
    runtime = HubRuntime(settings)
    configs = sandbox.connectors()
    configs["gis"].update(poll_interval_seconds=0.3, resilience=dict(RESILIENCE))
    app = create_app(settings, runtime)
    # As srhub run has it: one monitoring middleware, given to the ingest worker and to the
    # connector host before they start, then the monitoring loop, shown by the app.
    middleware = monitoring_middleware(settings, runtime).start()
    host = ConnectorHost(settings, runtime.engine, on_publish=middleware.published).build(configs)
    assert not host.problems
    host.mount(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    consumer = ConsumerRuntime(
        "ingest",
        INGEST_QUEUE,
        lambda: connect(settings, wait_for=0),
        runtime.sessions,
        ingest_handlers(runtime, default_routes(), connectors=host.connector),
        retry=RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.2, jitter=0.05),
        receive_timeout=0.1,
        middleware=[middleware],
    )
    worker = threading.Thread(target=consumer.run, daemon=True)
    worker.start()
    host.start()
    monitor = start_monitoring(settings, runtime, host, {"ingest": consumer}, middleware=middleware)
    monitor.init_app(app)
    try:
        yield MonitoredHub(
            settings, f"http://127.0.0.1:{server.server_port}", sandbox.url("gis"), monitor
        )
    finally:
        monitor.stop()
        host.stop()
        consumer.stop()
        worker.join(20)
        middleware.stop()
        server.shutdown()
        sandbox.stop()
        runtime.close()


def _gis(hub: MonitoredHub) -> dict[str, Any]:
    response = hub.get("/health/ready", "registry_staff")  # the detail is for staff only
    assert response.status_code == 200, response.text  # a partner outage never makes it 503
    return {"status": response.json()["status"], **response.json()["checks"]["connectors"]["gis"]}


def _firing(hub: MonitoredHub) -> list[dict[str, Any]]:
    response = hub.get("/api/v1/monitoring/alerts", "registry_staff")
    return [a for a in response.json()["items"] if a["subject"] == "connector:gis"]


def test_partner_outage_shows_within_seconds_and_heals(hub: MonitoredHub) -> None:
    assert hub.get("/health").json() == {"status": "ok"}
    up = wait_for(
        lambda: (g := _gis(hub))["state"] == "up" and g["last_success_at"] and g,
        20,
        "gis up with a success",
    )
    assert up["circuit"] == "closed"
    ready = hub.get("/health/ready", "registry_staff").json()
    assert ready["checks"]["database"]["ok"] is True
    assert ready["checks"]["broker"]["ok"] is True
    assert "sr.ingest" in ready["checks"]["broker"]["queues"]

    # The records the connector published went through ingest: the log shows their outcome.
    def processed() -> list[dict[str, Any]]:
        page = hub.get("/api/v1/monitoring/messages?connector=gis&limit=50", "auditor").json()
        return [m for m in page["items"] if m["status"] not in ("received", "retrying")]

    done = wait_for(processed, 20, "gis messages processed")
    assert all(m["direction"] == "in" and m["routing_key"].startswith("gis.") for m in done)
    assert all(m["size"] > 0 and m["finished_at"] for m in done)

    started = time.monotonic()
    requests.patch(f"{hub.gis_url}/_admin/faults", json={"down": True}, timeout=5)
    down = wait_for(lambda: (g := _gis(hub))["state"] in ("down", "degraded") and g, 10, "gis down")
    noticed = time.monotonic() - started
    assert down["status"] == "degraded"  # the hub as a whole still serves
    assert down["last_error"]
    opened = wait_for(lambda: _gis(hub)["circuit"] == "open", 10, "circuit open")
    assert opened
    alert = wait_for(
        lambda: [a for a in _firing(hub) if a["rule"] == "circuit_open" and a["state"] == "firing"],
        10,
        "circuit_open alert",
    )[0]
    assert alert["began_at"] and alert["ended_at"] is None

    requests.delete(f"{hub.gis_url}/_admin/faults", timeout=5)
    wait_for(lambda: _gis(hub)["state"] == "up", 15, "gis up again")
    ended = wait_for(
        lambda: [a for a in _firing(hub) if a["id"] == alert["id"] and a["state"] == "resolved"],
        10,
        "alert resolved",
    )[0]
    assert ended["ended_at"] > ended["began_at"]
    assert noticed < 10

    model = hub.get("/api/v1/monitoring/health", "registry_staff").json()
    gis = model["connectors"]["gis"]
    assert gis["calls"]["hour"]["count"] > 0 and gis["calls"]["hour"]["errors"] > 0
    assert gis["records"]["hour"]["count"] > 0
    assert gis["heartbeat_at"] and gis["runner_alive"] is True
    assert model["workers"]["ingest"]["health"] == "up"
    assert model["message_log"]["recording"] is True


def test_metrics_are_prometheus_text_for_admins_and_auditors(hub: MonitoredHub) -> None:
    wait_for(lambda: _gis(hub)["last_success_at"], 20, "a gis poll")
    assert hub.get("/metrics").status_code == 401
    assert hub.get("/metrics", "registry_staff").status_code == 403
    response = hub.get("/metrics", "auditor")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    body = response.text
    assert 'srhub_check_up{check="database"} 1.0' in body
    assert 'srhub_queue_depth{queue="sr.ingest"}' in body
    assert 'srhub_queue_depth{queue="sr.dead.letters"}' in body
    assert 'srhub_component_state{kind="connector",name="gis",state="up"}' in body
    assert "srhub_latency_seconds_bucket" in body
    # one dimension per label: stage and connector apart, so `sum by (connector)` works
    assert (
        'srhub_messages_total{connector="gis",outcome="ok",stage="inbound",subscription=""}' in body
    )
    assert 'component="' not in body


def test_ready_is_503_without_its_database(tmp_path: Path) -> None:
    settings = load_settings(
        env={},
        database_url="postgresql+psycopg://srhub:s3cret-pw@127.0.0.1:1/nothing",
        data_dir=tmp_path / "var",
        sandbox=False,
    )
    runtime = HubRuntime(settings)
    try:
        client = create_app(settings, runtime).test_client()
        staff = {"Authorization": f"Bearer {issue_token(settings, subject='ops', roles=['admin'])}"}
        response = client.get("/health/ready", headers=staff)
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "down"
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["broker"]["ok"] is False
        assert "s3cret" not in response.get_data(as_text=True)
        assert client.get("/health").status_code == 200  # alive, just not ready
    finally:
        runtime.close()


def test_ready_reads_rabbitmq_queue_depths(tmp_path: Path) -> None:
    settings = load_settings(
        env={}, amqp_url=amqp_url_or_skip(), data_dir=tmp_path / "var", sandbox=False
    )
    upgrade_to_head(settings.effective_database_url)
    runtime = HubRuntime(settings)
    try:
        with connect(settings, wait_for=5) as broker:
            broker.declare_topology(list(WORKER_QUEUES))
        client = create_app(settings, runtime).test_client()
        staff = {
            "Authorization": f"Bearer {issue_token(settings, subject='ops', roles=['auditor'])}"
        }
        for _ in range(2):  # a fresh connection per check: the second works like the first
            response = client.get("/health/ready", headers=staff)
            assert response.status_code == 200, response.get_data(as_text=True)
            broker_check = response.get_json()["checks"]["broker"]
            assert broker_check["backend"] == "amqp" and broker_check["ok"] is True
            assert isinstance(broker_check["queues"]["sr.ingest"], int)
        assert "guest" not in response.get_data(as_text=True)
    finally:
        runtime.close()


def test_subscription_health_comes_from_the_delivery_log(db_url: str, tmp_path: Path) -> None:
    from datetime import timedelta

    from hub.monitoring.metrics import Recorder
    from hub.monitoring.subscriptions_health import subscription_health
    from hub.subscriptions.tables import DeliveryAttempt, Subscription
    from standards.timeutil import utcnow

    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False)
    runtime = HubRuntime(settings)
    now = utcnow()
    try:
        with runtime.sessions.begin() as session:
            for code, status in (
                ("mis-ok", "active"),
                ("mis-down", "active"),
                ("mis-off", "paused"),
            ):
                session.add(
                    Subscription(
                        code=code,
                        program_code="cash",
                        event_types=["person.died"],
                        channel="webhook",
                        target="http://127.0.0.1:9/x",
                        purpose="payments",
                        status=status,
                    )
                )
            attempts = [
                ("mis-ok", "delivered", 40),
                ("mis-ok", "failed", 900),
                ("mis-ok", "delivered", 60),
            ]
            attempts += [
                ("mis-down", s, 5000) for s in ("delivered", "failed", "failed", "dead_lettered")
            ]
            for i, (code, status, ms) in enumerate(attempts):
                session.add(
                    DeliveryAttempt(
                        subscription_code=code,
                        event_id=f"ev-{i}",
                        event_type="person.died",
                        status=status,
                        error=None if status == "delivered" else "HTTP 503",
                        started_at=now - timedelta(seconds=len(attempts) - i),
                        duration_ms=ms,
                    )
                )
        with runtime.sessions() as session:
            found = subscription_health(session, Recorder())
    finally:
        runtime.close()
    assert {code: entry["state"] for code, entry in found.items()} == {
        "mis-ok": "degraded",  # one recent failure, then delivered again
        "mis-down": "down",  # the last attempts all failed
        "mis-off": "paused",
    }
    down = found["mis-down"]
    assert down["last_error"] == "HTTP 503" and down["dead_letters_24h"] == 1
    assert down["deliveries"]["minute"]["count"] == 4
    assert down["deliveries"]["alert_window"]["error_rate"] == 0.75
    assert found["mis-ok"]["deliveries"]["hour"]["p50_ms"] == 60.0
