"""Fault injection, the loopback server and the simulated clock, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask, Response

from sandbox_mocks.common.clock import SimClock, install_clock
from sandbox_mocks.common.faults import DownWindow, FaultConfig, install_faults
from sandbox_mocks.common.server import MockServer

PAYLOAD = {"records": [{"id": i, "name": f"person {i}"} for i in range(20)]}


def make_app(config: FaultConfig | None = None, **kwargs: object) -> Flask:
    app = Flask("faulty")

    @app.get("/data")
    def data() -> dict[str, object]:
        return PAYLOAD

    install_faults(app, config, **kwargs)  # type: ignore[arg-type]
    return app


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer(make_app()) as srv:
        yield srv


def timed_get(url: str, **kwargs: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def test_server_binds_ephemeral_port_and_stops() -> None:
    srv = MockServer(make_app()).start()
    assert srv.port > 0
    assert srv.url == f"http://127.0.0.1:{srv.port}"
    assert requests.get(srv.url + "/data", timeout=5).json() == PAYLOAD
    srv.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(srv.url + "/data", timeout=2)


def test_no_faults_by_default(server: MockServer) -> None:
    for _ in range(5):
        response = requests.get(server.url + "/data", timeout=5)
        assert response.status_code == 200
        assert response.json() == PAYLOAD


def test_standing_latency_delays_every_answer() -> None:
    with MockServer(make_app(FaultConfig(latency_ms=250))) as srv:
        response, elapsed = timed_get(srv.url + "/data")
    assert response.status_code == 200
    assert elapsed >= 0.25


def test_latency_header_delays_one_request(server: MockServer) -> None:
    _, fast = timed_get(server.url + "/data")
    slow_response, slow = timed_get(server.url + "/data", headers={"X-Mock-Latency-Ms": "300"})
    assert slow_response.json() == PAYLOAD
    assert slow >= 0.3
    assert fast < 0.3


def test_error_rate_one_gives_configured_status_with_reason() -> None:
    with MockServer(make_app(FaultConfig(error_rate=1.0, error_status=502))) as srv:
        response = requests.get(srv.url + "/data", timeout=5)
    assert response.status_code == 502
    assert response.json()["error"]["message"]


def test_error_header_gives_that_status(server: MockServer) -> None:
    response = requests.get(server.url + "/data", headers={"X-Mock-Fault": "error=500"}, timeout=5)
    assert response.status_code == 500
    default = requests.get(server.url + "/data", headers={"X-Mock-Fault": "error"}, timeout=5)
    assert default.status_code == 503


def outcome_pattern(seed: int, n: int = 40) -> list[int]:
    with MockServer(make_app(FaultConfig(error_rate=0.5, seed=seed))) as srv:
        return [requests.get(srv.url + "/data", timeout=5).status_code for _ in range(n)]


def test_seeded_error_rate_is_repeatable_and_mixed() -> None:
    first, second, other = outcome_pattern(7), outcome_pattern(7), outcome_pattern(8)
    assert first == second
    assert first != other
    errors = first.count(503)
    assert 8 <= errors <= 32, first  # about half, never all or none
    assert set(first) == {200, 503}


def test_malformed_header_corrupts_body_but_keeps_success_status(server: MockServer) -> None:
    response = requests.get(server.url + "/data", headers={"X-Mock-Fault": "malformed"}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert len(response.content) == int(response.headers["Content-Length"])
    with pytest.raises(ValueError):
        json.loads(response.content)
    garbage = requests.get(
        server.url + "/data", headers={"X-Mock-Fault": "malformed=garbage"}, timeout=5
    )
    with pytest.raises(ValueError):
        json.loads(garbage.content)
    assert garbage.content != response.content


def test_standing_malformed_rate() -> None:
    with MockServer(make_app(FaultConfig(malformed_rate=1.0))) as srv:
        response = requests.get(srv.url + "/data", timeout=5)
    with pytest.raises(ValueError):
        response.json()


def test_timeout_header_outlasts_client_timeout(server: MockServer) -> None:
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.get(server.url + "/data", headers={"X-Mock-Fault": "timeout=3"}, timeout=0.3)
    assert time.monotonic() - started < 2.5
    # The mock still serves other requests while one is held.
    assert requests.get(server.url + "/data", timeout=5).status_code == 200


def test_standing_timeout_answers_504_after_hold() -> None:
    with MockServer(make_app(FaultConfig(timeout_rate=1.0, timeout_s=0.3))) as srv:
        response, elapsed = timed_get(srv.url + "/data")
    assert response.status_code == 504
    assert elapsed >= 0.3


def test_stop_releases_held_requests_quickly() -> None:
    srv = MockServer(make_app(FaultConfig(timeout_rate=1.0, timeout_s=60))).start()
    results: list[object] = []

    def call() -> None:
        try:
            results.append(requests.get(srv.url + "/data", timeout=30).status_code)
        except requests.RequestException as exc:
            results.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    srv.stop()
    worker.join(10)
    assert time.monotonic() - started < 5
    assert results, "the held request never finished"


def test_down_toggle_and_reset_through_admin_endpoint(server: MockServer) -> None:
    admin = server.url + "/_admin/faults"
    answer = requests.put(admin, json={"down": True}, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["config"]["down"] is True
    assert requests.get(server.url + "/data", timeout=5).status_code == 503
    # The admin endpoint itself is never faulted, so a test can always repair the mock.
    stats = requests.get(admin, timeout=5).json()["stats"]
    assert stats["down"] == 1
    assert requests.delete(admin, timeout=5).json()["config"]["down"] is False
    assert requests.get(server.url + "/data", timeout=5).status_code == 200


def test_admin_patch_merges_and_put_replaces(server: MockServer) -> None:
    admin = server.url + "/_admin/faults"
    requests.put(admin, json={"latency_ms": 10, "error_status": 502}, timeout=5)
    merged = requests.patch(admin, json={"error_rate": 1.0}, timeout=5).json()["config"]
    assert (merged["latency_ms"], merged["error_status"], merged["error_rate"]) == (10, 502, 1.0)
    assert requests.get(server.url + "/data", timeout=5).status_code == 502
    replaced = requests.put(admin, json={"error_rate": 0.0}, timeout=5).json()["config"]
    assert replaced["latency_ms"] == 0 and replaced["error_status"] == 503


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"error_rate": 2}, "error_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"malformed_mode": "chaos"}, "malformed_mode"),
        ({"errror_rate": 0.1}, "errror_rate"),
        ({"down_windows": [{"start": "yesterday"}]}, "down_windows"),
        ({"error_status": 200}, "error_status"),
        ([1, 2], "object"),
    ],
)
def test_admin_rejects_bad_config_with_reason(
    server: MockServer, body: object, needle: str
) -> None:
    response = requests.put(server.url + "/_admin/faults", json=body, timeout=5)
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]
    assert requests.get(server.url + "/data", timeout=5).status_code == 200


def test_down_windows_follow_the_injected_clock() -> None:
    moment = [datetime(2025, 3, 1, 12, 0, tzinfo=UTC)]
    window = DownWindow(
        start=datetime(2025, 3, 1, 11, tzinfo=UTC), until=datetime(2025, 3, 1, 13, tzinfo=UTC)
    )
    app = make_app(FaultConfig(down_windows=[window]), now=lambda: moment[0])
    with MockServer(app) as srv:
        assert requests.get(srv.url + "/data", timeout=5).status_code == 503
        moment[0] += timedelta(hours=1)  # 13:00 is the first minute after the window
        assert requests.get(srv.url + "/data", timeout=5).status_code == 200
        moment[0] -= timedelta(hours=3)  # 10:00, before the window
        assert requests.get(srv.url + "/data", timeout=5).status_code == 200


def test_down_window_set_at_run_time_with_real_clock(server: MockServer) -> None:
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(minutes=1)).isoformat(),
        "until": (now + timedelta(minutes=5)).isoformat(),
    }
    requests.put(server.url + "/_admin/faults", json={"down_windows": [window]}, timeout=5)
    assert requests.get(server.url + "/data", timeout=5).status_code == 503
    past = {"start": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"}
    requests.put(server.url + "/_admin/faults", json={"down_windows": [past]}, timeout=5)
    assert requests.get(server.url + "/data", timeout=5).status_code == 200


def test_custom_error_renderer_shapes_the_fault() -> None:
    def soap_fault(status: int, reason: str) -> Response:
        body = (
            f"<Fault><faultcode>soap:Server</faultcode><faultstring>{reason}</faultstring></Fault>"
        )
        return Response(body, status=500, mimetype="text/xml")

    with MockServer(make_app(FaultConfig(error_rate=1.0), error_renderer=soap_fault)) as srv:
        response = requests.get(srv.url + "/data", timeout=5)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/xml")
    assert b"<faultcode>soap:Server</faultcode>" in response.content


def test_header_faults_can_be_switched_off() -> None:
    with MockServer(make_app(FaultConfig(header_faults=False))) as srv:
        response = requests.get(srv.url + "/data", headers={"X-Mock-Fault": "error=500"}, timeout=5)
    assert response.status_code == 200


def test_admin_token_protects_admin_endpoint() -> None:
    with MockServer(make_app(admin_token="s3cret")) as srv:
        admin = srv.url + "/_admin/faults"
        assert requests.put(admin, json={"down": True}, timeout=5).status_code == 401
        assert requests.get(srv.url + "/data", timeout=5).status_code == 200
        ok = requests.put(
            admin, json={"down": True}, headers={"X-Mock-Admin-Token": "s3cret"}, timeout=5
        )
        assert ok.status_code == 200
        assert requests.get(srv.url + "/data", timeout=5).status_code == 503


def test_config_files_toml_and_json(tmp_path: Path) -> None:
    toml_file = tmp_path / "faults.toml"
    toml_file.write_text(
        "[faults]\nerror_rate = 0.25\nseed = 3\n"
        '[[faults.down_windows]]\nstart = "2025-01-01T00:00:00Z"\nuntil = "2025-01-02T00:00:00Z"\n'
    )
    config = FaultConfig.from_file(toml_file)
    assert config.error_rate == 0.25 and config.seed == 3
    assert config.down_windows[0].until == datetime(2025, 1, 2, tzinfo=UTC)
    json_file = tmp_path / "faults.json"
    json_file.write_text(json.dumps(config.to_dict()))
    assert FaultConfig.from_file(json_file) == config
    json_file.write_text('{"latency": 5}')
    with pytest.raises(ValueError, match="latency"):
        FaultConfig.from_file(json_file)


def test_sim_clock_advance_rate_and_no_going_back() -> None:
    real = [100.0]
    clock = SimClock(datetime(2025, 1, 1, tzinfo=UTC), monotonic=lambda: real[0])
    assert clock.now() == datetime(2025, 1, 1, tzinfo=UTC)
    clock.advance(days=2)
    assert clock.today().isoformat() == "2025-01-03"
    clock.set_rate(1.0)  # one simulated day per real second
    real[0] += 3
    assert clock.today().isoformat() == "2025-01-06"
    clock.set_rate(0.0)
    real[0] += 100
    assert clock.today().isoformat() == "2025-01-06"
    with pytest.raises(ValueError):
        clock.advance(days=-1)
    with pytest.raises(ValueError):
        clock.set_now(datetime(2024, 1, 1, tzinfo=UTC))


def test_clock_admin_endpoints_call_on_change() -> None:
    app = Flask("clocked")
    clock = SimClock(datetime(2025, 1, 1, tzinfo=UTC))
    calls: list[str] = []
    install_clock(app, clock, on_change=lambda: calls.append(clock.today().isoformat()))
    with MockServer(app) as srv:
        answer = requests.post(srv.url + "/_admin/clock/advance", json={"days": 10}, timeout=5)
        assert answer.json()["today"] == "2025-01-11"
        assert calls == ["2025-01-11"]
        bad = requests.post(srv.url + "/_admin/clock/advance", json={"days": -3}, timeout=5)
        assert bad.status_code == 400 and "forward" in bad.json()["error"]["message"]
        bad = requests.post(srv.url + "/_admin/clock/advance", json={"days": "x"}, timeout=5)
        assert bad.status_code == 400
        rate = requests.put(
            srv.url + "/_admin/clock", json={"rate_days_per_second": 2.5}, timeout=5
        )
        assert rate.json()["rate_days_per_second"] == 2.5
        assert requests.get(srv.url + "/_admin/clock", timeout=5).json()["today"] >= "2025-01-11"
