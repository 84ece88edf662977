"""The one worker loop: connect (waiting visibly), work until stopped, reconnect when the broker
goes away, report every state change.

Every long-running worker of the hub is one of these: the consumer runtime (ingest, dispatch),
the outbox relay, each subscription's delivery sender and AMQP forwarder. They differ only in
what they do with a connected broker (``serve``); connecting, the reaction to a lost
connection or a broker error, stopping on SIGTERM and the status an operator reads are written
here once.

- A lost connection (``ConnectionClosed``) reconnects at once; ``connect_with_retry`` does the
  waiting, with backoff, visibly (``waiting_for_broker``).
- Any other broker error (e.g. a queue deleted under us) pauses ``error_pause`` seconds, then
  reconnects, which declares the topology again: a persistent problem cannot become a hot loop.
- ``stop()`` (safe from a signal handler) makes ``serve`` return after the work in hand; the
  broker is closed, so anything received but not settled goes back to its queue.
- Anything that is not a broker error is a bug or a broken install: it propagates (the status
  shows it and the state ``stopped``), it is not retried for ever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from hub.broker.base import Broker, Consumer, QueueSpec
from hub.broker.errors import BrokerError, ConnectionClosed
from hub.workers.connect import BrokerFactory, connect_with_retry
from hub.workers.status import RUNNING, STOPPED, STOPPING, WorkerStatus

log = logging.getLogger(__name__)


class BrokerLoop:
    """Base of every worker: ``run`` until ``stop``; subclasses implement ``serve``."""

    error_pause: float = 2.0  # seconds to wait after a broker error before reconnecting

    def __init__(
        self,
        name: str,
        broker_factory: BrokerFactory,
        topology: Sequence[QueueSpec],
        status: WorkerStatus | None = None,
    ) -> None:
        self.name = name
        self.broker_factory = broker_factory
        self.topology = tuple(topology)
        self.status = status or WorkerStatus(name)
        self.stop_event = threading.Event()

    def stop(self) -> None:
        """Finish the work in hand, then return from ``run``; safe from a signal handler."""
        self.stop_event.set()

    def run(self) -> None:
        stop = self.stop_event
        try:
            while not stop.is_set():
                broker = connect_with_retry(self.broker_factory, self.topology, self.status, stop)
                if broker is None:
                    break
                try:
                    self.serve(broker)
                except ConnectionClosed as exc:
                    self.status.record_error(exc)
                    log.warning("%s: broker connection lost (%s); reconnecting", self.name, exc)
                except BrokerError as exc:
                    self.status.record_error(exc)
                    log.error(
                        "%s: broker error (%s); reconnecting in %.0fs",
                        self.name,
                        exc,
                        self.error_pause,
                    )
                    stop.wait(self.error_pause)
                finally:
                    if stop.is_set():
                        self.status.set_state(STOPPING, "returning unsettled messages", log)
                    quietly(broker.close)
        except BaseException as exc:
            self.status.record_error(exc)
            raise
        finally:
            self.finish()
            self.status.set_state(STOPPED, "", log)

    def serve(self, broker: Broker) -> None:
        """Work with ``broker`` until ``stop_event`` is set (return) or it fails (raise)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Release what the worker holds besides the broker (called once, at the end)."""


class ConsumerLoop(BrokerLoop):
    """A worker that consumes one queue: ``consume`` gets the open consumer."""

    def __init__(
        self,
        name: str,
        queue: QueueSpec,
        broker_factory: BrokerFactory,
        topology: Sequence[QueueSpec],
        *,
        prefetch: int,
        status: WorkerStatus | None = None,
    ) -> None:
        queues = tuple(topology) if queue in topology else (*topology, queue)
        super().__init__(name, broker_factory, queues, status)
        self.queue = queue
        self.prefetch = max(prefetch, 1)

    def serve(self, broker: Broker) -> None:
        consumer = broker.open_consumer(self.queue.name, prefetch=self.prefetch)
        try:
            self.status.set_state(RUNNING, f"consuming {self.queue.name}", log)
            self.consume(consumer)
        finally:
            quietly(consumer.close)

    def consume(self, consumer: Consumer) -> None:
        """Receive and settle deliveries until ``stop_event`` is set."""
        raise NotImplementedError


def quietly(close: Callable[[], Any]) -> None:
    """Close something that may already be broken; a failure here changes nothing."""
    try:
        close()
    except (BrokerError, OSError) as exc:
        log.debug("close failed: %s", exc)
