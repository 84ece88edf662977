"""Alerts: each rule fires on a health snapshot that breaks it, resolves when the snapshot is
healthy again, keeps when it began and ended, and is delivered (fire and resolve) to a real
HTTP receiver with a verifiable HMAC signature; a receiver that fails gets it again later."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from hub.monitoring.alerts import (
    FIRING,
    RESOLVED,
    SIGNATURE_HEADER,
    AlertEvaluator,
    AlertRules,
    WebhookNotifier,
    list_alerts,
    verify_signature,
)
from hub.runtime import HubRuntime
from hub.settings import load_settings
from hub.workers.egress import EgressPolicy

# The receiver runs on loopback: allowed explicitly, as an operator would.
LOOPBACK = EgressPolicy(frozenset({"127.0.0.1"}))
SECRET = "alert-test-secret"


class Receiver:
    """A webhook receiver on a free loopback port; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        self.received.append({"body": body, "signature": request.headers.get(SIGNATURE_HEADER, "")})
        return Response("ok", status=self.status)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.server.shutdown()


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[HubRuntime]:
    settings = load_settings(env={}, database_url=db_url, data_dir=tmp_path / "var", sandbox=False)
    hub = HubRuntime(settings)
    try:
        yield hub
    finally:
        hub.close()


def snapshot(
    *,
    circuit: str = "closed",
    calls: tuple[int, float] = (0, 0.0),
    lag: float = 0.0,
    dead_letters: int = 0,
    deliveries: tuple[int, float] = (0, 0.0),
) -> dict[str, Any]:
    """The parts of a health snapshot the rules read."""
    return {
        "connectors": {
            "national_id": {
                "circuit": circuit,
                "last_error": "national_id.verify: HTTP 503",
                "calls": {"alert_window": {"count": calls[0], "error_rate": calls[1]}},
                "records": {"alert_window": {"count": 0, "error_rate": 0.0}},
                "lag_seconds": lag,
                "backlog": 12,
            }
        },
        "subscriptions": {
            "program-mis": {
                "deliveries": {
                    "alert_window": {"count": deliveries[0], "error_rate": deliveries[1]}
                }
            }
        },
        "broker": {"ok": True, "dead_letters": dead_letters},
    }


def _payloads(receiver: Receiver) -> list[dict[str, Any]]:
    for item in receiver.received:
        assert verify_signature(SECRET.encode(), item["signature"], item["body"])
        assert not verify_signature(b"wrong secret", item["signature"], item["body"])
    return [json.loads(item["body"]) for item in receiver.received]


def test_open_circuit_fires_and_resolves_with_signed_webhooks(
    runtime: HubRuntime, receiver: Receiver
) -> None:
    evaluator = AlertEvaluator(
        runtime.sessions, AlertRules(), WebhookNotifier(receiver.url, SECRET, egress=LOOPBACK)
    )
    assert evaluator.evaluate(snapshot()) == []
    fired = evaluator.evaluate(snapshot(circuit="open"))
    assert [(a["rule"], a["subject"], a["state"]) for a in fired] == [
        ("circuit_open", "connector:national_id", FIRING)
    ]
    assert evaluator.evaluate(snapshot(circuit="open")) == []  # still the same alert
    resolved = evaluator.evaluate(snapshot())
    assert [(a["id"], a["state"]) for a in resolved] == [(fired[0]["id"], RESOLVED)]

    payloads = _payloads(receiver)
    assert [p["type"] for p in payloads] == ["srhub.alert.firing", "srhub.alert.resolved"]
    ended = payloads[1]["alert"]
    assert ended["began_at"] == fired[0]["began_at"] and ended["ended_at"] >= ended["began_at"]
    assert "503" in ended["summary"]  # says why, in words staff can act on

    with runtime.sessions() as session:
        stored = list_alerts(session)
    assert len(stored) == 1 and stored[0]["state"] == RESOLVED and stored[0]["notified"]


def test_error_rate_lag_and_dead_letter_growth_rules(runtime: HubRuntime) -> None:
    rules = AlertRules(
        error_rate_threshold=0.5, error_rate_min_events=5, lag_seconds=60, dead_letter_growth=3
    )
    evaluator = AlertEvaluator(runtime.sessions, rules)
    # Below the minimum number of events, a high rate is not an outage.
    # (10 dead letters already waiting at start is the baseline, not growth.)
    assert evaluator.evaluate(snapshot(calls=(4, 1.0), deliveries=(2, 1.0), dead_letters=10)) == []
    fired = evaluator.evaluate(
        snapshot(calls=(10, 0.8), lag=125.0, dead_letters=20, deliveries=(6, 0.67))
    )
    found = {(a["rule"], a["subject"]): a for a in fired}
    assert set(found) == {
        ("error_rate", "connector:national_id:calls"),
        ("error_rate", "subscription:program-mis"),
        ("lag", "connector:national_id"),
        ("dead_letter_growth", "broker:sr.dead.letters"),
    }
    assert found[("lag", "connector:national_id")]["value"] == 125.0
    assert found[("dead_letter_growth", "broker:sr.dead.letters")]["value"] == 10.0
    # Healthy again (the dead-letter queue no longer grows): every alert ends.
    resolved = evaluator.evaluate(snapshot(calls=(10, 0.1), dead_letters=20))
    assert {a["state"] for a in resolved} == {RESOLVED} and len(resolved) == 3
    with runtime.sessions() as session:
        still = list_alerts(session, state=FIRING)
    assert [a["rule"] for a in still] == ["dead_letter_growth"]  # growth within the window


def test_a_failed_delivery_is_sent_again(runtime: HubRuntime, receiver: Receiver) -> None:
    evaluator = AlertEvaluator(
        runtime.sessions, AlertRules(), WebhookNotifier(receiver.url, SECRET, egress=LOOPBACK)
    )
    receiver.status = 503
    evaluator.evaluate(snapshot(circuit="open"))
    with runtime.sessions() as session:
        [alert] = list_alerts(session)
    assert alert["notified"] is False and alert["notify_error"] == "HTTP 503"
    receiver.status = 200
    evaluator.evaluate(snapshot(circuit="open"))  # same condition: only the retry is sent
    with runtime.sessions() as session:
        [alert] = list_alerts(session)
    assert alert["notified"] is True and alert["notify_error"] is None
    assert [p["type"] for p in _payloads(receiver)] == ["srhub.alert.firing"] * 2


def test_alerts_api_lists_alerts_for_staff_only(runtime: HubRuntime) -> None:
    from hub.api import create_app
    from hub.auth.tokens import issue_token

    AlertEvaluator(runtime.sessions, AlertRules()).evaluate(snapshot(circuit="open"))
    app = create_app(runtime.settings, runtime)
    client = app.test_client()

    def token(role: str) -> dict[str, str]:
        bearer = issue_token(runtime.settings, subject="t", roles=[role])
        return {"Authorization": f"Bearer {bearer}"}

    assert client.get("/api/v1/monitoring/alerts").status_code == 401
    assert client.get("/api/v1/monitoring/alerts", headers=token("partner")).status_code == 403
    for role in ("registry_staff", "auditor", "admin"):
        response = client.get("/api/v1/monitoring/alerts?state=firing", headers=token(role))
        assert response.status_code == 200
        assert [a["rule"] for a in response.get_json()["items"]] == ["circuit_open"]
    bad = client.get("/api/v1/monitoring/alerts?state=burning", headers=token("admin"))
    assert bad.status_code == 400 and "state must be one of" in bad.get_json()["detail"]
