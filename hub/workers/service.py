"""Building the relay, ingest and dispatch workers from settings, and running them.

Two ways to run them, same code:

- ``srhub worker relay|ingest|dispatch``: one worker per process (``run_worker_process``), so a
  deployment scales out by starting more processes on the same queues; SIGTERM and SIGINT stop
  it gracefully.
- ``srhub run``: all three as threads of the one hub process (``start_workers``), the embedded
  setup. Each thread has its own broker connection (pika connections are per thread).
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from hub.broker import connect
from hub.broker.base import Broker
from hub.settings import Settings
from hub.workers.handlers import DISPATCH_HANDLERS, INGEST_HANDLERS, HandlerRegistry
from hub.workers.relay_worker import RelayWorker
from hub.workers.runtime import ConsumerRuntime
from hub.workers.status import WorkerStatus
from hub.workers.topology import DISPATCH_QUEUE, INGEST_QUEUE
from registry_core.db import make_engine, make_session_factory

log = logging.getLogger(__name__)

WORKER_KINDS = ("relay", "ingest", "dispatch")

# Modules that register handlers into INGEST_HANDLERS / DISPATCH_HANDLERS when imported. A
# module that does not exist yet (a later build step) is skipped with a log line; messages then
# go to sr.dead with reason "no handler" rather than piling up.
HANDLER_MODULES: dict[str, tuple[str, ...]] = {
    "ingest": ("hub.pipeline.ingest",),
    "dispatch": ("hub.pipeline.dispatch",),
}


class Worker(Protocol):
    status: WorkerStatus

    def run(self) -> None: ...

    def stop(self) -> None: ...


def broker_factory(settings: Settings, kind: str) -> Callable[[], Broker]:
    """Broker connections for one worker. ``wait_for=0``: the worker's own loop does the
    waiting, so it can report it and stop on SIGTERM while the broker is down."""
    options: dict[str, Any] = {"wait_for": 0}
    if not settings.uses_embedded_broker:
        options["connection_name"] = f"srhub-worker-{kind}"

    def factory() -> Broker:
        return connect(settings, **options)

    return factory


def load_handlers(kind: str) -> HandlerRegistry:
    """Import the handler modules of ``kind`` and return its registry."""
    for module in HANDLER_MODULES.get(kind, ()):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
            log.warning("%s worker: handler module %s is not in this build", kind, module)
    registry = INGEST_HANDLERS if kind == "ingest" else DISPATCH_HANDLERS
    if not registry.routing_keys():
        log.warning(
            "%s worker: no handlers registered; every message will be dead-lettered "
            "with reason 'no handler'",
            kind,
        )
    return registry


def build_worker(
    kind: str,
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    batch_size: int | None = None,
    prefetch: int | None = None,
) -> Worker:
    """One worker of ``kind`` (relay, ingest, dispatch), not yet running."""
    factory = broker_factory(settings, kind)
    if kind == "relay":
        return RelayWorker(factory, session_factory, batch_size=batch_size or 500)
    if kind in ("ingest", "dispatch"):
        queue = INGEST_QUEUE if kind == "ingest" else DISPATCH_QUEUE
        options: dict[str, Any] = {}
        if batch_size:
            options["batch_size"] = batch_size
        if prefetch:
            options["prefetch"] = prefetch
        return ConsumerRuntime(
            kind, queue, factory, session_factory, load_handlers(kind), **options
        )
    raise ValueError(f"unknown worker kind {kind!r}; use one of {', '.join(WORKER_KINDS)}")


def run_worker_process(
    kind: str,
    settings: Settings,
    *,
    batch_size: int | None = None,
    prefetch: int | None = None,
) -> WorkerStatus:
    """Run one worker in this process until SIGTERM/SIGINT; return its final status."""
    engine = make_engine(settings.effective_database_url)
    try:
        worker = build_worker(
            kind,
            settings,
            make_session_factory(engine),
            batch_size=batch_size,
            prefetch=prefetch,
        )

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("%s worker: signal %s received; finishing in-flight work", kind, signum)
            worker.stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            worker.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return worker.status
    finally:
        engine.dispose()


@dataclass
class WorkerGroup:
    """Workers running as threads of one process (``srhub run``)."""

    workers: dict[str, Worker]
    threads: dict[str, threading.Thread] = field(default_factory=dict)

    def start(self) -> WorkerGroup:
        for kind, worker in self.workers.items():
            thread = threading.Thread(target=worker.run, name=f"srhub-{kind}", daemon=True)
            self.threads[kind] = thread
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every worker to finish its in-flight work, then wait for them."""
        for worker in self.workers.values():
            worker.stop()
        for kind, thread in self.threads.items():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s worker did not stop within %.0fs", kind, timeout)

    def statuses(self) -> dict[str, dict[str, Any]]:
        return {kind: worker.status.snapshot() for kind, worker in self.workers.items()}


def start_workers(
    settings: Settings,
    session_factory: sessionmaker[Session],
    kinds: Iterable[str] = WORKER_KINDS,
) -> WorkerGroup:
    """Start the given workers as threads; call ``stop()`` on the result to shut them down."""
    return WorkerGroup(
        {kind: build_worker(kind, settings, session_factory) for kind in kinds}
    ).start()
