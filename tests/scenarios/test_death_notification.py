"""The notifications "done when": a death registered in the civil registry mock reaches a
subscribed program MIS mock by webhook and by AMQP exactly once, with the right content, within
5 seconds; a program without consent gets nothing personal, on either channel.

Runs on the embedded broker over SQLite and PostgreSQL, and on RabbitMQ (a virtual host of its
own). The embedded broker has no AMQP endpoint for outsiders: there the hub forwards AMQP
deliveries to the RabbitMQ named by ``SRHUB_DELIVERY_AMQP_URL`` (a virtual host of its own
here), where the MIS mock consumes. Without ``SRHUB_TEST_AMQP_URL`` the embedded runs check
the webhook only (under ``CI=true`` they fail instead).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from hub.api import create_app
from hub.auth.tokens import issue_token
from hub.broker import connect
from hub.connectors_host import ConnectorHost
from hub.pipeline.ingest import ingest_handlers
from hub.pipeline.routes import default_routes
from hub.runtime import HubRuntime
from hub.sandbox_seed import seed_registry
from hub.settings import load_settings
from hub.subscriptions import service
from hub.subscriptions.fanout import opaque_ref
from hub.workers.middleware import OutcomeCounter
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import INGEST_QUEUE
from registry_core.service import Source
from sandbox_mocks.launcher import SandboxConfig, start_sandbox
from sandbox_mocks.population import iter_vital_events
from tests.integration.notification_support import notification_workers
from tests.integration.pipeline_support import own_amqp_vhost
from tests.scenarios.conftest import FAST_RESILIENCE, wait_for
from tests.services import AMQP_ENV, amqp_url_or_skip, in_ci

PEOPLE = 250
START = date(2025, 1, 1)
AMQP_CODE = "mis-deaths-amqp"
NUTRI_AMQP_CODE = "nutri-deaths-amqp"


@dataclass
class NotifyHub:
    url: str
    runtime: HubRuntime
    sandbox: Any
    settings: Any
    amqp: bool
    subscriber_amqp_url: str | None = None  # where AMQP subscribers consume (hub's or delivery)
    dispatch_outcomes: OutcomeCounter | None = None  # what the dispatch worker did

    def token(self, *roles: str, program: str | None = None) -> dict[str, str]:
        token = issue_token(self.settings, subject="scenario", roles=list(roles), program=program)
        return {"Authorization": f"Bearer {token}"}

    def notifications(self, channel: str) -> list[dict[str, Any]]:
        base = self.sandbox.url("programs")
        response = requests.get(f"{base}/notifications", params={"channel": channel}, timeout=5)
        response.raise_for_status()
        body = response.json()
        return body["items"] if isinstance(body, dict) else body


BACKENDS = [
    "embedded-sqlite",
    pytest.param("embedded-postgresql", marks=pytest.mark.postgres),
    pytest.param("amqp", marks=pytest.mark.amqp),  # RabbitMQ; the registry in SQLite
]


def _database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL emptied."""
    from sqlalchemy import create_engine, text

    from hub.dbschema import all_tables, upgrade_to_head

    if request.param != "embedded-postgresql":
        url = f"sqlite:///{(tmp_path / 'srhub.db').as_posix()}"
        upgrade_to_head(url)
        return url
    url = request.getfixturevalue("postgres_schema_ready")
    engine = create_engine(url)
    try:
        names = ", ".join(f'"{t.name}"' for t in all_tables())
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=BACKENDS)
def notify_hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifyHub]:
    db_url = _database(request, tmp_path)
    with ExitStack() as stack:
        amqp_url = delivery_url = None
        if request.param == "amqp":
            amqp_url = stack.enter_context(own_amqp_vhost(amqp_url_or_skip()))
        elif os.environ.get(AMQP_ENV) or in_ci():
            # Embedded hub: AMQP subscribers consume on the operator's RabbitMQ.
            delivery_url = stack.enter_context(own_amqp_vhost(amqp_url_or_skip()))
        subscriber_url = amqp_url or delivery_url
        if subscriber_url:
            # The MIS mock consumes the subscription's queue; declare it before the mock starts
            # so its consumer attaches at once instead of backing off.
            with connect(subscriber_url, wait_for=10) as broker:
                broker.declare_topology([service.delivery_queue(AMQP_CODE)])
        sandbox = start_sandbox(
            SandboxConfig(
                people=PEOPLE,
                seed=42,
                ports=dict.fromkeys(("national_id", "civil_registry", "tax", "gis", "programs"), 0),
                work_dir=tmp_path / "sandbox",
                tax_interval_seconds=0,
                tax_drop_on_start=False,
                amqp_url=subscriber_url,
                amqp_queue=service.delivery_queue(AMQP_CODE).name,
            )
        )
        stack.callback(sandbox.stop)
        settings = load_settings(
            env={},
            database_url=db_url,
            data_dir=tmp_path / "var",
            sandbox=False,
            amqp_url=amqp_url or "",
            delivery_amqp_url=delivery_url or "",
            outbound={"allow_hosts": ["127.0.0.1"]},  # the program MIS runs on loopback
        )
        runtime = HubRuntime(settings)
        stack.callback(runtime.close)
        runtime.registry.ensure_identifier_systems()
        assert seed_registry(runtime.registry, sandbox.households) > 20
        configs = sandbox.connectors()
        for config in configs.values():
            config["resilience"] = dict(FAST_RESILIENCE)
        app = create_app(settings, runtime)
        host = ConnectorHost(settings, runtime.engine).build(configs)
        host.mount(app)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        url = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        stack.callback(server.shutdown)
        consumer = ConsumerRuntime(
            "ingest",
            INGEST_QUEUE,
            lambda: connect(settings, wait_for=0),
            runtime.sessions,
            ingest_handlers(runtime, default_routes(), connectors=host.connector),
            retry=RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.2, jitter=0.05),
            receive_timeout=0.1,
        )
        thread = threading.Thread(target=consumer.run, daemon=True)
        thread.start()
        stack.callback(thread.join, 20)
        stack.callback(consumer.stop)
        outcomes = OutcomeCounter()
        stack.enter_context(notification_workers(settings, runtime, outcomes=outcomes))
        host.start()
        stack.callback(host.stop)
        host.after_serving(url)
        yield NotifyHub(
            url, runtime, sandbox, settings, bool(subscriber_url), subscriber_url, outcomes
        )


