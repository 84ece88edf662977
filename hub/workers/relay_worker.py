"""The relay worker: runs ``OutboxRelay`` batches until stopped, surviving broker outages.

Full batches are published back to back; when the outbox is drained the worker polls every
``poll_interval`` seconds. A lost broker connection means reconnecting (waiting visibly); a
refused batch (not confirmed, unroutable) or an unavailable database means waiting with
exponential backoff and trying the same rows again: they stay unpublished until confirmed.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from hub.broker.base import QueueSpec
from hub.broker.errors import BrokerError, ConnectionClosed
from hub.pipeline.relay import OutboxRelay
from hub.workers.connect import BrokerFactory, connect_with_retry
from hub.workers.status import RETRYING, RUNNING, STOPPED, STOPPING, WorkerStatus
from hub.workers.topology import WORKER_QUEUES

log = logging.getLogger(__name__)


class RelayWorker:
    """Long-running relay loop with ``run`` / ``stop`` and a live ``status``."""

    def __init__(
        self,
        broker_factory: BrokerFactory,
        session_factory: sessionmaker[Session],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        max_backoff: float = 30.0,
        topology: Sequence[QueueSpec] = WORKER_QUEUES,
        status: WorkerStatus | None = None,
    ) -> None:
        self.broker_factory = broker_factory
        self.session_factory = session_factory
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.topology = tuple(topology)
        self.status = status or WorkerStatus("relay")
        self.stop_event = threading.Event()

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``; safe from a signal handler."""
        self.stop_event.set()

    def run(self) -> None:
        stop = self.stop_event
        while not stop.is_set():
            broker = connect_with_retry(self.broker_factory, self.topology, self.status, stop)
            if broker is None:
                break
            try:
                self._publish_until_stopped(
                    OutboxRelay(self.session_factory, broker, self.batch_size)
                )
            except ConnectionClosed as exc:
                self.status.record_error(exc)
                log.warning("relay: broker connection lost (%s); reconnecting", exc)
            finally:
                try:
                    broker.close()
                except (BrokerError, OSError) as exc:
                    log.debug("relay: close failed: %s", exc)
        self.status.set_state(STOPPED, "", log)

    def _publish_until_stopped(self, relay: OutboxRelay) -> None:
        stop = self.stop_event
        failures = 0
        self.status.set_state(RUNNING, "publishing the outbox", log)
        while not stop.is_set():
            try:
                count = relay.run_once()
            except ConnectionClosed:
                raise
            except (BrokerError, DBAPIError) as exc:
                failures += 1
                delay = min(self.max_backoff, 0.5 * 2 ** min(failures, 10))
                delay *= random.uniform(0.5, 1.0)
                self.status.count("failed")
                self.status.record_error(exc)
                self.status.set_state(
                    RETRYING,
                    f"batch failed ({type(exc).__name__}); retry {failures} in {delay:.1f}s",
                    log,
                )
                stop.wait(delay)
                continue
            if failures:
                failures = 0
                self.status.set_state(RUNNING, "publishing the outbox", log)
            self.status.count("processed", count)
            self.status.maybe_report(log)
            if count < self.batch_size:
                stop.wait(self.poll_interval)
        self.status.set_state(STOPPING, "", log)
