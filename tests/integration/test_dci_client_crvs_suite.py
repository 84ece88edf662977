"""The civil-registry connector's DCI client against an independent CRVS registry: the CRVS mock
of OpenSPP's SPDCI compliance suite (``DOMAIN=crvs node common/mock-server/server.mjs``).

That mock validates every request against the CRVS API file with ajv and records the
complaints, answers async calls by POSTing to ``sender_uri`` exactly as given, and signs
nothing. None of it was written here, so it catches what our own sandbox mock, written from our
reading of the spec, would agree with. The suite is found at ``SRHUB_SPDCI_SUITE_DIR`` (else
``../shared/spdci-compliance`` beside the project); its Node packages are installed once with
``npm ci`` into a cache folder under the temp dir, the same one ``dci-suite.sh`` uses. Without
node or the suite the test skips, saying why; under ``CI=true`` with ``SRHUB_SPDCI_SUITE_DIR``
set it fails instead.

The mock's answers carry no records, so records reach the hub the other way a registry sends
them: a ``notify`` the mock POSTs (its ``/admin/trigger-callback``) holding the CRVS API file's
own example person, as a birth and as a death.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask

from connectors.base import ConnectorContext
from connectors.base.resilience import PartnerLimiters
from connectors.base.testing import CollectingPublisher
from connectors.base.webhooks import mount_prefix
from connectors.civil_registry import CivilRegistryConnector, id_criteria
from hub.connectors_host import ConnectorHost
from hub.settings import load_settings
from mappings.engine import map_record
from sandbox_mocks.common.server import MockServer
from standards.dci.envelope import timestamp
from standards.dci.signature import verify_envelope
from tests.services import in_ci

SUITE_ENV = "SRHUB_SPDCI_SUITE_DIR"
DEFAULT_SUITE = Path(__file__).resolve().parents[2].parent / "shared" / "spdci-compliance"
NAME = "civil_registry"
TOKEN = "crvs-suite-" + "t" * 24
SENDER = "hub.example.org"
REGISTRY = "crvs-registry"
LIVE_BIRTH = "spdci-common:RegistryEventType:LiveBirth"
DEATH = "spdci-common:RegistryEventType:Death"


# --- the suite's mock, installed and running -------------------------------------------------


def cannot_run(reason: str) -> None:
    """Skip locally; fail in CI when the suite was named (it is then expected to run)."""
    if in_ci() and os.environ.get(SUITE_ENV):
        pytest.fail(f"CI=true and {SUITE_ENV} is set, but the CRVS mock cannot run: {reason}")
    pytest.skip(reason)


def suite_folder() -> Path:
    configured = os.environ.get(SUITE_ENV, "").strip()
    folder = Path(configured).expanduser() if configured else DEFAULT_SUITE
    if not (folder / "common" / "mock-server" / "server.mjs").is_file():
        cannot_run(f"the SPDCI compliance suite is not at {folder} (set {SUITE_ENV})")
    if not shutil.which("node") or not shutil.which("npm"):
        cannot_run("node and npm are not on PATH (the suite's mock needs Node 18+)")
    return folder


def installed(suite: Path) -> Path:
    """A copy of the suite with its Node packages: the suite itself when it has them, else the
    cache ``<tmp>/spdci-compliance-<lock hash>`` shared with dci-suite.sh (``npm ci`` once,
    under a lock, into a fresh folder renamed into place). A cache folder that exists but is
    not complete may be dci-suite.sh installing right now: it is left alone and this run uses
    its own fresh copy."""
    if (suite / "node_modules" / "ajv").is_dir():
        return suite
    key = hashlib.sha1((suite / "package-lock.json").read_bytes()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"spdci-compliance-{key}"
    ready = cache / "node_modules" / ".bin" / "cucumber-js"
    with open(f"{cache}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            fresh = Path(tempfile.mkdtemp(prefix=f"{cache.name}.", dir=cache.parent))
            shutil.copytree(suite, fresh, dirs_exist_ok=True)
            for path in [fresh, *fresh.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)  # the shared copy is read-only
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=fresh,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if done.returncode != 0:
                shutil.rmtree(fresh, ignore_errors=True)
                cannot_run(f"npm ci failed for the suite: {done.stderr.strip()[-400:]}")
            if cache.exists():
                return fresh
            fresh.rename(cache)
    return cache


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SuiteMock:
    """The running CRVS mock and its admin API."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder

    def requests(self) -> list[dict[str, Any]]:
        answer = requests.get(self.url + "/admin/requests", timeout=5)
        answer.raise_for_status()
        return list(answer.json()["requests"])

    def trigger(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(
            self.url + "/admin/trigger-callback", json={"url": url, "payload": payload}, timeout=10
        )
        answer.raise_for_status()
        return dict(answer.json())

    def example_person(self) -> dict[str, Any]:
        """The CRVS API file's example person (SearchResponse ``reg_records``), from the copy
        of the file the mock validates with."""
        spec = yaml.safe_load((self.folder / "spec" / "crvs_api_v1.0.0.yaml").read_text("utf-8"))
        response = spec["components"]["schemas"]["SearchResponse"]["properties"]
        item = response["search_response"]["items"]["properties"]["data"]["properties"]
        return copy.deepcopy(item["reg_records"]["items"]["example"])


@pytest.fixture(scope="module")
def crvs_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteMock]:
    folder = installed(suite_folder())
    port = free_port()
    log_path = tmp_path_factory.mktemp("crvs-mock") / "mock.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["node", "common/mock-server/server.mjs"],
            cwd=folder,
            env={**os.environ, "DOMAIN": "crvs", "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                health = requests.get(url + "/admin/healthcheck", timeout=2).json()
                if health.get("openApiLoaded"):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                cannot_run(f"the CRVS mock did not start: {log_path.read_text()[-400:]}")
            time.sleep(0.2)
        yield SuiteMock(url, folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- the hub side --------------------------------------------------------------------------


@pytest.fixture
def hub(crvs_mock: SuiteMock, tmp_path: Path) -> Iterator[tuple[CivilRegistryConnector, str, Any]]:
    """The connector, signing with the key the hub's connector host hands out, its views served
    where the hub mounts them."""
    settings = load_settings(env={}, data_dir=tmp_path / "var", sandbox=False)
    signing_key = ConnectorHost(settings, None).signing_key()
    publisher = CollectingPublisher()
    context = ConnectorContext(NAME, publisher, limiters=PartnerLimiters(), signing_key=signing_key)
    connector = CivilRegistryConnector(
        {
            "base_url": crvs_mock.url,
            "dci_base_url": crvs_mock.url + "/registry",
            "registry_id": REGISTRY,
            "sender_id": SENDER,
            "dci_callback_token": TOKEN,
            "webhook_secret": "whsec-" + "s" * 26,
            "subscriptions": ["dci"],
            "resilience": {"timeout_seconds": 5, "max_attempts": 2},
        },
        context,
    )
    app = Flask("hub_like", static_folder=None)
    app.register_blueprint(connector.blueprint(), url_prefix=mount_prefix(NAME))
    server = MockServer(app).start()
    try:
        yield connector, server.url + mount_prefix(NAME), (signing_key, publisher)
    finally:
        server.stop()
        connector.close()


def wait_until(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def notify(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A notify as a registry sends it: one event per (event type, person record)."""
    return {
        "signature": "unsigned-mock",
        "header": {
            "version": "1.0.0",
            "message_id": uuid.uuid4().hex,
            "message_ts": timestamp(),
            "action": "notify",
            "status": "succ",
            "sender_id": REGISTRY,
            "receiver_id": SENDER,
            "total_count": len(records),
            "completed_count": len(records),
        },
        "message": {
            "transaction_id": uuid.uuid4().hex,
            "notify_event": [
                {
                    "reference_id": f"ref-{n}",
                    "timestamp": timestamp(),
                    "data": {
                        "version": "1.0.0",
                        "reg_type": "ns:org:RegistryType:Civil",
                        "reg_event_type": kind,
                        "reg_record_type": "spdci-extensions-dci:Person",
                        "reg_records": record,
                    },
                }
                for n, (kind, record) in enumerate(records)
            ],
        },
    }


# --- the test ----------------------------------------------------------------------------


def test_subscribe_search_and_notify_with_the_suites_crvs_mock(
    crvs_mock: SuiteMock, hub: tuple[CivilRegistryConnector, str, Any]
) -> None:
    connector, base, (signing_key, publisher) = hub
    before = {r["id"] for r in crvs_mock.requests()}

    # Subscribe: the mock ACKs, then POSTs the on-subscribe to our sender_uri as given.
    connector.subscribe(base)
    wait_until(lambda: connector.describe()["dci"]["attempts"][0]["state"] == "confirmed")
    assert connector.describe()["dci"]["callbacks"]["on-subscribe"]["count"] == 1
    assert len(connector.describe()["dci"]["subscriptions"]) == 1
    assert connector.status.snapshot()["problems"] == []

    # Search by identifier, answered synchronously and through the on-search callback.
    assert connector.dci.search_by_id("BRN", "BRN-2026-0001") == []
    [result] = connector.dci.search([id_criteria("BRN", "BRN-2026-0001", LIVE_BIRTH)])
    assert result.ok and result.records == []
    txn = connector.dci.search_async(
        [id_criteria("UIN", "1234567890")],
        sender_uri=connector.dci_sender_uri("on-search", base),
        publish=True,
    )
    [answered] = wait_until(lambda: connector.dci.wait_for(txn, timeout=1))
    assert answered.ok
    codes = list(connector.describe()["dci"]["subscriptions"])
    connector.dci.unsubscribe(codes, sender_uri=connector.dci_sender_uri("on-unsubscribe", base))
    wait_until(lambda: "on-unsubscribe" in connector.describe()["dci"]["callbacks"])
    assert connector.status.snapshot()["counts"]["callbacks"] == 3  # shown on the dashboard

    # Records: the spec's example person, notified by the mock as a birth and as a death.
    person = crvs_mock.example_person()
    birth = copy.deepcopy(person)
    # Its own identifiers (a UIN, the parents' UINs) as the spec gives them, plus the
    # registration number a birth or a death record carries.
    given = (
        person["identifier"] if isinstance(person["identifier"], list) else [person["identifier"]]
    )
    birth["identifier"] = [
        {"identifier_type": "BRN", "identifier_value": "BRN-2026-0001"},
        *copy.deepcopy(given),
    ]
    death = copy.deepcopy(person)
    death["identifier"] = [
        {"identifier_type": "DRN", "identifier_value": "DRN-2026-0009"},
        *copy.deepcopy(given),
    ]
    death["death_date"] = "2026-01-02T08:00:00"
    death["death_place"] = copy.deepcopy(person["birth_place"])  # an object, as the spec allows
    sent = crvs_mock.trigger(
        connector.dci_sender_uri("on-subscribe", base),
        notify([(LIVE_BIRTH, birth), (DEATH, death)]),
    )
    assert sent == {"success": True, "status": 200}
    records = {r.record_type: r for r in publisher.records()}
    assert sorted(records) == ["dci_birth", "dci_death"]
    mapped_birth = map_record("civil_registry_dci_birth", records["dci_birth"].payload)
    assert mapped_birth["registration_number"] == "BRN20260001"
    assert mapped_birth["child"]["given_name"] == person["name"]["given_name"]
    assert mapped_birth["child"]["birth_date"] == person["birth_date"][:10]
    mapped_death = map_record("civil_registry_dci_death", records["dci_death"].payload)
    assert (mapped_death["registration_number"], mapped_death["death_date"]) == (
        "DRN20260009",
        "2026-01-02",
    )

    # What the mock saw: no schema complaint, every request signed by us, callbacks delivered
    # (it notes a callback's outcome once its POST returned).
    def ours() -> list[dict[str, Any]]:
        return [r for r in crvs_mock.requests() if r["id"] not in before]

    wait_until(
        lambda: all("callback" in r for r in ours() if r["endpoint"] != "/registry/sync/search")
    )
    seen = ours()
    assert sorted({r["endpoint"] for r in seen}) == [
        "/registry/search",
        "/registry/subscribe",
        "/registry/sync/search",
        "/registry/unsubscribe",
    ]
    complaints = [(r["endpoint"], r["validation"]["errors"]) for r in seen]
    assert all(not errors for _, errors in complaints), complaints
    assert all(r["validation"]["valid"] for r in seen)
    public = signing_key.private_key.public_key()
    for recorded in seen:
        body = recorded["body"]
        params = verify_envelope(body["signature"], body["header"], body["message"], public)
        assert (params.sender_id, params.key_id) == (SENDER, signing_key.key_id)
        assert recorded["senderId"] == SENDER
    callbacks = [r for r in seen if r["endpoint"] != "/registry/sync/search"]
    for recorded in callbacks:
        action = {
            "/registry/search": "on-search",
            "/registry/subscribe": "on-subscribe",
            "/registry/unsubscribe": "on-unsubscribe",
        }[recorded["endpoint"]]
        assert recorded["senderUri"] == connector.dci_sender_uri(action, base)
        assert recorded["callback"]["status"] == 200, recorded["callback"]
