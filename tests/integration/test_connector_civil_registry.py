"""The civil-registry connector against the LIVE civil-registry mock, over real HTTP.

The mock runs from the sandbox launcher on port 0 (so the connector is configured with exactly
the section the launcher writes); the connector's blueprint runs in a real werkzeug server on
another ephemeral port, mounted where the hub mounts it, so the registry's WebSub challenges,
signed deliveries and DCI callbacks cross real sockets. Checkpoints live in SQLite and
PostgreSQL (``db_engine``). Faults come from the mock's own fault injection.

The mock behaves as OpenCRVS's webhooks service: subscribing takes a system client's token and
the signing secret OpenCRVS issued to it (both in the launcher's section), the challenge comes
before the 202, deliveries are ``{"timestamp", "id", "event"}`` signed over
``"sha256:" + encodeURIComponent(body)``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy.engine import Engine

from connectors.base import (
    ConnectorContext,
    FakeClock,
    PartnerHttpClient,
    PullRunner,
    ResilientCaller,
)
from connectors.base.clock import SYSTEM_CLOCK, Clock
from connectors.base.errors import (
    PartnerRejected,
    SettingsError,
)
from connectors.base.resilience import PartnerLimiters
from connectors.base.testing import BatchCollectingPublisher, CollectingPublisher
from connectors.base.webhooks import mount_prefix, opencrvs_signature, plain_signature
from connectors.civil_registry import CivilRegistryConnector, DciClient, bundle_of
from connectors.civil_registry.feed import FeedPageError, parse_page
from hub.checkpoints import SqlCheckpointStore
from mappings.engine import MappingError, map_record
from sandbox_mocks.civil_registry import dci_query
from sandbox_mocks.civil_registry.app import registry_of
from sandbox_mocks.common.server import MockServer
from sandbox_mocks.launcher import RunningSandbox, SandboxConfig, start_sandbox

NAME = "civil_registry"
CALLBACK_TOKEN = "cbtoken" + "x" * 25
DCI_ACTIONS_PREFIX = "/dci/"


# --- the partner and the hub side ------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    config = SandboxConfig(
        people=2000,
        ports={"civil_registry": 0},
        only=["civil_registry"],
        work_dir=tmp_path,
        write_connectors=False,
    )
    with start_sandbox(config) as running:
        yield running


def launcher_settings(sandbox: RunningSandbox, **extra: Any) -> dict[str, Any]:
    """The launcher's section as is, plus our own keys."""
    settings = dict(sandbox.connectors()[NAME])
    settings.update(
        {
            "dci_callback_token": CALLBACK_TOKEN,
            "feed_page_size": 7,
            "resilience": {
                "timeout_seconds": 3,
                "max_attempts": 3,
                "initial_backoff_seconds": 0.01,
                "jitter_seconds": 0,
                "failure_threshold": 5,
                "cooldown_seconds": 60,
            },
        }
    )
    settings.update(extra)
    return settings


def make_connector(
    sandbox: RunningSandbox,
    publisher: Any,
    *,
    checkpoints: Any = None,
    clock: Clock = SYSTEM_CLOCK,
    **extra: Any,
) -> CivilRegistryConnector:
    context = ConnectorContext(
        NAME,
        publisher,
        clock=clock,
        limiters=PartnerLimiters(clock),
        **({"checkpoints": checkpoints} if checkpoints is not None else {}),
    )
    return CivilRegistryConnector(launcher_settings(sandbox, **extra), context)


class HubSide:
    """The connector's blueprint served where the hub mounts it."""

    def __init__(self, connector: CivilRegistryConnector) -> None:
        app = Flask("hub_like", static_folder=None)
        app.register_blueprint(connector.blueprint(), url_prefix=mount_prefix(NAME))
        self.app = app
        self.server = MockServer(app).start()
        self.base = self.server.url + mount_prefix(NAME)

    @property
    def webhook(self) -> str:
        return self.base + "/webhook"

    def notify_url(self, token: str = CALLBACK_TOKEN) -> str:
        return f"{self.base}{DCI_ACTIONS_PREFIX}{token}/notify"


@pytest.fixture
def hub_side() -> Iterator[Callable[[CivilRegistryConnector], HubSide]]:
    started: list[HubSide] = []

    def start(connector: CivilRegistryConnector) -> HubSide:
        side = HubSide(connector)
        started.append(side)
        return side

    yield start
    for side in started:
        side.server.stop()


def advance(sandbox: RunningSandbox, days: int) -> dict[str, Any]:
    answer = requests.post(
        sandbox.url(NAME) + "/_admin/clock/advance", json={"days": days}, timeout=10
    )
    answer.raise_for_status()
    return dict(answer.json())


def set_faults(sandbox: RunningSandbox, faults: dict[str, Any] | None) -> None:
    url = sandbox.url(NAME) + "/_admin/faults"
    if faults is None:
        requests.delete(url, timeout=5).raise_for_status()
    else:
        requests.put(url, json=faults, timeout=5).raise_for_status()


def mock_requests_seen(sandbox: RunningSandbox) -> int:
    stats = requests.get(sandbox.url(NAME) + "/_admin/faults", timeout=5).json()["stats"]
    return int(stats["requests"])


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def released(sandbox: RunningSandbox) -> list[Any]:
    return registry_of(sandbox.app(NAME)).store.released()


def sign(secret: str, body: bytes) -> str:
    """The signature OpenCRVS sends (checked against Node's vectors in tests/unit)."""
    return opencrvs_signature(secret.encode(), body)


def mock_status(sandbox: RunningSandbox) -> dict[str, Any]:
    return dict(requests.get(sandbox.url(NAME) + "/_admin/status", timeout=5).json())


