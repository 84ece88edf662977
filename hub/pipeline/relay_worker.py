"""The relay worker: runs ``OutboxRelay`` batches until stopped, surviving broker outages.

Full batches are published back to back; when the outbox is drained the worker polls every
``poll_interval`` seconds. A lost broker connection means reconnecting (waiting visibly: the
one worker loop of ``hub.workers.loop``); a refused batch (not confirmed, unroutable) or an
unavailable database means waiting with exponential backoff (``RetryPolicy``) and trying the
same rows again: they stay unpublished until confirmed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from hub.broker.base import Broker, QueueSpec
from hub.broker.errors import BrokerError, ConnectionClosed
from hub.pipeline.relay import OutboxRelay
from hub.workers.connect import BrokerFactory
from hub.workers.loop import BrokerLoop
from hub.workers.retry import RetryPolicy
from hub.workers.status import RETRYING, RUNNING, WorkerStatus
from hub.workers.topology import WORKER_QUEUES

log = logging.getLogger(__name__)

BATCH_BACKOFF = RetryPolicy(attempts=0, initial_delay=0.5, max_delay=30.0, jitter=0.5)


class RelayWorker(BrokerLoop):
    """Long-running relay loop with ``run`` / ``stop`` and a live ``status``."""

    def __init__(
        self,
        broker_factory: BrokerFactory,
        session_factory: sessionmaker[Session],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        backoff: RetryPolicy = BATCH_BACKOFF,
        topology: Sequence[QueueSpec] = WORKER_QUEUES,
        status: WorkerStatus | None = None,
    ) -> None:
        super().__init__("relay", broker_factory, topology, status)
        self.session_factory = session_factory
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff = backoff

    def serve(self, broker: Broker) -> None:
        relay = OutboxRelay(self.session_factory, broker, self.batch_size)
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
                delay = self.backoff.delay(failures)
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
