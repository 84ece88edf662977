"""Running the configured connectors inside the hub.

The host builds each connector from its configuration table, gives it a context (a publisher to
``sr.inbound``, checkpoint and seen-file stores over the hub's database from
``hub.checkpoints``, a status), starts a runner thread for each
pull and file connector, mounts push connectors' blueprints under ``/connectors/<name>/``, and
keeps lookup connectors for the API (prefill, verification). A connector whose configuration is
invalid, whose plugin is missing, or whose record types the hub cannot route (an unknown
extractor, applier or mapping spec: ``hub.pipeline.routes``) is reported and skipped: the
others still run, and nothing it would publish is left without a route.

There is no process-wide host: the API finds it in ``app.extensions`` (``mount``), the ingest
worker gets ``host.connector`` as its connector look-up and ``host.routes`` among its routes,
and whoever watches publishing (the monitoring middleware's ``published``) is passed in as
``on_publish``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import (
    ConnectorContext,
    FileConnector,
    FileDropRunner,
    PullConnector,
    PullRunner,
    PushConnector,
    RawRecord,
    raw_event,
    routing_key,
)
from connectors.base.clock import SystemClock
from connectors.base.errors import ConnectorError
from connectors.base.registry import create_connector
from hub.broker import Broker, connect
from hub.broker.base import EXCHANGE_INBOUND, Message
from hub.checkpoints import SqlCheckpointStore, SqlSeenFileStore
from hub.settings import Settings, load_identifier_profile
from standards.cloudevents import to_json_bytes

log = logging.getLogger(__name__)

EXTENSION_KEY = "srhub_connectors"
HOST_KEY = "srhub_connector_host"

# Told of every publish: (connector, messages, monotonic start, error or None). Must not raise.
PublishObserver = Callable[[str, Sequence[Message], float, BaseException | None], None]


def _nobody(
    _connector: str, _messages: Sequence[Message], _started: float, _error: BaseException | None
) -> None:
    return None


class BrokerRawPublisher:
    """Publishes raw records to ``sr.inbound``; one broker connection per calling thread
    (runner threads, request threads), as pika requires. ``on_publish`` is told of each
    publish and its outcome (monitoring)."""

    def __init__(self, settings: Settings, on_publish: PublishObserver = _nobody) -> None:
        self._settings = settings
        self._on_publish = on_publish
        self._local = threading.local()
        self._all: list[Broker] = []
        self._lock = threading.Lock()
        self._clock = SystemClock()

    def _broker(self) -> Broker:
        broker = getattr(self._local, "broker", None)
        if broker is None:
            broker = connect(self._settings, wait_for=5)
            from hub.workers.topology import WORKER_QUEUES

            broker.declare_topology(list(WORKER_QUEUES))
            self._local.broker = broker
            with self._lock:
                self._all.append(broker)
        return broker

    def clock_now(self) -> Any:
        return self._clock.now()

    def _message(self, connector: str, record: RawRecord) -> Message:
        event = raw_event(connector, record, time=self._clock.now())
        return Message(
            to_json_bytes(event), routing_key(connector, record.record_type), event["id"]
        )

    def __call__(self, connector: str, record: RawRecord) -> None:
        self.publish_many(connector, [record])

    def publish_many(self, connector: str, records: Sequence[RawRecord]) -> None:
        self.publish_messages(connector, [self._message(connector, r) for r in records])

    def publish_messages(self, connector: str, messages: Sequence[Message]) -> None:
        """Publish ready-made messages to ``sr.inbound`` as ``connector`` (the intake core
        gives its own message ids: a submission's instanceID); confirmed, reported alike."""
        started = time.monotonic()
        try:
            self._broker().publish(EXCHANGE_INBOUND, messages)
        except Exception as exc:
            self._drop_thread_broker()
            self._on_publish(connector, messages, started, exc)
            raise
        self._on_publish(connector, messages, started, None)

    def _drop_thread_broker(self) -> None:
        broker = getattr(self._local, "broker", None)
        self._local.broker = None
        if broker is not None:
            with contextlib.suppress(Exception):  # a broken connection is thrown away anyway
                broker.close()

    def close(self) -> None:
        with self._lock:
            brokers, self._all = self._all, []
        for broker in brokers:
            try:
                broker.close()
            except Exception:  # noqa: S112 - closing every connection matters more
                continue


@dataclass
class ConnectorHost:
    settings: Settings
    engine: Any
    connectors: dict[str, Any] = field(default_factory=dict)
    runners: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    routes: dict[str, Any] = field(default_factory=dict)  # ingest routes of its instances
    on_publish: PublishObserver = _nobody
    # The registry's bulk loader (``hub.bulk.connector_loader``) when this process holds the
    # registry: file connectors hand it large files instead of publishing every row.
    bulk_loader: Any | None = None

    def __post_init__(self) -> None:
        self.identifiers = load_identifier_profile(self.settings)
        self.publisher = BrokerRawPublisher(self.settings, self.on_publish)
        self.checkpoints = SqlCheckpointStore(self.engine)
        self.seen_files = SqlSeenFileStore(self.engine)

    def signing_key(self) -> Any | None:
        """The hub's DCI signing key (``hub.dci.config``), for connectors that sign what they
        send; None (and a warning) when it cannot be read, so connectors still start."""
        from hub.dci.config import load_signing_key
        from hub.settings import SettingsError

        try:
            return load_signing_key(self.settings, self.settings.dci)
        except (SettingsError, OSError, ValueError) as exc:
            log.warning("connectors get no signing key (they send unsigned): %s", exc)
            return None

    def build(self, configs: Mapping[str, Mapping[str, Any]]) -> ConnectorHost:
        """Create every enabled connector; record (not raise) what cannot be built.

        Each instance's record types are routed first (``hub.pipeline.routes``): one the
        ingest could not handle is refused here, at start, with the reason. The routes of the
        instances that run are kept in ``routes``, for the ingest worker of this process."""
        from hub.pipeline.routes import RouteError, instance_routes

        signing_key = self.signing_key() if configs else None
        for name, config in configs.items():
            settings = dict(config)
            if settings.get("enabled") is False:
                continue
            try:
                routes = instance_routes(name, str(settings.get("kind") or name))
            except RouteError as exc:
                self.problems[name] = "; ".join(exc.problems)
                log.error("connector %s not started: %s", name, self.problems[name])
                continue
            context = ConnectorContext(
                name=name,
                publisher=self.publisher,
                checkpoints=self.checkpoints,
                seen_files=self.seen_files,
                signing_key=signing_key,
                identifiers=self.identifiers,
                bulk_loader=self.bulk_loader,
            )
            try:
                self.connectors[name] = create_connector(settings, context)
            except (ConnectorError, ValueError, ImportError) as exc:
                self.problems[name] = f"{type(exc).__name__}: {exc}"
                log.error("connector %s not started: %s", name, self.problems[name])
                continue
            self.routes.update(routes)
        return self

    def connector(self, name: str) -> Any | None:
        """The running connector ``name``, if any (the ingest worker's connector look-up)."""
        return self.connectors.get(name)

    def publish_raw(self, connector: str, record: RawRecord) -> str:
        """Publish one record as ``connector`` (the API's own requests use it); its id."""
        self.publisher(connector, record)
        return raw_event(connector, record, time=self.publisher.clock_now())["id"]

    def mount(self, app: Any) -> None:
        """Register push connectors' blueprints and expose all connectors to the API."""
        from connectors.base.webhooks import mount_prefix

        app.extensions[EXTENSION_KEY] = self.connectors
        app.extensions[HOST_KEY] = self
        for name, connector in self.connectors.items():
            if isinstance(connector, PushConnector):
                app.register_blueprint(
                    connector.blueprint(), url_prefix=mount_prefix(name), name=f"connector_{name}"
                )

    def start(self) -> None:
        for name, connector in self.connectors.items():
            runners: list[PullRunner | FileDropRunner] = []
            if isinstance(connector, PullConnector):
                runners.append(PullRunner(connector))
            if isinstance(connector, FileConnector):
                runners.append(FileDropRunner(connector))
            for runner in runners:
                runner.start()
            if runners:
                self.runners[name] = runners

    def after_serving(self, hub_url: str) -> None:
        """Work that needs the API to be reachable (e.g. webhook subscriptions whose challenge
        the partner sends back to us)."""
        from connectors.base.webhooks import mount_prefix

        for name, connector in self.connectors.items():
            subscribe = getattr(connector, "subscribe", None)
            if isinstance(connector, PushConnector) and callable(subscribe):
                try:
                    subscribe(f"{hub_url}{mount_prefix(name)}")
                except Exception as exc:  # a partner down now is retried by its next start
                    self.problems[name] = f"subscription failed: {type(exc).__name__}"
                    log.warning("connector %s: subscription failed: %s", name, exc)

    def statuses(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            name: connector.status.snapshot() for name, connector in self.connectors.items()
        }
        for name, problem in self.problems.items():
            found.setdefault(name, {"name": name, "state": "down", "last_error": problem})
        return found

    def stop(self) -> None:
        for runners in self.runners.values():
            for runner in runners:
                runner.stop()
        for connector in self.connectors.values():
            try:
                connector.close()
            except Exception:  # noqa: S112 - one connector must not keep others open
                continue
        self.publisher.close()
