"""Running workers: one per process with graceful signals, or several as threads of one process.

Two ways to run them, same code:

- ``srhub worker relay|ingest|dispatch|crosscheck``: one worker per process
  (``run_until_signalled``), so a deployment scales out by starting more processes on the
  same queues; SIGTERM and SIGINT stop it gracefully.
- ``srhub run``: all of them as threads of the one hub process (``WorkerGroup``), the embedded
  setup. Each thread has its own broker connection (pika connections are per thread).

Which workers exist and what their handlers do is the application's business
(``hub.assembly``): this module knows no pipeline.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.broker import connect
from hub.broker.base import Broker
from hub.settings import Settings
from hub.workers.status import WorkerStatus

log = logging.getLogger(__name__)


class Worker(Protocol):
    status: WorkerStatus

    def run(self) -> None: ...

    def stop(self) -> None: ...


def broker_factory(settings: Settings, name: str) -> Callable[[], Broker]:
    """Broker connections for one worker. ``wait_for=0``: the worker's own loop does the
    waiting, so it can report it and stop on SIGTERM while the broker is down."""
    options: dict[str, Any] = {"wait_for": 0}
    if not settings.uses_embedded_broker:
        options["connection_name"] = f"srhub-worker-{name}"

    def factory() -> Broker:
        return connect(settings, **options)

    return factory


def run_until_signalled(worker: Worker, name: str) -> WorkerStatus:
    """Run ``worker`` in this thread until SIGTERM/SIGINT; return its final status."""

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s worker: signal %s received; finishing in-flight work", name, signum)
        worker.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return worker.status


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