def composition_id(bundle: dict[str, Any]) -> str:
    return next(
        e["resource"]["id"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Composition"
    )


def number_of(record: dict[str, Any]) -> str:
    """The registration number of a DCI person record: its DRN (a death) or BRN (a birth);
    ``identifier`` is one object or a list, as the spec's example allows."""
    found = record["identifier"]
    ids = {
        i["identifier_type"]: i["identifier_value"]
        for i in (found if isinstance(found, list) else [found])
    }
    return ids.get("DRN") or ids["BRN"]


# The sandbox registry lives in simulated time from its start date: subscribe to what it
# registers from then on (the default filter, "from today", would be its far future).
SANDBOX_FILTER = [
    {
        "seq_num": 1,
        "expression1": {
            "attribute_name": "registration_date",
            "operator": "ge",
            "attribute_value": "2025-01-01",
        },
    }
]


# --- settings and the hub's auth marker ------------------------------------------------------


def test_launcher_section_is_accepted_and_every_view_is_declared(sandbox: RunningSandbox) -> None:
    from hub.auth import flask_auth

    section = sandbox.connectors()[NAME]
    context = ConnectorContext(NAME, CollectingPublisher(), limiters=PartnerLimiters())
    connector = CivilRegistryConnector(section, context)  # exactly what the launcher writes
    assert connector.endpoints.feed_url == section["fhir_feed_url"]
    assert connector.dci.receiver_id == section["registry_id"]
    # OpenCRVS issued the WebSub secret: only our own DCI callback token is made up here.
    assert connector.generated_secrets == ["dci_callback_token"]
    assert connector.signature_scheme == "opencrvs" and connector.system_token is not None
    assert {"pull", "push"} == set(connector.describe()["modes"])

    app = Flask("hub_like", static_folder=None)
    app.register_blueprint(connector.blueprint(), url_prefix=mount_prefix(NAME))
    endpoints = [e for e in app.view_functions if e.startswith(f"connector_{NAME}.")]
    assert len(endpoints) == 4
    for endpoint in endpoints:
        assert flask_auth.declared_access(app.view_functions[endpoint]) == flask_auth.PUBLIC
    assert flask_auth.undeclared_endpoints(app) == []


def test_settings_problems_are_listed_without_values() -> None:
    context = ConnectorContext(NAME, CollectingPublisher(), limiters=PartnerLimiters())
    with pytest.raises(SettingsError) as listed:
        CivilRegistryConnector(
            {"base_url": "ftp://x", "webhook_secret": "short", "feed_page_size": 0, "tyop": 1},
            context,
        )
    text = str(listed.value)
    for problem in ("$.base_url", "$.webhook_secret", "$.feed_page_size", "tyop"):
        assert problem in text
    assert "short" not in text  # a secret is never echoed
    with pytest.raises(SettingsError) as missing:
        CivilRegistryConnector(
            {"webhook_topics": ["BIRTH_REGISTERED"], "subscriptions": ["dci"]}, context
        )
    assert "$.fhir_feed_url: is required when neither base_url nor url is given" in str(
        missing.value
    )


def test_subscribing_while_the_registry_is_down_fails_per_topic_then_recovers_by_itself(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    connector = make_connector(
        sandbox,
        CollectingPublisher(),
        resubscribe_initial_seconds=0.3,
        resilience={
            "timeout_seconds": 3,
            "max_attempts": 2,
            "initial_backoff_seconds": 0.01,
            "jitter_seconds": 0,
            "failure_threshold": 50,
        },
    )
    hub = hub_side(connector)
    set_faults(sandbox, {"down": True})
    try:
        outcome = connector.subscribe(hub.base)  # never raises: each topic has its outcome
        assert outcome == {"BIRTH_REGISTERED": "failed", "DEATH_REGISTERED": "failed"}
        snapshot = connector.status.snapshot()
        assert snapshot["state"] != "up"
        for topic in ("BIRTH_REGISTERED", "DEATH_REGISTERED"):
            reason = snapshot["subscriptions"][f"websub:{topic}"]["reason"]
            assert "could not be reached" in reason and "http_503" in reason
            assert "tried again in the background" in reason
        assert connector.describe()["websub"]["pending"] == []
        assert connector.describe()["websub"]["retrying"] == [
            "BIRTH_REGISTERED",
            "DEATH_REGISTERED",
        ]
    finally:
        set_faults(sandbox, None)  # the registry is back: the background retry subscribes

    def both_active() -> bool:
        subs = connector.status.snapshot()["subscriptions"]
        return all(entry["state"] == "active" for entry in subs.values())

    wait_until(both_active)
    assert connector.status.state == "up"
    assert sorted(h["topic"] for h in mock_status(sandbox)["webhook_subscriptions"]) == [
        "BIRTH_REGISTERED",
        "DEATH_REGISTERED",
    ]
    connector.close()


def test_handshake_refusals_come_back_with_opencrvs_reasons(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    # A secret that is not the one OpenCRVS issued to this client.
    wrong = make_connector(sandbox, CollectingPublisher(), webhook_secret="not-the-sha-secret-1")
    hub = hub_side(wrong)
    assert wrong.subscribe(hub.base) == {
        "BIRTH_REGISTERED": "refused",
        "DEATH_REGISTERED": "refused",
    }
    snapshot = wrong.status.snapshot()
    assert snapshot["state"] == "degraded"
    assert snapshot["subscriptions"]["websub:BIRTH_REGISTERED"]["reason"] == (
        "OpenCRVS denied the subscription: hub.secret is incorrect"
    )
    assert mock_status(sandbox)["webhook_subscriptions"] == []
    assert mock_status(sandbox)["challenges_sent"] == 0  # refused before any challenge

    # Wrong client credentials: the auth service refuses, webhooks are never called.
    stranger = make_connector(sandbox, CollectingPublisher(), client_secret="guessed")
    outcome = stranger.subscribe(hub_side(stranger).base)
    assert set(outcome.values()) == {"refused"}
    reason = stranger.status.snapshot()["subscriptions"]["websub:DEATH_REGISTERED"]["reason"]
    assert "invalid_client: Invalid client id or secret" in reason

    # A deactivated system client: OpenCRVS's own words.
    client_id = sandbox.connectors()[NAME]["client_id"]
    requests.post(
        f"{sandbox.url(NAME)}/_admin/systems/{client_id}/deactivate", timeout=5
    ).raise_for_status()
    inactive = make_connector(sandbox, CollectingPublisher())
    assert set(inactive.subscribe(hub_side(inactive).base).values()) == {"refused"}
    reason = inactive.status.snapshot()["subscriptions"]["websub:BIRTH_REGISTERED"]["reason"]
    assert "invalid_client" in reason  # OpenCRVS's auth service refuses an inactive client


def test_one_topic_failing_its_challenge_does_not_stop_the_other(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    connector = make_connector(sandbox, CollectingPublisher(), resubscribe_initial_seconds=0.3)
    hub = hub_side(connector)
    blocked = {"topic": "DEATH_REGISTERED"}

    @hub.app.before_request
    def lie_about_one_topic() -> Any:  # a proxy in front of the hub garbles one answer
        from flask import jsonify, request

        if request.method == "GET" and request.args.get("topic") == blocked["topic"]:
            return jsonify({"challenge": "garbled"})
        return None

    assert connector.subscribe(hub.base) == {
        "BIRTH_REGISTERED": "active",
        "DEATH_REGISTERED": "failed",
    }
    snapshot = connector.status.snapshot()
    assert snapshot["state"] == "degraded"
    assert snapshot["problems"] and "websub:DEATH_REGISTERED: failed" in snapshot["problems"][0]
    assert "OpenCRVS could not verify the callback" in snapshot["problems"][0]
    assert [h["topic"] for h in mock_status(sandbox)["webhook_subscriptions"]] == [
        "BIRTH_REGISTERED"
    ]

    blocked["topic"] = "nothing"  # the proxy is fixed: the background retry succeeds
    wait_until(lambda: connector.status.state == "up")
    assert sorted(h["topic"] for h in mock_status(sandbox)["webhook_subscriptions"]) == [
        "BIRTH_REGISTERED",
        "DEATH_REGISTERED",
    ]
    connector.close()


# --- push: WebSub ----------------------------------------------------------------------------


def test_websub_subscribe_challenge_and_signed_deliveries(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    publisher = CollectingPublisher()
    connector = make_connector(sandbox, publisher, max_body_bytes=64 * 1024)
    secret = connector.webhook_secret  # the sha secret the registry issued to the hub's client
    hub = hub_side(connector)

    # A challenge for a topic we never asked for is refused.
    stray = requests.get(
        hub.webhook,
        params={"mode": "subscribe", "challenge": "c-1", "topic": "BIRTH_REGISTERED"},
        timeout=5,
    )
    assert stray.status_code == 404

    outcome = connector.subscribe(hub.base)  # what the hub's connector host passes
    assert outcome == {"BIRTH_REGISTERED": "active", "DEATH_REGISTERED": "active"}
    status = mock_status(sandbox)
    hooks = {h["topic"]: h for h in status["webhook_subscriptions"]}
    assert {h["callback"] for h in hooks.values()} == {hub.webhook}
    assert status["challenges_sent"] == 2 and status["tokens_issued"] == 1
    assert set(connector.describe()["websub"]["active"]) == set(outcome)
    assert connector.status.state == "up"

    before = len(released(sandbox))
    outcome_days = advance(sandbox, 120)
    fresh = released(sandbox)[before:]
    assert outcome_days["released"] == len(fresh) > 0
    wait_until(lambda: len(publisher.records()) >= len(fresh))
    time.sleep(0.3)  # anything extra would show up now

    records = publisher.records()
    expected = {f"{e.topic}:composition:{composition_id(e.bundle)}": e for e in fresh}
    assert sorted(r.source_id for r in records) == sorted(expected)
    for record in records:
        event = expected[record.source_id]
        assert (
            record.record_type
            == {"BIRTH_REGISTERED": "birth", "DEATH_REGISTERED": "death"}[event.topic]
        )
        # The payload is OpenCRVS's body, unchanged: no wrapper; "id" is the subscription's.
        assert set(record.payload) == {"timestamp", "id", "event"}
        assert record.payload["id"] == hooks[event.topic]["id"]
        assert record.payload["event"]["hub"] == {"topic": event.topic}
        assert record.headers["bundle_path"] == "event.context[0]"
        assert record.headers["webhook_id"] == hooks[event.topic]["id"]
        bundle = bundle_of(record.payload, record.headers["bundle_path"])
        assert bundle == event.bundle
        mapped = map_record(f"civil_registry_{record.record_type}", bundle)
        assert mapped["registration_number"] == event.event.registration_number

    # Forged, unsigned or wrongly signed deliveries are refused and never published.
    forged = json.dumps(
        {"timestamp": "t", "id": "x", "event": {"hub": {"topic": "DEATH_REGISTERED"}}}
    ).encode()
    bad = requests.post(
        hub.webhook, data=forged, headers={"X-Hub-Signature": sign("wrong" * 8, forged)}, timeout=5
    )
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "signature_invalid"
    plain = requests.post(  # the right secret in the plain scheme is not OpenCRVS's signature
        hub.webhook,
        data=forged,
        headers={"X-Hub-Signature": plain_signature(secret.encode(), forged)},
        timeout=5,
    )
    assert plain.status_code == 403 and "opencrvs scheme" in plain.json()["error"]["message"]
    missing = requests.post(hub.webhook, data=forged, timeout=5)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "signature_missing"
    huge = b"{" + b" " * (100 * 1024) + b"}"
    too_big = requests.post(
        hub.webhook, data=huge, headers={"X-Hub-Signature": sign(secret, huge)}, timeout=10
    )
    assert too_big.status_code == 413
    signed_junk = b"not json"
    junk = requests.post(
        hub.webhook,
        data=signed_junk,
        headers={"X-Hub-Signature": sign(secret, signed_junk)},
        timeout=5,
    )
    assert junk.status_code == 400 and "not JSON" in junk.json()["error"]["message"]
    wrapped = json.dumps({"payload": {"id": "e", "event": {"hub": {"topic": "X"}}}}).encode()
    old_form = requests.post(
        hub.webhook, data=wrapped, headers={"X-Hub-Signature": sign(secret, wrapped)}, timeout=5
    )
    assert old_form.status_code == 400 and '"payload"' in old_form.json()["error"]["message"]
    assert len(publisher.records()) == len(fresh)
    snapshot = connector.status.snapshot()
    assert snapshot["counts"]["pushes_refused"] == 6
    assert snapshot["counts"]["pushes_accepted"] == len(fresh)
    assert snapshot["state"] == "up"  # refusals are shown, they do not make the partner "down"
    assert "refused webhook delivery" in (snapshot["last_error"] or "")

    # The hub cannot store one event: it answers 503. OpenCRVS's queue does not resend on an
    # HTTP answer (only when the hub cannot be reached), so the feed is what fills the gap.
    publisher.fail_at = len(publisher.published) + 1
    before = len(released(sandbox))
    advance(sandbox, 90)
    more = released(sandbox)[before:]
    assert more
    wait_until(lambda: len(publisher.records()) >= len(fresh) + len(more) - 1)
    time.sleep(0.3)
    attempts = requests.get(sandbox.url(NAME) + "/_admin/deliveries", timeout=5).json()
    refused_attempts = [
        a for a in attempts["attempts"] if a["kind"] == "webhook" and a["status_code"] == 503
    ]
    assert len(refused_attempts) == 1  # answered, so not tried again
    lost = [e for e in more if e.event_id == refused_attempts[0]["event_id"]]
    assert len(lost) == 1 and len(publisher.records()) == len(fresh) + len(more) - 1
    PullRunner(connector, interval=60).run_once()
    fed = [r for r in publisher.records() if r.headers["origin"] == "feed"]
    assert lost[0].event_id in {r.source_id for r in fed}


def test_a_re_sent_delivery_has_one_message_id(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    """OpenCRVS re-sends through every subscription, each time with its own id and time."""
    from connectors.base import raw_record_id

    publisher = CollectingPublisher()
    connector = make_connector(sandbox, publisher)
    hub = hub_side(connector)
    secret = connector.webhook_secret
    advance(sandbox, 120)
    event = released(sandbox)[0]
    ids = set()
    for n in range(3):
        body = json.dumps(
            {
                # Each copy sent a moment later (within the connector's replay window).
                "timestamp": _now(),
                "id": f"webhook-{n}",
                "event": {"hub": {"topic": event.topic}, "context": [event.bundle]},
            },
            ensure_ascii=False,
        ).encode()
        answer = requests.post(
            hub.webhook, data=body, headers={"X-Hub-Signature": sign(secret, body)}, timeout=5
        )
        assert answer.status_code == 200, answer.text
        ids.add(answer.json()["message_id"])
    assert len(publisher.records()) == 3  # each copy published raw (at least once) ...
    assert len(ids) == 1  # ... under one message id: the ingest applies it once
    assert ids == {raw_record_id(NAME, publisher.records()[0])}


def test_webhook_replay_outside_the_window_is_refused(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    """Finding of issue 17: a captured, genuinely signed delivery could be replayed forever
    (each replay of a failing one adding a dead letter). OpenCRVS signs the body and its
    ``timestamp``: one further than ``max_delivery_age_seconds`` from our clock is refused
    before anything is published."""
    from datetime import UTC, datetime, timedelta

    from sandbox_mocks.civil_registry.webhooks import js_iso

    publisher = CollectingPublisher()
    connector = make_connector(sandbox, publisher)
    hub = hub_side(connector)
    secret = connector.webhook_secret
    advance(sandbox, 60)
    event = released(sandbox)[0]

    def delivery(sent: datetime) -> bytes:
        body = {
            "timestamp": js_iso(sent),
            "id": "webhook-replayed",
            "event": {"hub": {"topic": event.topic}, "context": [event.bundle]},
        }
        return json.dumps(body, ensure_ascii=False).encode()

    now = datetime.now(UTC)
    for sent in (now - timedelta(hours=1), now + timedelta(hours=1)):
        body = delivery(sent)
        answer = requests.post(
            hub.webhook, data=body, headers={"X-Hub-Signature": sign(secret, body)}, timeout=5
        )
        assert answer.status_code == 403, answer.text
        assert "timestamp" in answer.json()["error"]["message"]
    assert publisher.records() == []
    fresh = delivery(now)
    answer = requests.post(
        hub.webhook, data=fresh, headers={"X-Hub-Signature": sign(secret, fresh)}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    assert len(publisher.records()) == 1


# --- pull: the feed --------------------------------------------------------------------------


def test_feed_pages_with_checkpoints_and_restart_resumes_without_gaps_or_repeats(
    sandbox: RunningSandbox, db_engine: Engine
) -> None:
    advance(sandbox, 365)
    everything = [e.event_id for e in released(sandbox)]
    assert len(everything) > 14  # more than two pages of 7

    publisher = BatchCollectingPublisher()
    store = SqlCheckpointStore(db_engine)
    first = make_connector(sandbox, publisher, checkpoints=store)
    outcome = PullRunner(first, interval=60, max_pages_per_run=2).run_once()
    assert outcome.error is None and outcome.pages == 2 and outcome.published == 14
    saved = SqlCheckpointStore(db_engine).load(NAME)
    assert saved == outcome.checkpoint and saved

    # "Restart": a new connector and runner over the same database.
    second = make_connector(sandbox, publisher, checkpoints=SqlCheckpointStore(db_engine))
    outcome = PullRunner(second, interval=60).run_once()
    assert outcome.error is None
    assert publisher.source_ids() == everything  # in order, no gap, no repeat
    assert publisher.batches[:2] == [7, 7]
    assert {r.record_type for r in publisher.records()} == {"birth", "death"}
    entry = publisher.records()[0]
    assert entry.headers["bundle_path"] == "bundle" and bundle_of(entry.payload)["entry"]

    # Nothing new: polling again publishes nothing and keeps the cursor.
    again = PullRunner(second, interval=60).run_once()
    assert again.published == 0 and again.error is None
    assert SqlCheckpointStore(db_engine).load(NAME) == outcome.checkpoint
    # New registrations later are picked up from the cursor.
    advance(sandbox, 200)
    later = PullRunner(second, interval=60).run_once()
    assert publisher.source_ids() == [e.event_id for e in released(sandbox)]
    assert later.published == len(released(sandbox)) - len(everything)


def test_feed_partner_down_retried_circuit_opens_then_resumes(
    sandbox: RunningSandbox, db_engine: Engine
) -> None:
    advance(sandbox, 365)
    everything = [e.event_id for e in released(sandbox)]
    clock = FakeClock()
    publisher = CollectingPublisher()
    connector = make_connector(
        sandbox, publisher, checkpoints=SqlCheckpointStore(db_engine), clock=clock
    )
    runner = PullRunner(connector, interval=60, max_pages_per_run=1)
    assert runner.run_once().published == 7

    set_faults(sandbox, {"down": True})
    failed = runner.run_once()
    assert failed.error and "http_503" in failed.error
    counts = connector.status.snapshot()["counts"]
    assert counts["calls"] == 1 + 3 and counts["retries"] == 2  # retried before giving up
    assert connector.status.snapshot()["circuit"] == "closed"

    failed = runner.run_once()  # two more failures reach the threshold of 5: the circuit opens
    snapshot = connector.status.snapshot()
    assert snapshot["circuit"] == "open" and snapshot["state"] == "down"
    assert "circuit_open" in (snapshot["last_error"] or "")
    seen = mock_requests_seen(sandbox)
    refused = runner.run_once()
    assert refused.error and "circuit_open" in refused.error
    assert mock_requests_seen(sandbox) == seen  # the open circuit spares the partner
    assert SqlCheckpointStore(db_engine).load(NAME) == failed.checkpoint  # not advanced

    set_faults(sandbox, None)  # the registry is back
    clock.advance(61)  # past the cool-down: one trial call, which succeeds
    resumed = PullRunner(connector, interval=60).run_once()
    assert resumed.error is None
    assert connector.status.snapshot()["circuit"] == "closed"
    assert connector.status.state == "up"
    assert publisher.source_ids() == everything  # nothing lost, nothing twice


def test_slow_feed_times_out_is_retried_and_resumes(sandbox: RunningSandbox) -> None:
    advance(sandbox, 365)
    publisher = CollectingPublisher()
    resilience = {
        "timeout_seconds": 0.3,
        "max_attempts": 2,
        "initial_backoff_seconds": 0,
        "jitter_seconds": 0,
    }
    connector = make_connector(sandbox, publisher, resilience=resilience)
    set_faults(sandbox, {"latency_ms": 900})
    outcome = PullRunner(connector, interval=60).run_once()
    assert outcome.error and "timeout" in outcome.error
    counts = connector.status.snapshot()["counts"]
    assert counts["calls"] == 2 and counts["retries"] == 1
    assert publisher.records() == [] and connector.context.checkpoints.load(NAME) is None
    assert connector.status.state == "down"  # never worked yet, and the last call failed

    set_faults(sandbox, None)
    assert PullRunner(connector, interval=60).run_once().error is None
    assert publisher.source_ids() == [e.event_id for e in released(sandbox)]


def test_feed_page_that_cannot_be_parsed_keeps_the_checkpoint(
    sandbox: RunningSandbox,
) -> None:
    advance(sandbox, 365)
    publisher = CollectingPublisher()
    connector = make_connector(sandbox, publisher)
    runner = PullRunner(connector, interval=60, max_pages_per_run=1)
    runner.run_once()
    checkpoint = connector.context.checkpoints.load(NAME)

    set_faults(sandbox, {"malformed_rate": 1.0, "malformed_mode": "garbage"})
    outcome = runner.run_once()
    assert outcome.error and "bad_page" in outcome.error
    snapshot = connector.status.snapshot()
    assert snapshot["state"] == "degraded" and "bad_page" in snapshot["last_error"]
    assert connector.context.checkpoints.load(NAME) == checkpoint

    set_faults(sandbox, None)
    PullRunner(connector, interval=60).run_once()
    assert publisher.source_ids() == [e.event_id for e in released(sandbox)]
    assert connector.status.state == "up"


def test_feed_page_parser_rejects_bad_entries_and_keeps_good_ones() -> None:
    page = parse_page(
        {
            "entries": [
                {"id": "e1", "topic": "BIRTH_REGISTERED", "bundle": {"resourceType": "Bundle"}},
                "not an object",
                {"id": "e2", "topic": "MARRIAGE_REGISTERED"},
                {"id": "e3", "kind": "death", "bundle": None},  # a broken Bundle is still raw
            ],
            "next": "c2",
            "has_more": False,
        },
        "c1",
    )
    assert [(r.source_id, r.record_type) for r in page.records] == [
        ("e1", "birth"),
        ("e3", "death"),
    ]
    assert [r.reason for r in page.rejected] == [
        "the entry is not a JSON object",
        "the entry has no known topic or kind (birth / death)",
    ]
    assert page.next_cursor == "c2"
    for bad in ({"entries": {}, "next": "c"}, {"entries": []}, [], {"entries": [], "next": 3}):
        with pytest.raises(FeedPageError):
            parse_page(bad, "c1")


# --- DCI -------------------------------------------------------------------------------------


def test_dci_sync_search_by_brn_drn_and_dates(sandbox: RunningSandbox) -> None:
    advance(sandbox, 365)
    events = released(sandbox)
    birth = next(e for e in events if e.event.kind == "birth")
    death = next(e for e in events if e.event.kind == "death")
    connector = make_connector(sandbox, CollectingPublisher())

    found = connector.dci.search_by_id("BRN", birth.event.registration_number)
    assert [number_of(r) for r in found] == [birth.event.registration_number]
    mapped = map_record("civil_registry_dci_birth", found[0])
    assert mapped["registration_number"] == birth.event.registration_number
    found = connector.dci.search_by_id("DRN", death.event.registration_number)
    assert [r["reg_event_type"] for r in found] == ["spdci-common:RegistryEventType:Death"]
    assert connector.dci.search_by_id("BRN", "NO-SUCH-NUMBER") == []

    since, until = (
        events[0].event.registration_date,
        events[len(events) // 2].event.registration_date,
    )
    expected = sorted(
        e.event.registration_number
        for e in events
        if e.event.kind == "death" and since <= e.event.registration_date <= until
    )
    page = connector.dci.search_by_dates(
        "registration_date", since=since, until=until, event_type="death", page_size=500
    )
    assert page.ok and sorted(number_of(r) for r in page.records) == expected

    # A wrong bearer token is a permanent refusal with the status, not a crash or a retry.
    caller = ResilientCaller("civil_registry", timeout=3)
    wrong = DciClient(
        PartnerHttpClient(
            sandbox.connectors()[NAME]["dci_base_url"] + "/",
            caller,
            headers={"Authorization": "Bearer wrong"},
        ),
        sender_id="social-registry-hub",
        receiver_id="civil-registry",
        clock=SYSTEM_CLOCK,
    )
    with pytest.raises(PartnerRejected) as refused:
        wrong.search_by_id("BRN", birth.event.registration_number)
    assert refused.value.status == 401


def test_dci_async_search_answer_comes_back_to_on_search(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    advance(sandbox, 365)
    birth = next(e for e in released(sandbox) if e.event.kind == "birth")
    publisher = CollectingPublisher()
    connector = make_connector(sandbox, publisher)
    hub = hub_side(connector)
    from connectors.civil_registry import id_criteria

    txn = connector.dci.search_async(
        [id_criteria("BRN", birth.event.registration_number)],
        sender_uri=connector.dci_sender_uri("on-search", hub.base),
        publish=True,
    )
    results = connector.dci.wait_for(txn, timeout=15)
    assert results is not None and results[0].ok
    assert [number_of(r) for r in results[0].records] == [birth.event.registration_number]
    assert [(r.record_type, r.source_id) for r in publisher.records()] == [
        ("dci_birth", birth.event.registration_number)
    ]
    # An on-search for a transaction we did not start is refused.
    body = {
        "header": {
            "version": "1.0.0",
            "message_id": uuid.uuid4().hex,
            "message_ts": _now(),
            "action": "on-search",
            "sender_id": "civil-registry",
            "total_count": 1,
        },
        "message": {"transaction_id": "invented", "search_response": []},
    }
    url = f"{hub.base}/dci/{CALLBACK_TOKEN}/on-search"
    answer = requests.post(url, json=body, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["message"]["ack_status"] == "NACK"


def _now() -> str:
    from standards.dci.envelope import timestamp

    return timestamp()


def test_dci_subscribe_then_notify_receiver_publishes_each_record(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    publisher = BatchCollectingPublisher()
    connector = make_connector(
        sandbox, publisher, subscriptions=["dci"], dci_subscribe_filter=SANDBOX_FILTER
    )
    hub = hub_side(connector)
    assert set(connector.subscribe(hub.base)) == {"dci"}  # no WebSub: one way in, no copies
    wait_until(lambda: len(connector.describe()["dci"]["subscriptions"]) == 2)
    assert sorted(connector.describe()["dci"]["subscriptions"].values()) == [
        "spdci-common:RegistryEventType:Death",
        "spdci-common:RegistryEventType:LiveBirth",
    ]
    assert connector.status.snapshot()["problems"] == []
    status = requests.get(sandbox.url(NAME) + "/_admin/status", timeout=5).json()
    assert sorted(s["reg_event_type"] for s in status["dci_subscriptions"]) == [
        "death",
        "live_birth",
    ]
    assert [s["filter"] for s in status["dci_subscriptions"]] == [SANDBOX_FILTER] * 2

    before = len(released(sandbox))
    advance(sandbox, 365)
    fresh = released(sandbox)[before:]
    assert fresh
    wait_until(lambda: len(publisher.records()) >= len(fresh))
    time.sleep(0.3)
    records = publisher.records()
    assert sorted(r.source_id for r in records) == sorted(
        e.event.registration_number for e in fresh
    )
    assert connector.describe()["dci"]["callbacks"]["notify"]["count"] >= 1
    by_number = {e.event.registration_number: e for e in fresh}
    mapped_count = 0
    for record in records:
        event = by_number[record.source_id]
        assert record.record_type == {"birth": "dci_birth", "death": "dci_death"}[event.event.kind]
        assert record.headers["origin"] == "dci_notify"
        assert record.payload == dci_query.index(event).record  # the person record, unchanged
        try:
            mapped = map_record(f"civil_registry_{record.record_type}", record.payload)
        except MappingError as error:  # the ingest's business: dead-lettered with reasons
            assert error.problems
            continue
        assert mapped["registration_number"] == record.source_id
        mapped_count += 1
    assert mapped_count > 0
    assert connector.status.snapshot()["counts"]["pushes_accepted"] >= 1


def _notify_body(records: list[Any], event_type: str = "live_birth", **header: Any) -> dict:
    return {
        "header": {
            "version": "1.0.0",
            "message_id": uuid.uuid4().hex,
            "message_ts": _now(),
            "action": "notify",
            "sender_id": "civil-registry",
            "receiver_id": "social-registry-hub",
            "total_count": len(records),
            **header,
        },
        "message": {
            "transaction_id": uuid.uuid4().hex,
            "notify_event": [
                {
                    "reference_id": f"ref-{n}",
                    "timestamp": _now(),
                    "data": {"reg_event_type": event_type, "reg_records": [record]},
                }
                for n, record in enumerate(records)
            ],
        },
    }


def test_malformed_notify_gets_a_dci_nack_never_a_500(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    publisher = CollectingPublisher()
    connector = make_connector(sandbox, publisher)
    hub = hub_side(connector)
    url = hub.notify_url()
    good = {"registration_number": "B-1", "identifier": [], "reg_event_type": "live_birth"}

    def post(body: Any, target: str = url, **kwargs: Any) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        return requests.post(target, data=data, headers=headers, timeout=5, **kwargs)

    cases: list[tuple[Any, str, int, str]] = [
        (b"{not json", url, 400, "err.request.bad"),
        ({"header": {}, "message": {}}, url, 400, "err.request.bad"),
        (_notify_body([good], action="search"), url, 400, "err.request.bad"),
        (_notify_body([good], version="9.9"), url, 400, "err.version.not_supported"),
        (_notify_body([good], sender_id="someone-else"), url, 403, "err.sender_id.invalid"),
        ({**_notify_body([good]), "message": {"notify_event": "x"}}, url, 400, "err.request.bad"),
        (_notify_body(["not a record"]), url, 400, "err.request.bad"),
        (_notify_body([good]), hub.notify_url("w" * 32), 401, "err.request.unauthorized"),
    ]
    for body, target, status, code in cases:
        answer = post(body, target)
        assert answer.status_code == status, (code, answer.text)
        message = answer.json()["message"]
        assert message["ack_status"] == "NACK" and message["error"]["code"] == code
        assert message["error"]["message"]
        # The spec's HttpErrorResponse and problem fields beside it, as the DCI server has.
        assert answer.json()["errors"] == [message["error"]]
        assert (answer.json()["status"], answer.json()["code"]) == (status, code)
    assert publisher.records() == []

    # Good and bad records in one notify: the good one lands, the bad one is reported.
    mixed = _notify_body([good, "garbage"])
    answer = post(mixed)
    assert answer.status_code == 200
    assert answer.json()["message"]["ack_status"] == "ACK"
    assert "1 refused" in answer.json()["message"]["error"]["message"]
    assert [(r.record_type, r.source_id) for r in publisher.records()] == [("dci_birth", "B-1")]

    # The bearer-token route works the same way.
    bearer = post(
        _notify_body([{**good, "registration_number": "B-2"}]),
        f"{hub.base}/registry/notify",
        auth=None,
    )
    assert bearer.status_code == 401
    answer = requests.post(
        f"{hub.base}/registry/notify",
        json=_notify_body([{**good, "registration_number": "B-2"}]),
        headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200

    # The hub cannot store: ERR err.service.unavailable (503), so the registry resends.
    publisher.fail_at = len(publisher.published) + 1
    answer = post(_notify_body([{**good, "registration_number": "B-3"}]))
    assert answer.status_code == 503
    assert answer.json()["message"]["ack_status"] == "ERR"
    assert answer.json()["message"]["error"]["code"] == "err.service.unavailable"
    assert publisher.source_ids() == ["B-1", "B-2"]
    recent = connector.describe()["recent_rejections"]
    assert recent and all("B-1" not in json.dumps(r) for r in recent)


def test_search_by_id_keeps_only_records_that_carry_the_identifier() -> None:
    from connectors.civil_registry.dci_messages import carries

    record = {
        "identifier": [{"identifier_type": "UIN", "identifier_value": "123"}],
        "registration_number": "BR-9",
        "reg_event_type": "live_birth",
    }
    assert carries(record, "UIN", "123")
    assert carries(record, "BRN", "BR-9")
    assert not carries(record, "UIN", "124")
    assert not carries(record, "DRN", "BR-9")  # a birth number is not a death number


# --- DCI subscriptions that do not work show in health --------------------------------------


def test_a_subscription_never_confirmed_makes_the_connector_degraded(
    sandbox: RunningSandbox,
) -> None:
    """The registry ACKs, but its on-subscribe cannot reach us (a wrong public URL)."""
    from hub.monitoring.health import MonitoringContext, connector_health

    connector = make_connector(
        sandbox,
        CollectingPublisher(),
        subscriptions=["dci"],
        dci_subscribe_filter=SANDBOX_FILTER,
        pending_ttl_seconds=0.5,
    )
    connector.subscribe("http://127.0.0.1:9/connectors/civil_registry")  # nobody listens
    # ACKed, and awaited: not "up" before the registry confirmed anything.
    assert connector.status.snapshot()["problems"] == [
        "dci:spdci-common:RegistryEventType:LiveBirth,spdci-common:RegistryEventType:Death: "
        "awaiting_confirmation"
    ]
    wait_until(lambda: "not confirmed" in str(connector.status.snapshot()["problems"]), timeout=5)
    assert connector.status.state == "degraded"
    [reason] = connector.status.snapshot()["problems"]
    assert "not confirmed: no on-subscribe within 0.5 s" in reason
    assert CALLBACK_TOKEN not in reason  # the callback URL carries a secret

    class Host:
        runners: dict[str, Any] = {}

        def statuses(self) -> dict[str, Any]:
            return {NAME: connector.status.snapshot()}

    shown = connector_health(MonitoringContext(None, None, Host()), {}, {})[NAME]
    assert shown["state"] == "degraded" and shown["problems"] == [reason]
    [attempt] = connector.describe()["dci"]["attempts"]
    assert attempt["state"] == "pending" and attempt["codes"] == {}


def test_a_subscription_the_registry_refuses_shows_its_reason(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    template = {"type": "ns:org:QueryType:graphql", "value": {"expression": "births { id }"}}
    connector = make_connector(
        sandbox, CollectingPublisher(), subscriptions=["dci"], dci_subscribe_filter=template
    )
    hub = hub_side(connector)
    connector.subscribe(hub.base)
    wait_until(lambda: "refused" in str(connector.status.snapshot()["problems"]))
    assert connector.status.state == "degraded"
    [reason] = connector.status.snapshot()["problems"]
    assert (
        "DCI subscription to spdci-common:RegistryEventType:LiveBirth, "
        "spdci-common:RegistryEventType:Death refused by the registry: "
        "rjct.notify_details.invalid: subscribe_criteria.filter: query templates"
    ) in reason
    assert connector.describe()["dci"]["callbacks"]["on-subscribe"]["count"] == 1


# --- the callback views ------------------------------------------------------------------------


def test_each_callback_url_takes_its_own_action_and_the_subscribe_url_takes_notify(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    publisher = CollectingPublisher()
    connector = make_connector(sandbox, publisher)
    hub = hub_side(connector)
    url = connector.dci_sender_uri
    assert url("on-search", hub.base) == f"{hub.base}/dci/{CALLBACK_TOKEN}/on-search"
    good = {
        "identifier": {"identifier_type": "BRN", "identifier_value": "B-7"},
        "reg_event_type": "spdci-common:RegistryEventType:LiveBirth",
    }
    body = _notify_body([good], event_type="spdci-common:RegistryEventType:LiveBirth")
    for target in (url("notify", hub.base), url("on-subscribe", hub.base)):
        answer = requests.post(
            target,
            json={**body, "header": {**body["header"], "message_id": uuid.uuid4().hex}},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
    assert [r.source_id for r in publisher.records()] == ["B-7", "B-7"]  # same id: one effect
    wrong = requests.post(url("on-search", hub.base), json=_notify_body([good]), timeout=5)
    assert wrong.status_code == 400
    assert "takes action 'on-search', not 'notify'" in wrong.json()["message"]["error"]["message"]
    gone = requests.post(f"{hub.base}/dci/{CALLBACK_TOKEN}/registry/notify", json=body, timeout=5)
    assert gone.status_code == 404  # the registry calls sender_uri as given, appending nothing


def test_callbacks_must_carry_the_registrys_signature_when_its_key_is_configured(
    sandbox: RunningSandbox, hub_side: Callable[[CivilRegistryConnector], HubSide]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from standards.dci.signature import public_key_base64, sign_envelope

    registry_key = Ed25519PrivateKey.generate()
    publisher = CollectingPublisher()
    connector = make_connector(
        sandbox, publisher, registry_public_key=public_key_base64(registry_key.public_key())
    )
    hub = hub_side(connector)
    url = connector.dci_sender_uri("notify", hub.base)

    def signed(number: str, key: Ed25519PrivateKey = registry_key) -> dict[str, Any]:
        record = {"identifier": {"identifier_type": "BRN", "identifier_value": number}}
        body = _notify_body([record])
        body["signature"] = sign_envelope(
            body["header"], body["message"], key, sender_id="civil-registry", key_id="k1"
        )
        return body

    assert requests.post(url, json=signed("B-1"), timeout=5).status_code == 200
    tampered = signed("B-2")
    tampered["message"]["notify_event"][0]["data"]["reg_records"][0]["name"] = "Mallory"
    unsigned = signed("B-3")
    del unsigned["signature"]
    for body, code in (
        (signed("B-4", Ed25519PrivateKey.generate()), "err.signature.invalid"),
        (tampered, "err.signature.invalid"),
        (unsigned, "err.signature.missing"),
    ):
        answer = requests.post(url, json=body, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["message"]["error"]["code"] == code
    assert publisher.source_ids() == ["B-1"]
    assert connector.describe()["dci"]["signatures"] == {
        "signing": False,
        "verifying_registry": True,
    }
    with pytest.raises(SettingsError, match=r"\$\.registry_public_key"):
        make_connector(sandbox, publisher, registry_public_key="A" * 40)


def test_the_hub_hands_its_dci_signing_key_to_the_connector(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    from hub.connectors_host import ConnectorHost
    from hub.dci.config import load_signing_key
    from hub.settings import load_settings

    settings = load_settings(env={}, data_dir=tmp_path / "var", sandbox=False)
    host = ConnectorHost(settings, None).build({NAME: launcher_settings(sandbox)})
    try:
        connector = host.connectors[NAME]
        hub_key = load_signing_key(settings, settings.dci)
        assert connector.context.signing_key.key_id == hub_key.key_id  # the DCI server's key
        assert connector.describe()["dci"]["signatures"]["signing"] is True
    finally:
        host.stop()
