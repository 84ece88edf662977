"""The connector contract end to end, over real HTTP and real databases.

A tiny example pull connector reads a feed from a werkzeug server on a loopback port that can
be told to fail, hang or recover. With checkpoints in SQLite and PostgreSQL (``db_engine``)
the tests check what the issue promises for a partner that is down or slow: retried, circuit
opened, status visible, resumed later from the checkpoint, nothing lost. Then the drop folder
(complete vs incomplete files, duplicates, rejected archive with reason), push webhooks behind
the hub's deny-by-default auth marker, plugin discovery and settings validation.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Blueprint, Flask, Response, request
from sqlalchemy.engine import Engine
from werkzeug.serving import WSGIRequestHandler, make_server

from connectors.base import (
    Connector,
    ConnectorContext,
    ConnectorNotFound,
    FakeClock,
    FileConnector,
    FileDropRunner,
    FileRejected,
    FileReport,
    InMemoryCheckpointStore,
    LookupConnector,
    Mode,
    NotAttempted,
    PollResult,
    PublishFailed,
    PullConnector,
    PullRunner,
    PushConnector,
    RawRecord,
    SettingsError,
    TransientPartnerError,
    connector_settings_schema,
    create_connector,
    iter_lines,
    load_connector_class,
    load_connectors,
    raw_event,
    routing_key,
    signed_webhook,
    verify_hmac_sha256,
)
from connectors.base import registry as connector_registry
from connectors.base.clock import Deadline
from connectors.base.envelope import payload_of
from connectors.base.resilience import PartnerLimiters
from connectors.base.testing import BatchCollectingPublisher, CollectingPublisher
from connectors.base.webhooks import hmac_sha256_hex, mount_prefix
from hub.checkpoints import SqlCheckpointStore, SqlSeenFileStore

# --- a partner feed over real HTTP ------------------------------------------------------------


class FeedState:
    """What the fake partner serves and how it misbehaves; shared with the server thread."""

    def __init__(self, count: int) -> None:
        self.lock = threading.Lock()
        self.count = count
        self.fail_next = 0  # answer 503 to the next N requests
        self.down = False  # answer 503 to every request
        self.hang_seconds = 0.0  # sleep before answering (a slow partner)
        self.requests: list[int] = []  # the ``after`` cursor of every request that got data
        self.hits = 0

    def add(self, n: int) -> None:
        with self.lock:
            self.count += n


def feed_app(state: FeedState) -> Flask:
    app = Flask("partner_feed")

    @app.get("/api/records")
    def records() -> Response:
        with state.lock:
            state.hits += 1
            hang = state.hang_seconds
            failing = state.down or state.fail_next > 0
            if state.fail_next > 0:
                state.fail_next -= 1
        if hang:
            time.sleep(hang)
        if failing:
            return Response("busy", status=503, headers={"Retry-After": "1"})
        after = int(request.args.get("after", "0"))
        limit = int(request.args.get("limit", "10"))
        with state.lock:
            state.requests.append(after)
            last = min(state.count, after + limit)
            total = state.count
        items = [{"id": i, "household": f"HH-{i:04d}"} for i in range(after + 1, last + 1)]
        return Response(
            json.dumps({"records": items, "next": last, "more": last < total}),
            mimetype="application/json",
        )

    @app.get("/api/drip")
    def drip() -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(20):
                time.sleep(0.1)
                yield b"x" * 10

        return Response(chunks(), mimetype="application/octet-stream")

    return app


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def feed() -> Iterator[tuple[FeedState, str]]:
    state = FeedState(12)
    for url in serve(feed_app(state)):
        yield state, url


# --- the example connectors -------------------------------------------------------------------


class ExampleFeedConnector(PullConnector):
    """Pages through ``/api/records?after=<id>``; the checkpoint is the last id published."""

    name = "example_feed"
    kind = "example"
    settings_schema = connector_settings_schema(
        {
            "base_url": {"type": "string", "pattern": "^https?://"},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 500, "default": 5},
            "api_key": {"type": "string", "minLength": 8},
        },
        required=("base_url",),
    )

    def __init__(self, settings: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.client = self.http(self.settings["base_url"] + "/api/")

    def poll(self, checkpoint: Any | None) -> PollResult:
        after = int(checkpoint or 0)
        page = self.client.get_json(
            "records", params={"after": after, "limit": self.settings["page_size"]}
        )
        records = [
            RawRecord("household", item, source_id=str(item["id"])) for item in page["records"]
        ]
        return PollResult(records, next_checkpoint=page["next"], more=page["more"])


class Collector(CollectingPublisher):
    def ids(self) -> list[int]:
        return [int(source_id) for source_id in self.source_ids()]


RESILIENCE = {
    "timeout_seconds": 2,
    "max_attempts": 3,
    "initial_backoff_seconds": 0.5,
    "jitter_seconds": 0.1,
    "failure_threshold": 3,
    "cooldown_seconds": 60,
}


def make_feed(
    url: str, store: Any, publisher: Collector, clock: FakeClock, **settings: Any
) -> tuple[ExampleFeedConnector, PullRunner]:
    context = ConnectorContext(
        "example_feed",
        publisher,
        checkpoints=store,
        clock=clock,
        limiters=PartnerLimiters(clock),
    )
    connector = ExampleFeedConnector(
        {"base_url": url, "resilience": RESILIENCE, **settings}, context
    )
    return connector, PullRunner(connector, interval=60)


# --- pull: down or slow partner, breaker, status, checkpoint, restart -------------------------


def test_partner_down_then_back_resumes_from_checkpoint_and_loses_nothing(
    feed: tuple[FeedState, str], db_engine: Engine
) -> None:
    state, url = feed
    clock = FakeClock()
    publisher = Collector()
    connector, runner = make_feed(url, SqlCheckpointStore(db_engine), publisher, clock)

    # 1. Two failures, then the partner answers: retried inside one run, all 12 published.
    state.fail_next = 2
    outcome = runner.run_once()
    assert outcome.error is None
    assert publisher.ids() == list(range(1, 13))
    assert outcome.pages == 3  # 5 + 5 + 2
    assert SqlCheckpointStore(db_engine).load("example_feed") == 12
    status = connector.status.snapshot()
    assert status["counts"]["retries"] == 2
    assert status["state"] == "up"
    assert clock.sleeps and all(s >= 1.0 for s in clock.sleeps)  # Retry-After: 1 honoured

    # 2. New records appear, but the partner goes down: 3 attempts, breaker opens.
    state.add(9)
    state.down = True
    hits_before = state.hits
    outcome = runner.run_once()
    assert outcome.error is not None and "http_503" in outcome.error
    assert state.hits - hits_before == 3
    status = connector.status.snapshot()
    assert status["circuit"] == "open"
    assert status["state"] == "down"
    assert "http_503" in status["last_error"]
    assert "HH-" not in json.dumps(status)  # no partner data in the status
    assert SqlCheckpointStore(db_engine).load("example_feed") == 12  # not advanced

    # While open, runs do not call the partner at all.
    hits_before = state.hits
    outcome = runner.run_once()
    assert "circuit_open" in (outcome.error or "")
    assert state.hits == hits_before

    # 3. Restart (new engine-backed store, connector, breaker) after the partner recovers:
    #    resumes at the saved checkpoint.
    state.down = False
    publisher_after = Collector()
    requests_before = len(state.requests)
    restarted, runner2 = make_feed(url, SqlCheckpointStore(db_engine), publisher_after, clock)
    outcome = runner2.run_once()
    assert outcome.error is None
    assert state.requests[requests_before] == 12  # first request after restart: after=12
    assert publisher_after.ids() == list(range(13, 22))
    assert SqlCheckpointStore(db_engine).load("example_feed") == 21
    assert sorted(set(publisher.ids() + publisher_after.ids())) == list(range(1, 22))
    assert restarted.status.snapshot()["state"] == "up"


def test_open_circuit_closes_after_cooldown_with_a_successful_trial(
    feed: tuple[FeedState, str],
) -> None:
    state, url = feed
    clock = FakeClock()
    publisher = Collector()
    connector, runner = make_feed(url, InMemoryCheckpointStore(), publisher, clock)
    state.down = True
    runner.run_once()
    assert connector.status.snapshot()["circuit"] == "open"
    state.down = False
    clock.advance(59)
    assert "circuit_open" in (runner.run_once().error or "")
    clock.advance(1.01)  # past the 60 s cool-down (float sums of jittered sleeps drift)
    outcome = runner.run_once()
    assert outcome.error is None
    assert publisher.ids() == list(range(1, 13))
    assert connector.status.snapshot()["circuit"] == "closed"


def test_slow_partner_times_out_and_is_retried(feed: tuple[FeedState, str]) -> None:
    state, url = feed
    clock = FakeClock()
    publisher = Collector()
    connector, runner = make_feed(
        url,
        InMemoryCheckpointStore(),
        publisher,
        clock,
        resilience={**RESILIENCE, "timeout_seconds": 0.3, "max_attempts": 2},
    )
    state.hang_seconds = 3.0
    started = time.monotonic()
    outcome = runner.run_once()
    elapsed = time.monotonic() - started
    assert outcome.error is not None and "timeout" in outcome.error
    assert elapsed < 2.5  # two attempts bounded at 0.3 s, not one 3 s hang
    assert connector.status.snapshot()["counts"]["calls"] == 2
    assert publisher.published == []
    state.hang_seconds = 0
    assert runner.run_once().error is None
    assert publisher.ids() == list(range(1, 13))


def test_publish_failure_does_not_advance_checkpoint(
    feed: tuple[FeedState, str], db_engine: Engine
) -> None:
    _, url = feed
    clock = FakeClock()
    publisher = Collector()
    publisher.fail_at = 8  # the broker fails in the middle of the second page
    store = SqlCheckpointStore(db_engine)
    _, runner = make_feed(url, store, publisher, clock)
    outcome = runner.run_once()
    assert outcome.error is not None and "publishing" in outcome.error
    assert store.load("example_feed") == 5  # first page done, second not
    assert runner.run_once().error is None
    ids = publisher.ids()
    assert sorted(set(ids)) == list(range(1, 13))  # nothing lost
    assert ids.count(6) == 2 and ids.count(7) == 2  # re-published: at least once
    # The copies carry the same message id, so the ingest side can drop them.
    envelopes = [raw_event(c, r, time=clock.now()) for c, r in publisher.published]
    by_source: dict[str, set[str]] = {}
    for event in envelopes:
        by_source.setdefault(event["data"]["source_id"], set()).add(event["id"])
    assert all(len(found) == 1 for found in by_source.values())
    assert store.load("example_feed") == 12


def test_pull_runner_thread_pauses_and_resumes(feed: tuple[FeedState, str]) -> None:
    state, url = feed
    publisher = Collector()
    context = ConnectorContext("example_feed", publisher, limiters=PartnerLimiters())
    connector = ExampleFeedConnector(
        {"base_url": url, "page_size": 50, "poll_interval_seconds": 0.05}, context
    )
    runner = PullRunner(connector)
    runner.pause()
    assert connector.status.snapshot()["state"] == "paused"
    runner.start()
    try:
        time.sleep(0.2)
        assert publisher.published == []
        runner.resume()
        deadline = time.monotonic() + 5
        while len(publisher.published) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        state.add(3)
        while len(publisher.published) < 15 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert publisher.ids() == list(range(1, 16))
    assert connector.status.snapshot()["counts"]["polls"] >= 2


def test_schedule_jitter_stays_within_bounds(feed: tuple[FeedState, str]) -> None:
    _, url = feed
    connector, _ = make_feed(url, InMemoryCheckpointStore(), Collector(), FakeClock())
    runner = PullRunner(connector, interval=100, jitter=0.2)
    delays = [runner.next_delay() for _ in range(200)]
    assert all(80 <= d <= 120 for d in delays)
    assert max(delays) - min(delays) > 10  # actually spread


# --- lookup with a deadline ----------------------------------------------------------------


class ExampleLookup(LookupConnector):
    name = "example_lookup"
    kind = "example"
    settings_schema = connector_settings_schema(
        {"base_url": {"type": "string"}}, required=("base_url",)
    )

    def lookup(self, request: Any, deadline: Deadline) -> Any:
        client = self.http(self.settings["base_url"] + "/api/")
        return client.get_json("records", params={"after": request, "limit": 1}, deadline=deadline)


def test_lookup_respects_its_deadline(feed: tuple[FeedState, str]) -> None:
    state, url = feed
    context = ConnectorContext("example_lookup", Collector(), limiters=PartnerLimiters())
    connector = ExampleLookup(
        {"base_url": url, "resilience": {"timeout_seconds": 5, "max_attempts": 5}}, context
    )
    assert connector.modes == frozenset({Mode.LOOKUP})
    assert connector.lookup_within(3, 2.0)["records"][0]["id"] == 4
    state.hang_seconds = 3.0
    started = time.monotonic()
    with pytest.raises((TransientPartnerError, NotAttempted)):
        connector.lookup_within(3, 0.5)
    assert time.monotonic() - started < 2.5  # the 0.5 s deadline, not the 5 s timeout


# --- file drop ------------------------------------------------------------------------------


class ExampleFileConnector(FileConnector):
    """``ID;HOUSEHOLD`` lines; a wrong header refuses the file, a bad line is one rejected row."""

    name = "example_files"
    kind = "example"

    def handle_file(self, path: Path, manifest: Mapping[str, Any] | None) -> FileReport:
        report = FileReport()
        lines = iter_lines(path)
        header = next(lines, None)
        if header is None or header.text != "ID;HOUSEHOLD":
            raise FileRejected("first line must be the header ID;HOUSEHOLD")
        with self.context.batch(size=2) as batch:
            for line in lines:
                if line.error:
                    report.reject_row(line.number, line.error)
                    continue
                fields = (line.text or "").split(";")
                if len(fields) != 2 or not fields[0].isdigit():
                    report.reject_row(
                        line.number, "expected 2 fields: a numeric ID and a household"
                    )
                    continue
                batch.add(
                    "income_row",
                    (line.text or "").encode("utf-8"),
                    source_id=f"{path.name}:{line.number}",
                    content_type="text/csv",
                )
                report.accepted += 1
        return report


def make_files(
    folder: Path, seen: Any, publisher: Collector, require_manifest: bool = False
) -> tuple[ExampleFileConnector, FileDropRunner]:
    context = ConnectorContext(
        "example_files", publisher, seen_files=seen, limiters=PartnerLimiters()
    )
    connector = ExampleFileConnector(
        {
            "drop": {
                "folder": str(folder),
                "patterns": ["*.csv"],
                "require_manifest": require_manifest,
            }
        },
        context,
    )
    return connector, FileDropRunner(connector)


def write_manifest(folder: Path, name: str, data: bytes, size: int | None = None) -> Path:
    manifest = {
        "file_name": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": size if size is not None else len(data),
    }
    path = folder / (name.rsplit(".", 1)[0] + ".manifest.json")
    path.write_text(json.dumps(manifest), "utf-8")
    return path


GOOD = b"ID;HOUSEHOLD\n1;HH-1\n2;HH-2\nbroken line\n3;HH-3\n"


def reason_of(folder: Path, name: str) -> dict[str, Any]:
    found = sorted((folder / "rejected").glob(f"*_{name}.reason.json"))
    assert found, f"no reason file for {name}"
    return json.loads(found[-1].read_text("utf-8"))


def test_drop_folder_stable_files_duplicates_and_rejections(
    tmp_path: Path, db_engine: Engine
) -> None:
    folder = tmp_path / "drop"
    publisher = Collector()
    seen = SqlSeenFileStore(db_engine)
    _, runner = make_files(folder, seen, publisher)

    (folder / "a.csv").write_bytes(GOOD)
    (folder / "notes.txt").write_text("not for us")
    (folder / "c.csv.part").write_bytes(b"ID;HOUSEHOLD\n")
    first = runner.run_once()
    assert first.processed == [] and "a.csv" in first.waiting  # not yet seen stable
    second = runner.run_once()
    assert second.processed == ["a.csv"]
    assert [r.source_id for _, r in publisher.published] == ["a.csv:2", "a.csv:3", "a.csv:5"]
    assert (folder / "notes.txt").exists() and (folder / "c.csv.part").exists()
    reports = list((folder / "processed").glob("*_a.csv.report.json"))
    report = json.loads(reports[0].read_text("utf-8"))
    assert report["accepted"] == 3
    assert report["rejected"] == [
        {"row": 4, "reason": "expected 2 fields: a numeric ID and a household"}
    ]
    assert report["sha256"] == hashlib.sha256(GOOD).hexdigest()
    assert not (folder / "a.csv").exists()

    # A growing file is waited for until it stops changing.
    growing = folder / "b.csv"
    growing.write_bytes(b"ID;HOUSEHOLD\n10;HH-10\n")
    assert "b.csv" in runner.run_once().waiting
    with growing.open("ab") as handle:
        handle.write(b"11;HH-11\n")
    assert "b.csv" in runner.run_once().waiting
    assert runner.run_once().processed == ["b.csv"]

    # The same content again, after a restart (new runner, same database): a duplicate.
    _, restarted = make_files(folder, SqlSeenFileStore(db_engine), publisher)
    (folder / "a-again.csv").write_bytes(GOOD)
    restarted.run_once()
    published_before = len(publisher.published)
    outcome = restarted.run_once()
    assert outcome.duplicates == ["a-again.csv"]
    assert len(publisher.published) == published_before
    reason = reason_of(folder, "a-again.csv")
    assert reason["reason"].startswith("duplicate") and "a.csv" in reason["reason"]

    # A file the connector refuses goes to rejected/ with the connector's reason.
    (folder / "bad.csv").write_bytes(b"NAME;INCOME\nx;1\n")
    restarted.run_once()
    assert restarted.run_once().rejected == ["bad.csv"]
    assert reason_of(folder, "bad.csv")["reason"] == "first line must be the header ID;HOUSEHOLD"
    assert (
        folder
        / "rejected"
        / next(p.name for p in (folder / "rejected").iterdir() if p.name.endswith("_bad.csv"))
    ).read_bytes() == b"NAME;INCOME\nx;1\n"  # kept intact for the operator

    status = restarted.status.snapshot()["counts"]
    assert status["files_duplicate"] == 1 and status["files_rejected"] == 1


def test_drop_folder_with_manifests(tmp_path: Path, db_engine: Engine) -> None:
    folder = tmp_path / "drop"
    publisher = Collector()
    _, runner = make_files(folder, SqlSeenFileStore(db_engine), publisher, require_manifest=True)

    # Without its manifest, even a stable file is not complete.
    data = folder / "m.csv"
    data.write_bytes(GOOD)
    (folder / "m.csv.sha256").write_text(hashlib.sha256(GOOD).hexdigest() + "  m.csv\n")
    for _ in range(3):
        assert "m.csv" in runner.run_once().waiting
    manifest = write_manifest(folder, "m.csv", GOOD)
    outcome = runner.run_once()  # checksum matches: no need to wait for a second poll
    assert outcome.processed == ["m.csv"]
    assert not manifest.exists() and not (folder / "m.csv.sha256").exists()
    archived = sorted(p.name for p in (folder / "processed").iterdir())
    assert any(n.endswith("_m.manifest.json") for n in archived)
    assert any(n.endswith("_m.csv.sha256") for n in archived)

    # Truncated delivery: the manifest describes more than arrived. Waited for once (it may
    # still be arriving), then rejected with the reason, companions moved along.
    full = b"ID;HOUSEHOLD\n" + b"".join(f"{i};HH-{i}\n".encode() for i in range(100, 200))
    (folder / "t.csv").write_bytes(full[: len(full) // 2])
    write_manifest(folder, "t.csv", full)
    published_before = len(publisher.published)
    assert "t.csv" in runner.run_once().waiting
    assert runner.run_once().rejected == ["t.csv"]
    reason = reason_of(folder, "t.csv")["reason"]
    assert "truncated or corrupted" in reason and f"of {len(full)} bytes" in reason
    assert len(publisher.published) == published_before  # nothing of it was published

    # A manifest that points outside the folder is refused as a manifest.
    (folder / "evil.manifest.json").write_text(
        json.dumps({"file_name": "../../etc/passwd", "sha256": "0" * 64})
    )
    runner.run_once()
    assert runner.run_once().rejected == ["evil.manifest.json"]
    assert "plain file name" in reason_of(folder, "evil.manifest.json")["reason"]


def test_broker_outage_leaves_the_file_for_the_next_run(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    publisher = Collector()
    publisher.fail_at = 2
    from connectors.base import InMemorySeenFileStore

    _, runner = make_files(folder, InMemorySeenFileStore(), publisher)
    (folder / "a.csv").write_bytes(GOOD)
    runner.run_once()
    outcome = runner.run_once()
    assert outcome.error is not None and outcome.processed == []
    assert (folder / "a.csv").exists()  # not archived, not remembered
    assert runner.run_once().processed == ["a.csv"]
    assert {r.source_id for _, r in publisher.published} == {"a.csv:2", "a.csv:3", "a.csv:5"}


def test_iter_lines_reports_bad_encoding_per_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfID;HOUSEHOLD\r\n1;Jos\xe9\r\n2;ok\r\n" + b"y" * 50 + b"\n")
    lines = list(iter_lines(path, max_line_bytes=40))
    assert lines[0].text == "ID;HOUSEHOLD"
    assert lines[1].text is None and "utf-8" in (lines[1].error or "")
    assert "Jos" not in (lines[1].error or "")
    assert lines[2].text == "2;ok"
    assert lines[3].error and "longer than 40" in lines[3].error
    assert len(lines) == 4


# --- push: webhooks behind the hub's deny-by-default auth ---------------------------------


class ExampleWebhook(PushConnector):
    name = "example_hook"
    kind = "example"
    settings_schema = connector_settings_schema(
        {"secret": {"type": "string", "minLength": 16}}, required=("secret",)
    )

    def blueprint(self) -> Blueprint:
        bp = Blueprint("example_hook", __name__)
        secret = self.settings["secret"].encode("utf-8")

        @bp.post("/events")
        @signed_webhook
        def events() -> Response:
            body = request.get_data(cache=False)
            if not verify_hmac_sha256(secret, body, request.headers.get("X-Hub-Signature")):
                self.status.count("pushes_refused")
                return Response("bad signature", status=401)
            try:
                payload = json.loads(body)
                event_id = str(payload["payload"]["id"])
            except (ValueError, KeyError, TypeError):
                return Response("not an event", status=400)
            try:
                self.accept_push("event", payload, source_id=event_id)
            except PublishFailed:
                return Response("try again", status=503)
            return Response(status=202)

        return bp


def test_webhook_view_is_declared_public_to_the_hub_and_checks_its_signature() -> None:
    from hub.auth import flask_auth

    publisher = Collector()
    context = ConnectorContext("example_hook", publisher, limiters=PartnerLimiters())
    connector = ExampleWebhook({"secret": "s" * 32}, context)
    assert connector.modes == frozenset({Mode.PUSH})
    app = Flask("hub_like", static_folder=None)
    app.register_blueprint(connector.blueprint(), url_prefix=mount_prefix("example_hook"))
    view = app.view_functions["example_hook.events"]
    assert flask_auth.declared_access(view) == flask_auth.PUBLIC
    assert flask_auth.undeclared_endpoints(app) == []

    body = json.dumps({"payload": {"id": "evt-1", "event": {}}}).encode()
    for base in serve(app):
        hook = f"{base}/connectors/example_hook/events"
        good = {"X-Hub-Signature": "sha256=" + hmac_sha256_hex(b"s" * 32, body)}
        assert requests.post(hook, data=body, headers=good, timeout=5).status_code == 202
        bad = {"X-Hub-Signature": "sha256=" + "0" * 64}
        assert requests.post(hook, data=body, headers=bad, timeout=5).status_code == 401
        assert requests.post(hook, data=body, timeout=5).status_code == 401
        publisher.fail_at = 2
        assert requests.post(hook, data=body, headers=good, timeout=5).status_code == 503
    assert [r.source_id for _, r in publisher.published] == ["evt-1"]
    counts = connector.status.snapshot()["counts"]
    assert counts["pushes_accepted"] == 1 and counts["pushes_refused"] == 2


def test_verify_hmac_refuses_an_empty_secret() -> None:
    body = b"{}"
    assert not verify_hmac_sha256(b"", body, "sha256=" + hmac_sha256_hex(b"", body))
    assert verify_hmac_sha256(b"k", body, "SHA256=" + hmac_sha256_hex(b"k", body).upper())


# --- envelope, settings, discovery ----------------------------------------------------------


def test_raw_event_is_a_valid_cloudevent_with_a_stable_id() -> None:
    from standards.cloudevents import parse_envelope, to_json_bytes

    clock = FakeClock()
    record = RawRecord("income_row", b"\xff\xfe binary", source_id="f.csv:2")
    event = parse_envelope(to_json_bytes(raw_event("tax", record, time=clock.now())))
    assert event["type"] == "org.socialregistry.tax.income_row"
    assert routing_key("tax", "income_row") == "tax.income_row"
    assert payload_of(event["data"]) == b"\xff\xfe binary"
    again = raw_event(
        "tax", RawRecord("income_row", b"\xff\xfe binary", "f.csv:2"), time=clock.now()
    )
    assert again["id"] == event["id"]
    other = raw_event("tax", RawRecord("income_row", b"changed", "f.csv:2"), time=clock.now())
    assert other["id"] != event["id"]
    json_event = raw_event("crvs", RawRecord("birth", {"a": 1}, "b-1"), time=clock.now())
    assert payload_of(json_event["data"]) == {"a": 1}


def test_settings_violations_are_all_listed_without_values() -> None:
    context = ConnectorContext("example_feed", Collector(), limiters=PartnerLimiters())
    bad = {
        "base_url": "ftp://x",
        "page_size": 0,
        "api_key": 12345678901,
        "pagesize": 10,
        "resilience": {"max_attempts": 0, "timeout_seconds": "fast"},
    }
    with pytest.raises(SettingsError) as caught:
        ExampleFeedConnector(bad, context)
    problems = caught.value.violations
    paths = [p.split(":")[0] for p in problems]
    for expected in (
        "$.base_url",
        "$.page_size",
        "$.api_key",
        "$",
        "$.resilience.max_attempts",
        "$.resilience.timeout_seconds",
    ):
        assert expected in paths, problems
    assert any("unknown setting(s) pagesize" in p for p in problems)
    assert "12345678901" not in str(caught.value)
    with pytest.raises(SettingsError) as missing:
        ExampleFeedConnector({}, context)
    assert missing.value.violations == ["$.base_url: is required"]


def test_defaults_are_applied() -> None:
    context = ConnectorContext("example_feed", Collector(), limiters=PartnerLimiters())
    connector = ExampleFeedConnector({"base_url": "http://127.0.0.1:9"}, context)
    assert connector.settings["page_size"] == 5
    assert connector.modes == frozenset({Mode.PULL})
    assert connector.describe()["modes"] == ["pull"]


def test_discovery_by_entry_point_with_builtin_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    group = connector_registry.ENTRY_POINT_GROUP
    here = __name__
    plugins = [
        EntryPoint("example_feed", f"{here}:ExampleFeedConnector", group),
        EntryPoint("broken", "no_such_package.module:Thing", group),
        EntryPoint("not_a_connector", "json:dumps", group),
    ]
    monkeypatch.setattr(
        connector_registry, "entry_points", lambda group: plugins if group == group else []
    )
    # Only this test's plugins: the project's own built-ins are not part of what is checked.
    monkeypatch.setattr(
        connector_registry,
        "BUILTIN_CONNECTORS",
        {"example_files": f"{here}:ExampleFileConnector"},
    )
    assert load_connector_class("example_feed") is ExampleFeedConnector
    assert load_connector_class("example_files") is ExampleFileConnector
    loaded = load_connectors()
    assert set(loaded) == {"example_feed", "example_files"}  # broken ones left out
    with pytest.raises(ConnectorNotFound, match="no_such_package"):
        load_connectors(strict=True)
    with pytest.raises(ConnectorNotFound, match="not a subclass"):
        load_connector_class("not_a_connector")
    with pytest.raises(ConnectorNotFound, match="known connectors: broken, example_feed"):
        load_connector_class("nope")
    assert issubclass(loaded["example_feed"], Connector)
    # A [connectors.<name>] table: "kind" picks the plugin, the rest are its settings.
    context = ConnectorContext("second_feed", Collector(), limiters=PartnerLimiters())
    built = create_connector({"kind": "example_feed", "base_url": "http://127.0.0.1:9"}, context)
    assert isinstance(built, ExampleFeedConnector) and built.instance_name == "second_feed"


def test_real_entry_point_group_is_readable() -> None:
    # Whatever is installed in this environment loads or is reported by name: never a crash.
    for name, cls in load_connectors().items():
        assert issubclass(cls, Connector), name


def test_a_partner_dripping_its_answer_is_cut_off_at_the_timeout(
    feed: tuple[FeedState, str],
) -> None:
    _, url = feed
    clock = FakeClock()
    connector, _ = make_feed(
        url,
        InMemoryCheckpointStore(),
        Collector(),
        clock,
        resilience={**RESILIENCE, "timeout_seconds": 0.4, "max_attempts": 1},
    )
    started = time.monotonic()
    with pytest.raises(TransientPartnerError, match="timeout"):
        connector.client.get("drip")
    assert time.monotonic() - started < 1.5  # not the 2 s the whole body would take


class FailingStore(InMemoryCheckpointStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def save(self, connector: str, value: Any, stream: str = "default") -> None:
        if self.fail:
            raise OSError("database unavailable")
        super().save(connector, value, stream)


def test_checkpoint_store_failure_repeats_the_page_rather_than_skipping_it(
    feed: tuple[FeedState, str],
) -> None:
    _, url = feed
    clock = FakeClock()
    publisher = Collector()
    store = FailingStore()
    connector, runner = make_feed(url, store, publisher, clock)
    outcome = runner.run_once()
    assert outcome.error == "checkpoint not saved: OSError"
    assert publisher.ids() == [1, 2, 3, 4, 5]
    assert connector.status.snapshot()["state"] == "degraded"  # partner fine, hub side not
    store.fail = False
    assert runner.run_once().error is None
    assert publisher.ids() == [1, 2, 3, 4, 5, *range(1, 13)]
    assert store.load("example_feed") == 12


def test_batch_publishing_pages_and_files(feed: tuple[FeedState, str], tmp_path: Path) -> None:
    _, url = feed
    clock = FakeClock()
    publisher = BatchCollectingPublisher()
    publisher.fail_at = 7  # inside the second page
    store = InMemoryCheckpointStore()
    _, runner = make_feed(url, store, publisher, clock)
    assert runner.run_once().error is not None
    assert publisher.batches == [5] and store.load("example_feed") == 5
    assert runner.run_once().error is None
    assert publisher.batches == [5, 5, 2]
    assert [int(i) for i in publisher.source_ids()] == list(range(1, 13))

    from connectors.base import InMemorySeenFileStore

    files = BatchCollectingPublisher()
    _, drop_runner = make_files(tmp_path / "drop", InMemorySeenFileStore(), files)
    (tmp_path / "drop" / "a.csv").write_bytes(GOOD)
    drop_runner.run_once()
    assert drop_runner.run_once().processed == ["a.csv"]
    assert files.batches == [2, 1]  # batch size 2, remainder flushed at the end
    assert files.source_ids() == ["a.csv:2", "a.csv:3", "a.csv:5"]


# --- SOAP: zeep against the real national-ID mock -------------------------------------------


@pytest.fixture(scope="module")
def national_id() -> Iterator[tuple[Any, str, Any]]:
    from sandbox_mocks.common.server import MockServer
    from sandbox_mocks.national_id import SOAP_PATH, NationalIdConfig, create_app

    config = NationalIdConfig(
        seed=7, people=60, noise_rate=0.0, username="hub-test", password="pw-for-tests-only"
    )
    with MockServer(create_app(config)) as server:
        store = server.app.extensions["national_id"].store
        yield server, server.url + SOAP_PATH + "?wsdl", store


class ExampleNationalId(LookupConnector):
    name = "example_nid"
    kind = "national_id"
    settings_schema = connector_settings_schema(
        {
            "wsdl_url": {"type": "string"},
            "username": {"type": "string"},
            "password": {"type": "string"},
        },
        required=("wsdl_url", "username", "password"),
    )

    def __init__(self, settings: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(settings, context)
        from zeep.wsse.username import UsernameToken

        self.service = self.soap(
            self.settings["wsdl_url"],
            wsse=UsernameToken(self.settings["username"], self.settings["password"]),
        )

    def lookup(self, request: Any, deadline: Deadline) -> Any:
        return self.service.call(
            "VerifyIdentity",
            deadline=deadline,
            transactionID="txn-1",
            individualId=request["uin"],
            individualIdType="UIN",
            consentObtained=True,
            requestTime="2025-03-01T10:00:00Z",
            demographics={"gender": request["gender"]},
        )


def test_soap_calls_through_resilience_against_the_national_id_mock(
    national_id: tuple[Any, str, Any],
) -> None:
    from connectors.base.errors import PartnerBusy
    from connectors.base.soap import PartnerFault

    server, wsdl, store = national_id
    clock = FakeClock()
    context = ConnectorContext("example_nid", Collector(), clock=clock)
    connector = ExampleNationalId(
        {
            "wsdl_url": wsdl,
            "username": "hub-test",
            "password": "pw-for-tests-only",
            "resilience": {**RESILIENCE, "failure_threshold": 5},
        },
        context,
    )
    alive = next(r for r in store.records() if not r.deceased)
    request_ok = {"uin": alive.uin, "gender": alive.sex.upper()[0]}
    answer = connector.lookup_within(request_ok, 10)
    assert answer.authStatus is True

    # A business refusal (unknown id) is a permanent fault: one call, no retry, still "up".
    calls = connector.status.snapshot()["counts"]["calls"]
    unknown = {"uin": "000000000" + "0", "gender": "M"}
    with pytest.raises(PartnerFault) as refused:
        connector.lookup_within(unknown, 10)
    assert connector.status.snapshot()["counts"]["calls"] == calls + 1
    assert connector.status.snapshot()["state"] == "up"
    assert refused.value.fault_code == "soap:Client"
    assert refused.value.fault.detail is not None  # structured codes stay reachable
    assert unknown["uin"] not in str(refused.value)

    # The authority goes down: its 503 SOAP faults are transient, retried, then reported.
    admin = server.url + "/_admin/faults"
    assert requests.patch(admin, json={"down": True}, timeout=5).ok
    try:
        with pytest.raises(PartnerBusy) as busy:
            connector.lookup_within(request_ok, 10)
        assert busy.value.status == 503
        assert connector.status.snapshot()["counts"]["calls"] == calls + 1 + 3
        assert connector.status.snapshot()["state"] in ("degraded", "down")
    finally:
        assert requests.delete(admin, timeout=5).ok
    assert connector.lookup_within(request_ok, 10).authStatus is True
    assert connector.status.snapshot()["state"] == "up"


def test_soap_timeout_and_unreachable_wsdl_are_transient(
    national_id: tuple[Any, str, Any],
) -> None:
    from zeep.wsse.username import UsernameToken

    from connectors.base.resilience import ResilientCaller
    from connectors.base.soap import SoapService

    _, wsdl, store = national_id
    clock = FakeClock()
    caller = ResilientCaller.from_settings(
        "national_id",
        {"timeout_seconds": 0.3, "max_attempts": 2, "initial_backoff_seconds": 0},
        clock=clock,
    )
    session = requests.Session()
    session.headers["X-Mock-Latency-Ms"] = "1500"
    slow = SoapService(
        wsdl, caller, wsse=UsernameToken("hub-test", "pw-for-tests-only"), session=session
    )
    alive = next(r for r in store.records() if not r.deceased)
    started = time.monotonic()
    with pytest.raises(TransientPartnerError, match="timeout"):
        slow.call(
            "VerifyIdentity",
            transactionID="t",
            individualId=alive.uin,
            individualIdType="UIN",
            consentObtained=True,
            requestTime="2025-03-01T10:00:00Z",
            demographics={},
        )
    assert time.monotonic() - started < 2.5

    # Nothing listens there: building the client is itself a retried, mapped call.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    nowhere = SoapService(f"http://127.0.0.1:{closed_port}/soap?wsdl", caller)
    with pytest.raises(TransientPartnerError):
        nowhere.call("VerifyIdentity")