def _registered(hub: NotifyHub, person: Any) -> dict[str, Any] | None:
    if not person.national_id:
        return None
    return hub.runtime.registry.find_person_by_identifier("national_id", person.national_id)


def _first_registered_death(hub: NotifyHub) -> tuple[Any, dict[str, Any]]:
    events = iter_vital_events(42, PEOPLE, START, 365, as_of=START)
    deaths = sorted((e for e in events if e.kind == "death"), key=lambda e: e.registration_date)
    for event in deaths:
        found = _registered(hub, event.person)
        if found:
            return event, found
    pytest.fail("the sandbox population has no registered person dying this year")


def _diagnosis(hub: NotifyHub, person_id: str, channel: str) -> str:
    """What went where, for a failure message."""
    from sqlalchemy import select

    from hub.subscriptions.tables import DeliveryAttempt
    from registry_core.models import OutboxEvent

    with hub.runtime.sessions() as session:
        died = session.scalars(
            select(OutboxEvent.subject, OutboxEvent.published_at).where(
                OutboxEvent.routing_key == "person.died"
            )
        ).all()
        log = session.execute(
            select(DeliveryAttempt.subscription_code, DeliveryAttempt.status)
        ).all()
    person = hub.runtime.registry.get_person(person_id)
    outcomes = hub.dispatch_outcomes
    return (
        f"{channel}: nothing about the person arrived; deceased={person['is_deceased']}, "
        f"person.died rows={list(died)}, delivery log={list(log)}, "
        f"dispatch outcomes={dict(outcomes.outcomes) if outcomes else {}}, "
        f"mis counts={[n.get('label') for n in hub.notifications(channel)]}"
    )


