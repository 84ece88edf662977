"""The staff dashboard over real HTTP (werkzeug on a free port), on SQLite and PostgreSQL with
the embedded broker in the same database: login (password and token), CSRF, connector buttons,
the dead-letter browser's groups and replay/discard, and the audit trail's pagination.

The helpers here (``running_dashboard``, ``make_dead_letters``) are reused by the headless
browser test in ``test_dashboard_browser.py``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, insert, select, text
from werkzeug.serving import make_server

from connectors.base import ConnectorContext, PullConnector
from connectors.base.records import PollResult
from hub.api import create_app
from hub.auth.flask_auth import undeclared_endpoints
from hub.auth.tokens import issue_token
from hub.broker import connect
from hub.broker.base import EXCHANGE_INBOUND, QUEUE_DEAD, QUEUE_INGEST, DeadLetterReason, Message
from hub.cli import main
from hub.connectors_host import ConnectorHost
from hub.runtime import HubRuntime
from hub.settings import Settings, load_settings
from hub.ui.security import session_secret
from hub.ui.tables import UiAudit
from hub.workers.status import WorkerStatus
from hub.workers.topology import WORKER_QUEUES

CONNECTOR = "fake_partner"
PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class FakePartner(PullConnector):
    """A pull connector with nothing to fetch; counts its polls so a test sees a sync run."""

    name: ClassVar[str] = "fake_partner"
    kind: ClassVar[str] = "fake"

    def __init__(self, settings: Any, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.polls = 0
        self.polled = threading.Event()

    def poll(self, checkpoint: Any | None) -> PollResult:
        self.polls += 1
        self.polled.set()
        return PollResult(records=[], next_checkpoint=int(checkpoint or 0) + 1)


@dataclass
class DashboardHub:
    settings: Settings
    runtime: HubRuntime
    app: Flask
    host: ConnectorHost
    url: str

    @property
    def partner(self) -> FakePartner:
        found = self.host.connectors[CONNECTOR]
        assert isinstance(found, FakePartner)
        return found

    def depth(self, queue: str) -> int:
        with connect(self.settings, wait_for=5) as broker:
            return int(broker.queue_depth(queue))

    def audit_rows(self) -> list[UiAudit]:
        with self.runtime.sessions() as db:
            return list(db.scalars(select(UiAudit).order_by(UiAudit.id)))


@contextmanager
def running_dashboard(
    db_url: str, data_dir: Path, env: dict[str, str] | None = None
) -> Iterator[DashboardHub]:
    """The hub's app with one fake pull connector, served over loopback on a free port;
    ``env`` holds extra ``SRHUB_*`` settings."""
    settings = load_settings(env=env or {}, data_dir=data_dir, database_url=db_url, sandbox=False)
    runtime = HubRuntime(settings)
    app = create_app(settings, runtime)
    host = ConnectorHost(settings, runtime.engine)
    context = ConnectorContext(
        name=CONNECTOR,
        publisher=host.publisher,
        checkpoints=host.checkpoints,
        seen_files=host.seen_files,
    )
    host.connectors[CONNECTOR] = FakePartner({"poll_interval_seconds": 3600}, context)
    host.start()
    host.mount(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield DashboardHub(settings, runtime, app, host, f"http://127.0.0.1:{server.port}")
    finally:
        server.shutdown()
        thread.join(10)
        host.stop()
        runtime.close()


def make_dead_letters(
    settings: Settings, count: int, error_class: str, reason: str = "field 'birth_date' missing"
) -> list[str]:
    """Dead-letter ``count`` raw records through the broker API, as the ingest worker would."""
    ids = [f"dl-{uuid.uuid4().hex}" for _ in range(count)]
    now = datetime.now(UTC)
    with connect(settings, wait_for=5) as broker:
        broker.declare_topology(list(WORKER_QUEUES))
        broker.publish(
            EXCHANGE_INBOUND,
            [Message(b'{"not": "a cloudevent"}', f"{CONNECTOR}.person", i) for i in ids],
        )
        consumer = broker.open_consumer(QUEUE_INGEST, prefetch=count)
        try:
            for _ in ids:
                delivery = consumer.receive(5)
                assert delivery is not None, "the published record did not reach sr.ingest"
                consumer.dead_letter(delivery, DeadLetterReason(error_class, reason, 3, now, now))
        finally:
            consumer.close()
    return ids


def wait_until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def add_user(settings: Settings, username: str, role: str = "registry_staff") -> None:
    result = CliRunner().invoke(
        main,
        ["users", "add", username, "--role", role, "--password-stdin"],
        input=PASSWORD + "\n",
        env={"SRHUB_DATABASE_URL": settings.database_url, "SRHUB_DATA_DIR": str(settings.data_dir)},
    )
    assert result.exit_code == 0, result.output


def csrf(page: str) -> str:
    found = CSRF_RE.search(page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def login_session(hub: DashboardHub, username: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{hub.url}/ui/login", timeout=10)
    answer = browser.post(
        f"{hub.url}/ui/login",
        data={
            "csrf_token": csrf(form.text),
            "method": "password",
            "username": username,
            "password": PASSWORD,
            "next": "/",
        },
        timeout=10,
    )
    assert answer.status_code == 200 and 'id="connectors"' in answer.text, answer.text[:500]
    return browser


@pytest.fixture
def hub(db_url: str, tmp_path: Path) -> Iterator[DashboardHub]:
    with running_dashboard(db_url, tmp_path) as running:
        yield running


# --- tests -------------------------------------------------------------------------------------


def test_every_view_declares_access_and_pages_send_strangers_to_login(hub: DashboardHub) -> None:
    assert undeclared_endpoints(hub.app) == []
    answer = requests.get(f"{hub.url}/ui/dead-letters", allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/ui/login?next=/ui/dead-letters")
    refused = requests.post(f"{hub.url}/ui/connectors/{CONNECTOR}/pause", timeout=10)
    assert refused.status_code == 401
    assert not hub.partner.status.paused


def test_password_login_needs_csrf_and_a_right_password_and_ends_when_disabled(
    hub: DashboardHub,
) -> None:
    add_user(hub.settings, "amina")
    browser = requests.Session()
    form = browser.get(f"{hub.url}/ui/login", timeout=10)
    assert form.headers["Content-Security-Policy"].startswith("default-src 'none'")

    no_csrf = browser.post(
        f"{hub.url}/ui/login",
        data={"method": "password", "username": "amina", "password": PASSWORD},
        timeout=10,
    )
    assert no_csrf.status_code == 400
    wrong = browser.post(
        f"{hub.url}/ui/login",
        data={
            "csrf_token": csrf(form.text),
            "method": "password",
            "username": "amina",
            "password": "not the password at all",
        },
        timeout=10,
    )
    assert wrong.status_code == 401 and "unknown user or wrong password" in wrong.text

    good = browser.post(
        f"{hub.url}/ui/login",
        data={
            "csrf_token": csrf(form.text),
            "method": "password",
            "username": "amina",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert good.status_code == 302 and good.headers["Location"] == "/"
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert browser.get(f"{hub.url}/", timeout=10).status_code == 200

    actions = [(r.actor, r.action, r.target) for r in hub.audit_rows()]
    assert ("anonymous", "login_failed", "amina") in actions
    assert ("amina", "login", "amina") in actions

    result = CliRunner().invoke(
        main,
        ["users", "disable", "amina"],
        env={
            "SRHUB_DATABASE_URL": hub.settings.database_url,
            "SRHUB_DATA_DIR": str(hub.settings.data_dir),
        },
    )
    assert result.exit_code == 0, result.output
    after = browser.get(f"{hub.url}/", allow_redirects=False, timeout=10)
    assert after.status_code == 302 and "/ui/login" in after.headers["Location"]


def test_token_login_admits_staff_roles_only(hub: DashboardHub) -> None:
    browser = requests.Session()
    form = browser.get(f"{hub.url}/ui/login", timeout=10).text
    program = issue_token(hub.settings, subject="mis", roles=["program"], program="CT-OVC")
    refused = browser.post(
        f"{hub.url}/ui/login",
        data={"csrf_token": csrf(form), "method": "token", "token": program},
        timeout=10,
    )
    assert refused.status_code == 401 and "no dashboard role" in refused.text
    staff = issue_token(hub.settings, subject="officer-7", roles=["registry_staff"])
    admitted = browser.post(
        f"{hub.url}/ui/login",
        data={"csrf_token": csrf(form), "method": "token", "token": staff},
        timeout=10,
    )
    assert admitted.status_code == 200 and "token:officer-7" in admitted.text
    # the session cookie is not signed with the raw JWT secret
    assert session_secret(hub.runtime.keys.jwt_secret) != hub.runtime.keys.jwt_secret
    assert hub.app.secret_key == session_secret(hub.runtime.keys.jwt_secret)


def test_pause_resume_and_sync_buttons_drive_the_runner_and_are_audited(
    hub: DashboardHub,
) -> None:
    add_user(hub.settings, "officer")
    browser = login_session(hub, "officer")
    assert hub.partner.polled.wait(10), "the runner never polled"
    page = browser.get(f"{hub.url}/ui/connectors/{CONNECTOR}", timeout=10)
    assert page.status_code == 200 and 'id="connector-state"' in page.text

    def press(action: str) -> str:
        answer = browser.post(
            f"{hub.url}/ui/connectors/{CONNECTOR}/{action}",
            data={"csrf_token": csrf(page.text)},
            timeout=10,
        )
        assert answer.status_code == 200
        return answer.text

    assert "paused" in press("pause")
    assert hub.partner.status.paused and hub.partner.status.state == "paused"
    polls = hub.partner.polls
    assert "resume it first" in press("sync")
    assert hub.partner.polls == polls
    press("resume")
    assert not hub.partner.status.paused
    wait_until(lambda: hub.partner.polls > polls, "resume did not wake the runner")
    settled = hub.partner.polls  # the poll interval is an hour: only a sync polls again
    press("sync")
    wait_until(lambda: hub.partner.polls > settled, "trigger sync did not run a poll")

    outcomes = [(r.action, r.outcome) for r in hub.audit_rows() if r.target == CONNECTOR]
    assert ("connector_pause", "paused") in outcomes
    assert ("connector_sync", "refused: the connector is paused; resume it first") in outcomes
    assert ("connector_resume", "resumed") in outcomes
    assert ("connector_sync", "sync started") in outcomes
    refused = browser.post(f"{hub.url}/ui/connectors/{CONNECTOR}/pause", data={}, timeout=10)
    assert refused.status_code == 400  # no CSRF token


def test_dead_letter_browser_groups_and_replays_and_discards(hub: DashboardHub) -> None:
    add_user(hub.settings, "officer")
    browser = login_session(hub, "officer")
    schema_ids = make_dead_letters(hub.settings, 3, "SchemaViolation")
    make_dead_letters(hub.settings, 2, "MappingError", "unknown gender code 'Q'")
    page = browser.get(f"{hub.url}/ui/dead-letters", timeout=10).text
    assert '<span id="dead-letter-count">5</span>' in page
    groups = dict(
        re.findall(r'data-error-class="([^"]+)">.*?class="num group-count">(\d+)<', page, re.S)
    )
    assert groups == {"SchemaViolation": "3", "MappingError": "2"}
    connector_page = browser.get(f"{hub.url}/ui/connectors/{CONNECTOR}", timeout=10).text
    assert schema_ids[0] in connector_page and "unknown gender code" in connector_page

    token = csrf(page)
    ingest_before = hub.depth(QUEUE_INGEST)
    single = browser.post(
        f"{hub.url}/ui/dead-letters/replay",
        data={"csrf_token": token, "message_id": schema_ids[0]},
        timeout=10,
    )
    assert "Replayed 1 dead letter." in single.text
    assert hub.depth(QUEUE_DEAD) == 4 and hub.depth(QUEUE_INGEST) == ingest_before + 1

    bulk = browser.post(
        f"{hub.url}/ui/dead-letters/discard",
        data={"csrf_token": token, "error_class": "MappingError"},
        timeout=10,
    )
    assert "Discarded 2 dead letters." in bulk.text
    assert hub.depth(QUEUE_DEAD) == 2 and hub.depth(QUEUE_INGEST) == ingest_before + 1
    browser.post(
        f"{hub.url}/ui/dead-letters/replay",
        data={"csrf_token": token, "error_class": "SchemaViolation"},
        timeout=10,
    )
    assert hub.depth(QUEUE_DEAD) == 0 and hub.depth(QUEUE_INGEST) == ingest_before + 3

    trail = browser.get(f"{hub.url}/ui/audit?actor=officer", timeout=10).text
    for expected in (
        "dead_letter_replay",
        "dead_letter_discard",
        "error_class=MappingError",
        "discarded 2",
        "replayed 2",
        schema_ids[0],
    ):
        assert expected in trail


def test_audit_trail_pages_by_keyset_without_gaps_or_repeats(hub: DashboardHub) -> None:
    add_user(hub.settings, "officer")
    browser = login_session(hub, "officer")
    now = datetime.now(UTC)
    with hub.runtime.sessions() as db, db.begin():
        db.execute(
            insert(UiAudit),
            [
                {"at": now, "actor": "bulk", "action": "test", "target": f"t{i}", "outcome": ""}
                for i in range(120)
            ],
        )
    seen: list[str] = []
    url = f"{hub.url}/ui/audit?actor=bulk"
    pages = 0
    while url:
        page = browser.get(url, timeout=10).text
        pages += 1
        seen += re.findall(r"<td>test</td><td>(t\d+)</td>", page)
        older = re.search(r'href="(/ui/audit\?[^"]+)">Older', page)
        url = f"{hub.url}{older.group(1).replace('&amp;', '&')}" if older else ""
    assert pages == 3
    assert seen == [f"t{i}" for i in range(119, -1, -1)]
    bad = browser.get(f"{hub.url}/ui/audit?before=abc", timeout=10)
    assert bad.status_code == 400 and "whole number" in bad.text


def test_audit_queries_use_their_indexes(db_engine: Any) -> None:
    """The filtered pages are index range scans, not table scans (SQLite's planner says so;
    PostgreSQL's planner picks by statistics, so only SQLite is asserted)."""
    if db_engine.dialect.name != "sqlite":
        pytest.skip("query plans asserted on SQLite only")
    with db_engine.connect() as conn:
        for column, index in (
            ("actor", "ix_ui_audit_actor_id"),
            ("target", "ix_ui_audit_target_id"),
        ):
            plan = conn.execute(
                text(
                    f"EXPLAIN QUERY PLAN SELECT * FROM ui_audit WHERE {column} = 'x' "  # noqa: S608
                    "AND id < 100 ORDER BY id DESC LIMIT 51"
                )
            ).all()
            assert index in " ".join(str(row) for row in plan)
        count = conn.execute(select(func.count()).select_from(UiAudit)).scalar_one()
        assert count == 0


def test_overview_and_connector_pages_show_subscriptions_and_the_message_log(
    hub: DashboardHub,
) -> None:
    from hub.monitoring.alerts import Alert
    from hub.monitoring.message_log import MessageLogEntry
    from hub.subscriptions.tables import DeliveryAttempt, Subscription

    add_user(hub.settings, "officer")
    browser = login_session(hub, "officer")
    now = datetime.now(UTC)
    with hub.runtime.sessions() as db, db.begin():
        db.add(
            Subscription(
                code="ct-ovc-births",
                program_code="CT-OVC",
                event_types=["person.#"],
                filters={},
                channel="webhook",
                target="http://127.0.0.1:9/hook",
                purpose="enrolment",
                status="paused",
            )
        )
        db.add(
            DeliveryAttempt(
                subscription_code="ct-ovc-births",
                event_id="e1",
                event_type="x",
                status="failed",
                error="HTTP 503 from subscriber",
                started_at=now,
            )
        )
        db.execute(
            insert(MessageLogEntry),
            [
                {
                    "direction": "in",
                    "connector": CONNECTOR,
                    "message_id": f"m{i}",
                    "size": 10,
                    "status": "failed" if i % 3 == 0 else "applied",
                    "error": "SchemaViolation" if i % 3 == 0 else None,
                    "started_at": now,
                }
                for i in range(90)
            ],
        )
    worker = WorkerStatus("ingest")
    worker.set_state("retrying", "broker unreachable")
    worker.record_error(ConnectionError("broker gone"))

    class Group:
        def statuses(self) -> dict[str, Any]:
            return {"ingest": worker.snapshot()}

    hub.app.extensions["srhub_workers"] = Group()
    began = datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)
    with hub.runtime.sessions() as db, db.begin():
        db.add(
            Alert(
                rule="connector_down",
                subject=f"connector:{CONNECTOR}",
                state="firing",
                severity="critical",
                summary="circuit open for 5 minutes",
                began_at=began,
            )
        )
    overview = browser.get(f"{hub.url}/", timeout=10).text
    workers = re.search(r'<table class="grid" id="workers">.*?</table>', overview, re.S)
    assert workers and "ConnectionError: broker gone" in workers.group(0)
    assert 'class="state warn">retrying' in workers.group(0)
    alerts = re.search(r'<table class="grid" id="alerts">.*?</table>', overview, re.S)
    assert alerts and "circuit open for 5 minutes" in alerts.group(0)
    assert "2026-11-26 01:02:03" in alerts.group(0) and "still firing" in alerts.group(0)
    row = re.search(r"<tr><td>ct-ovc-births</td>.*?</tr>", overview, re.S)
    assert row, "the subscription is not listed"
    assert 'class="state paused"' in row.group(0) and 'class="state bad">failed' in row.group(0)
    assert "HTTP 503 from subscriber" in row.group(0)
    assert "Messages per minute" in overview and "<svg" in overview and "<script" not in overview

    url = f"{hub.url}/ui/connectors/{CONNECTOR}?status=failed"
    seen: list[str] = []
    pages = 0
    while url:
        page = browser.get(url, timeout=10).text
        pages += 1
        seen += re.findall(r"<code>(m\d+)</code>", page)
        older = re.search(r'href="(/ui/connectors/[^"#]+)#message-log">Older', page)
        url = f"{hub.url}{older.group(1).replace('&amp;', '&')}" if older else ""
    assert pages == 2 and seen == [f"m{i}" for i in range(87, -1, -3)]
    bad = browser.get(f"{hub.url}/ui/connectors/{CONNECTOR}?status=nonsense", timeout=10)
    assert bad.status_code == 400
