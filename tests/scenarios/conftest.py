"""A whole hub for user stories: the sandbox partner systems on free ports, a registry seeded
from the sandbox's field survey, the API served over HTTP with the connectors mounted (the
OpenRosa server and the intake core included), and the relay, ingest (partner records and
field submissions) and crosscheck workers running — on the embedded broker in the test's
database (SQLite and PostgreSQL).

``@pytest.mark.unseeded(count=N)`` keeps the population's last N households out of the seed:
they are the ones a story's field workers register (``LiveHub.unseeded``)."""

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
from hub.connectors_host import ConnectorHost
from hub.crosscheck.handlers import crosscheck_handlers
from hub.intake.contract import INTAKE_EXTENSION_KEY
from hub.intake.queueing import ROUTING_KEY as INTAKE_KEY
from hub.intake.setup import load_sample_form, submission_handler
from hub.pipeline.ingest import ingest_handlers
from hub.pipeline.relay_worker import RelayWorker
from hub.pipeline.routes import default_routes
from hub.review.service import ReviewQueue
from hub.runtime import HubRuntime
from hub.settings import Settings, load_settings
from hub.workers.runtime import ConsumerRuntime, RetryPolicy
from hub.workers.topology import CROSSCHECK_QUEUE, INGEST_QUEUE
from sandbox_mocks.launcher import SANDBOX_IDENTIFIER_PROFILE, SandboxConfig, start_sandbox
from tests.scenarios.seeded_copies import SeededCopies

FAST_RESILIENCE = {
    "timeout_seconds": 2,
    "max_attempts": 2,
    "initial_backoff_seconds": 0.05,
    "max_backoff_seconds": 0.2,
    "jitter_seconds": 0.05,
    "failure_threshold": 3,
    "cooldown_seconds": 1,
}


@dataclass
class LiveHub:
    settings: Settings
    runtime: HubRuntime
    sandbox: Any
    host: ConnectorHost
    url: str
    ingest: ConsumerRuntime
    unseeded: list[Any]

    @property
    def registry(self) -> Any:
        return self.runtime.registry

    def token(self, *roles: str) -> dict[str, str]:
        token = issue_token(self.settings, subject="scenario", roles=list(roles))
        return {"Authorization": f"Bearer {token}"}

    def mock(self, name: str) -> str:
        return self.sandbox.url(name)

    def fault(self, name: str, **faults: Any) -> None:
        response = requests.patch(f"{self.mock(name)}/_admin/faults", json=faults, timeout=5)
        response.raise_for_status()

    def heal(self, name: str) -> None:
        requests.delete(f"{self.mock(name)}/_admin/faults", timeout=5).raise_for_status()


def field_account(hub: LiveHub, username: str, role: str, areas: list[str]) -> str:
    """A password user with areas, as ``srhub users add NAME --role ROLE --area A`` makes one;
    returns the password (random)."""
    import secrets

    from hub.openrosa.accounts import save_user

    password = secrets.token_urlsafe(16)
    with hub.runtime.sessions() as session, session.begin():
        save_user(
            session,
            hub.runtime.cipher,
            hub.settings.openrosa.realm,
            username=username,
            role=role,
            areas=areas,
            password=password,
        )
    return password


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.2)


@pytest.fixture(scope="session")
def seeded_copies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededCopies]:
    copies = SeededCopies(tmp_path_factory.mktemp("seeded"))
    try:
        yield copies
    finally:
        copies.close()


@pytest.fixture
def live_hub(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path, seeded_copies: SeededCopies
) -> Iterator[LiveHub]:
    # A test may set more sandbox options: @pytest.mark.sandbox(civil_registry_messy_rate=1.0)
    marker = request.node.get_closest_marker("sandbox")
    sandbox = start_sandbox(
        SandboxConfig(
            people=600,
            seed=42,
            ports=dict.fromkeys(("national_id", "civil_registry", "tax", "gis", "programs"), 0),
            work_dir=tmp_path / "sandbox",
            tax_interval_seconds=0,
            tax_drop_on_start=False,
            **(marker.kwargs if marker else {}),
        )
    )
    try:
        kept_out = request.node.get_closest_marker("unseeded")
        households = list(sandbox.households)
        split = len(households) - (int(kept_out.kwargs["count"]) if kept_out else 0)
        config = sandbox.config
        population = (config.seed, config.people, config.as_of, split)
        data_dir = tmp_path / "var"
        with seeded_copies.copy(
            db_url,
            population,
            households[:split],
            data_dir,
            _hub_settings,
            sqlite_template=lambda: request.getfixturevalue("sqlite_schema_template"),
        ) as story_url:
            settings = _hub_settings(story_url, data_dir)
            yield from _serve(sandbox, settings, households, split)
    finally:
        sandbox.stop()


def _hub_settings(database_url: str, data_dir: Path) -> Settings:
    """The story hub's settings: the sandbox's identifier profile (Verhoeff national IDs), as
    `srhub run` gives the hub while the sandbox runs; the sandbox partners and receivers run
    on loopback, allowed explicitly."""
    return load_settings(
        env={},
        database_url=database_url,
        data_dir=data_dir,
        sandbox=False,
        identifier_profile=SANDBOX_IDENTIFIER_PROFILE,
        outbound={"allow_hosts": ["127.0.0.1"]},
    )


def _serve(
    sandbox: Any,
    settings: Settings,
    households: list[Any],
    split: int,
) -> Iterator[LiveHub]:
    """The hub on the seeded registry: API, connectors and workers, until the story ends."""
    runtime = HubRuntime(settings)
    runtime.registry.ensure_identifier_systems()
    configs = sandbox.connectors()
    for config in configs.values():
        config["resilience"] = dict(FAST_RESILIENCE)
    app = create_app(settings, runtime)
    load_sample_form(app.extensions[INTAKE_EXTENSION_KEY])  # as `srhub run` does
    host = ConnectorHost(settings, runtime.engine).build(configs)
    host.mount(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    from hub.broker import connect

    consumer = ConsumerRuntime(
        "ingest",
        INGEST_QUEUE,
        lambda: connect(settings, wait_for=0),
        runtime.sessions,
        ingest_handlers(
            runtime,
            default_routes(),
            connectors=host.connector,
            extra={INTAKE_KEY: submission_handler(runtime, ReviewQueue())},
        ),
        retry=RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.2, jitter=0.05),
        receive_timeout=0.1,
    )
    crosscheck = ConsumerRuntime(
        "crosscheck",
        CROSSCHECK_QUEUE,
        lambda: connect(settings, wait_for=0),
        runtime.sessions,
        crosscheck_handlers(runtime),
        retry=RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.2, jitter=0.05),
        receive_timeout=0.1,
    )
    relay = RelayWorker(lambda: connect(settings, wait_for=0), runtime.sessions)
    workers = (consumer, crosscheck, relay)
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    host.start()
    host.after_serving(url)
    hub = LiveHub(settings, runtime, sandbox, host, url, consumer, households[split:])
    try:
        yield hub
    finally:
        host.stop()
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(20)
        server.shutdown()
        runtime.close()