def _timeline(hub: NotifyHub, person_id: str, started: float, with_pushes: bool = False) -> str:
    """When the death entered the registry's outbox and was delivered, from the clock move."""
    from sqlalchemy import select

    from hub.subscriptions.tables import DeliveryAttempt
    from registry_core.models import OutboxEvent

    with hub.runtime.sessions() as session:
        row = session.scalar(
            select(OutboxEvent).where(
                OutboxEvent.subject == f"person/{person_id}",
                OutboxEvent.routing_key == "person.died",
            )
        )
        log = session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.event_id == row.event_id)
        ).all()
    parts = [f"outbox +{row.time.timestamp() - started:.2f}s"]
    parts += [
        f"{a.subscription_code} {a.status} +{a.started_at.timestamp() - started:.2f}s" for a in log
    ]
    text = "timeline: " + ", ".join(parts)
    if with_pushes:  # the civil registry's own log of what it pushed to the hub, and when
        pushes = requests.get(
            f"{hub.sandbox.url('civil_registry')}/_admin/deliveries",
            params={"limit": 5},
            timeout=5,
        ).json()
        text += f"\ncivil registry pushes: {pushes}"[:3000]
    return text


def _advance(hub: NotifyHub, days: int) -> None:
    if days <= 0:
        return
    response = requests.post(
        f"{hub.sandbox.url('civil_registry')}/_admin/clock/advance",
        json={"days": days},
        timeout=10,
    )
    assert response.ok, response.text


def _wait_quiet(hub: NotifyHub, quiet_for: float = 0.6, timeout: float = 60.0) -> None:
    """Until nothing is pending: the inbound and dispatch queues empty and the outbox relayed."""
    from sqlalchemy import func, select

    from hub.broker import QUEUE_INGEST
    from hub.workers.topology import QUEUE_DISPATCH
    from registry_core.models import OutboxEvent

    def idle() -> bool:
        with connect(hub.settings, wait_for=5) as broker:
            depths = [broker.queue_depth(q) for q in (QUEUE_INGEST, QUEUE_DISPATCH)]
        with hub.runtime.sessions() as session:
            unpublished = session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
        return not any(depths) and not unpublished

    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        if idle():
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet_for:
                return
        else:
            calm_since = None
        time.sleep(0.2)
    pytest.fail("the hub did not settle within 60 s")


def _subscribe(hub: NotifyHub, program: str, body: dict[str, Any]) -> None:
    response = requests.post(
        f"{hub.url}/api/v1/subscriptions",
        json=body,
        headers=hub.token("program", program=program),
        timeout=10,
    )
    assert response.status_code == 201, response.text


@pytest.mark.slow
def test_a_registered_death_reaches_the_program_once_by_each_channel_within_5s(notify_hub):
    hub = notify_hub
    mis = hub.sandbox.connectors()["programs"]
    death, person = _first_registered_death(hub)
    hub.runtime.registry.grant_consent(
        "cash", "cash_transfer", "paper", Source("registry_staff"), person_id=person["id"]
    )
    common = {"event_types": ["person.died"], "purpose": "cash_transfer"}
    _subscribe(
        hub,
        "cash",
        {
            "code": "mis-deaths-hook",
            "channel": "webhook",
            "target": mis["webhook_url"] + "/cash",
            "secret": mis["webhook_secret"],
            **common,
        },
    )
    _subscribe(
        hub,
        "nutri",  # no consent: must learn nothing personal
        {
            "code": "nutri-deaths",
            "channel": "webhook",
            "target": mis["webhook_url"] + "/nutri",
            "secret": mis["webhook_secret"],
            **common,
        },
    )
    if hub.amqp:
        _subscribe(hub, "cash", {"code": AMQP_CODE, "channel": "amqp", **common})
        # no consent, by AMQP: must learn nothing personal either
        _subscribe(hub, "nutri", {"code": NUTRI_AMQP_CODE, "channel": "amqp", **common})
    time.sleep(0.5)  # delivery workers pick the new subscriptions up

    # Register everything before that day first and let the hub absorb it, so the clock
    # measures this one death, not a year's backlog of births.
    _advance(hub, (death.registration_date - START).days - 1)
    _wait_quiet(hub)
    started = time.monotonic()
    started_wall = time.time()
    _advance(hub, 1)

    def about_person(channel: str, label: str | None = None) -> list[dict[str, Any]]:
        return [
            n
            for n in hub.notifications(channel)
            if (label is None or n.get("label") == label)
            and ((n.get("json") or {}).get("data") or {}).get("person_id") == person["id"]
        ]

    nutri_ref = opaque_ref(hub.runtime.keys.identifier_hmac_key, "nutri", f"person/{person['id']}")
    nutri_amqp: list[dict[str, Any]] = []

    def nutri_amqp_about_person() -> list[dict[str, Any]]:
        nutri_amqp.extend(_drain(hub.subscriber_amqp_url, NUTRI_AMQP_CODE))
        return [m for m in nutri_amqp if m["json"]["data"].get("subject_ref") == nutri_ref]

    channels = [("webhook", "cash")] + ([("amqp", None)] if hub.amqp else [])
    arrival = {}
    for channel, label in channels:
        try:
            wait_for(lambda c=channel, lb=label: about_person(c, lb), timeout=15, what=channel)
        except AssertionError:
            raise AssertionError(_diagnosis(hub, person["id"], channel)) from None
        arrival[channel] = time.monotonic() - started
    if hub.amqp:
        wait_for(nutri_amqp_about_person, timeout=15, what="amqp without consent")
        arrival["amqp (no consent)"] = time.monotonic() - started
    print(f"\ndeath -> program MIS: {', '.join(f'{k} {v:.2f}s' for k, v in arrival.items())}")
    print(_timeline(hub, person["id"], started_wall))
    assert all(seconds < 5.0 for seconds in arrival.values()), _timeline(
        hub, person["id"], started_wall, with_pushes=True
    )
    time.sleep(0.7)  # a duplicate would show up now

    national_id = next(i["value"] for i in person["identifiers"] if i["system"] == "national_id")
    for channel, label in channels:
        [got] = about_person(channel, label)  # exactly once
        event = got["json"]
        assert event["type"] == "org.socialregistry.person.died"
        assert event["data"]["death_date"] == death.event_date.isoformat()
        ids = {i["system"]: i["value"] for i in event["data"]["person"]["identifiers"]}
        assert ids["national_id"] == national_id
        if channel == "webhook":
            assert got["signature"]["verified"] is True

    nutri = [n for n in hub.notifications("webhook") if n.get("label") == "nutri"]
    assert nutri, "the program without consent still hears that a death happened"
    if hub.amqp:
        assert len(nutri_amqp_about_person()) == 1  # exactly once, and nothing personal:
        nutri += nutri_amqp
    for entry in nutri:
        text = entry["body"]
        assert entry["json"]["srpersonal"] is False
        for value in (person["id"], national_id, person["given_name"], person["family_name"]):
            assert value not in text


def _drain(url: str | None, code: str) -> list[dict[str, Any]]:
    """Take every message waiting in a subscription's queue on the subscribers' RabbitMQ."""
    import pika

    assert url
    got = []
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(
                service.delivery_queue(code).name, auto_ack=True
            )
            if method is None:
                return got
            text = body.decode()
            got.append({"body": text, "json": json.loads(text), "headers": properties.headers})
    finally:
        connection.close()
