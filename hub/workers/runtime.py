"""The consume loop every consuming worker runs (ingest, dispatch, and tests' own consumers).

For each delivery, in order:

1. Envelope: the body must be a valid CloudEvents envelope (``standards.cloudevents``); if not,
   the message is dead-lettered with the reason and the loop goes on to the next one. A bad
   message never crashes the worker and never blocks the queue behind it.
2. Handler: looked up by routing key; none registered -> dead-lettered with "no handler".
3. Idempotency: the message id is recorded in ``processed_messages`` in the same transaction as
   the handler's database effect; a duplicate is acknowledged without running the handler.
4. Failures: ``TransientError`` and connection-type errors are retried with exponential backoff
   and jitter (tenacity); when the retries are used up the message goes back to the queue, or to
   ``sr.dead`` once it has reached the delivery limit. Any other error is permanent: dead-letter.
5. Ack after commit, so a crash in between only causes a redelivery that step 3 absorbs.

Throughput comes from batching: the deliveries already waiting (up to ``batch_size``) are
handled in one database transaction with a SAVEPOINT per message, so one commit (one fsync)
covers many messages while a failing message only undoes its own savepoint. A transient
failure ends the batch there: what came before is committed and acked, the failing message is
retried on its own, and the rest follow it, so messages of one queue keep their order.

Stopping (``stop`` event, set by SIGTERM): no new deliveries are received, the batch in hand is
finished (a message whose retries are interrupted is returned to the queue together with those
after it), then the consumer is closed so anything prefetched but unhandled goes back unacked.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)

from hub.broker.base import Consumer, DeadLetterReason, Delivery, QueueSpec
from hub.broker.errors import BrokerError, ConnectionClosed
from hub.workers import idempotency
from hub.workers.connect import BrokerFactory, connect_with_retry
from hub.workers.errors import PermanentError, is_transient
from hub.workers.handlers import HandlerContext, HandlerRegistry, HandlerSpec
from hub.workers.status import RETRYING, RUNNING, STOPPED, STOPPING, WorkerStatus
from hub.workers.topology import WORKER_QUEUES
from registry_core.db import utcnow
from standards.cloudevents import CloudEvent, EnvelopeError, parse_envelope

log = logging.getLogger(__name__)

ERROR_INVALID_ENVELOPE = "InvalidEnvelope"
ERROR_NO_HANDLER = "NoHandler"
ERROR_RETRIES_EXHAUSTED = "RetriesExhausted"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a transiently failing message before giving it back to the queue."""

    attempts: int = 5  # handler runs per delivery, the first one included
    initial_delay: float = 0.2
    max_delay: float = 10.0
    jitter: float = 0.5


@dataclass(frozen=True)
class Retention:
    """Bounds of the processed-message store for this consumer."""

    max_age: timedelta = idempotency.DEFAULT_MAX_AGE
    max_count: int = idempotency.DEFAULT_MAX_COUNT
    purge_every: float = 300.0  # seconds between purges


@dataclass
class _Item:
    delivery: Delivery
    event: CloudEvent
    spec: HandlerSpec

    @property
    def message_id(self) -> str:
        return str(self.event["id"])


_Outcome = tuple[list[_Item], tuple[_Item, BaseException] | None, list[tuple[_Item, BaseException]]]


class _SlowPathNeeded(Exception):
    """The fast path met a failure; redo the batch with a savepoint per message."""


class _Interrupted(Exception):
    """Retrying stopped because the worker is shutting down."""


class ConsumerRuntime:
    """Consumes one queue with a handler registry until told to stop.

    ``broker_factory`` makes a new broker connection (called again after a connection loss);
    ``session_factory`` gives database sessions for handlers and the idempotency store.
    """

    def __init__(
        self,
        name: str,
        queue: QueueSpec,
        broker_factory: BrokerFactory,
        session_factory: sessionmaker[Session],
        handlers: HandlerRegistry,
        *,
        prefetch: int = 200,
        batch_size: int = 100,
        receive_timeout: float = 0.5,
        retry: RetryPolicy | None = None,
        retention: Retention | None = None,
        topology: Sequence[QueueSpec] = WORKER_QUEUES,
        status: WorkerStatus | None = None,
    ) -> None:
        self.name = name
        self.queue = queue
        self.broker_factory = broker_factory
        self.session_factory = session_factory
        self.handlers = handlers
        self.prefetch = max(prefetch, 1)
        self.batch_size = max(min(batch_size, self.prefetch), 1)
        self.receive_timeout = receive_timeout
        self.retry = retry or RetryPolicy()
        self.retention = retention or Retention()
        self.topology = tuple(topology) if queue in topology else (*topology, queue)
        self.status = status or WorkerStatus(name)
        self.stop_event = threading.Event()
        self._first_failure: OrderedDict[str, datetime] = OrderedDict()
        self._last_purge = time.monotonic()

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and return; safe from a signal handler."""
        self.stop_event.set()

    def run(self) -> None:
        """Consume until ``stop``; reconnect (waiting visibly) whenever the broker goes away."""
        stop = self.stop_event
        while not stop.is_set():
            broker = connect_with_retry(self.broker_factory, self.topology, self.status, stop)
            if broker is None:
                break
            consumer: Consumer | None = None
            try:
                consumer = broker.open_consumer(self.queue.name, prefetch=self.prefetch)
                self.status.set_state(RUNNING, f"consuming {self.queue.name}", log)
                self._consume(consumer)
            except ConnectionClosed as exc:
                self.status.record_error(exc)
                log.warning("%s: broker connection lost (%s); reconnecting", self.name, exc)
            except BrokerError as exc:
                # e.g. the queue was deleted under us: reconnecting declares it again. Pause
                # first so a persistent problem cannot turn into a hot loop.
                self.status.record_error(exc)
                log.error("%s: broker error (%s); reconnecting in 2s", self.name, exc)
                stop.wait(2.0)
            finally:
                if stop.is_set():
                    self.status.set_state(STOPPING, "returning unacknowledged messages", log)
                if consumer is not None:
                    _quietly(consumer.close)
                _quietly(broker.close)
        self.status.set_state(STOPPED, "", log)

    def _consume(self, consumer: Consumer) -> None:
        while not self.stop_event.is_set():
            first = consumer.receive(self.receive_timeout)
            if first is None:
                self._maybe_purge()
                continue
            batch = [first]
            while len(batch) < self.batch_size:
                more = consumer.receive(0)
                if more is None:
                    break
                batch.append(more)
            self.process(consumer, batch)
            self._maybe_purge()

    # -- one batch ----------------------------------------------------------------------------

    def process(self, consumer: Consumer, deliveries: Sequence[Delivery]) -> None:
        """Handle, settle and count ``deliveries`` (received from ``consumer``) in order."""
        items: list[_Item] = []
        for delivery in deliveries:
            item = self._admit(consumer, delivery)
            if item is not None:
                items.append(item)
        position = 0
        while position < len(items):
            done, failed, dead = self._run_transaction(items[position:])
            _ack_all(consumer, [item.delivery for item in done])
            self._dead_letter_failures(consumer, dead)
            advanced = len(done) + len(dead)
            position += advanced
            if failed is None:
                if not advanced:  # cannot happen; never spin on it
                    raise RuntimeError("batch made no progress")
                continue
            failed_item, error = failed
            if not self._retry_alone(consumer, failed_item, error):
                # Shutting down: give back this message and every later one, in order.
                for item in items[position:]:
                    self._requeue(consumer, item.delivery)
                return
            position += 1

    def _admit(self, consumer: Consumer, delivery: Delivery) -> _Item | None:
        """Validate the envelope and find the handler; dead-letter the message if either fails."""
        try:
            event = parse_envelope(delivery.message.body)
        except EnvelopeError as exc:
            self._dead_letter(consumer, delivery, ERROR_INVALID_ENVELOPE, str(exc))
            return None
        routing_key = delivery.message.routing_key
        spec = self.handlers.resolve(routing_key)
        if spec is None:
            self._dead_letter(
                consumer,
                delivery,
                ERROR_NO_HANDLER,
                f"no handler for routing key {routing_key!r} in the {self.handlers.name} worker",
            )
            return None
        return _Item(delivery, event, spec)

    def _run_transaction(self, items: Sequence[_Item]) -> _Outcome:
        """Handle ``items`` in one transaction until the first transient failure.

        Returns (committed items to ack incl. duplicates, the transient failure if any, items
        that failed permanently). On a failed commit nothing counts as done: the first item is
        reported as the transient failure and the others are handled again afterwards.
        """
        done: list[_Item] = []
        dead: list[tuple[_Item, BaseException]] = []
        failed: tuple[_Item, BaseException] | None = None
        duplicates = 0
        if not items[0].spec.transactional:
            return self._run_outside(items)
        batch: list[_Item] = []
        for item in items:
            if not item.spec.transactional:
                break  # it runs alone, outside this transaction, next
            batch.append(item)
        if len(batch) > 1:  # a lone message (e.g. one being retried) takes the careful path
            try:
                return self._run_fast(batch)
            except _SlowPathNeeded:
                pass
            except Exception as exc:
                return self._transaction_failed(batch, exc)
        try:
            with self.session_factory() as session, session.begin():
                for item in batch:
                    outcome = self._handle_inside(session, item)
                    if outcome is None or outcome == "duplicate":
                        done.append(item)
                        duplicates += outcome == "duplicate"
                    elif isinstance(outcome, BaseException) and is_transient(outcome):
                        failed = (item, outcome)
                        break
                    elif isinstance(outcome, BaseException):
                        dead.append((item, outcome))
        except Exception as exc:
            return self._transaction_failed(batch, exc)
        self.status.count("processed", len(done) - duplicates)
        self.status.count("duplicates", duplicates)
        return done, failed, dead

    def _transaction_failed(self, batch: Sequence[_Item], exc: BaseException) -> _Outcome:
        """Nothing of the transaction is committed: report its first item as the failure (it is
        retried alone) and let the others be handled again after it."""
        if not is_transient(exc):
            log.error(
                "%s: transaction failed (%s: %s)\n%s",
                self.name,
                type(exc).__name__,
                _safe_text(exc),
                _frames(exc),
            )
        self._note_failure(batch[0], exc)
        return [], (batch[0], exc), []

    def _run_fast(self, batch: Sequence[_Item]) -> _Outcome:
        """The common case, optimised: every handler succeeds.

        One query finds the duplicates, handlers run without savepoints, one statement
        records all ids. Any handler error or id conflict raises ``_SlowPathNeeded`` after the
        whole transaction rolled back; the careful path then redoes the batch message by
        message, so the fast path never decides a message's fate on its own.
        """
        done: list[_Item] = []
        fresh: list[str] = []
        duplicates = 0
        with self.session_factory() as session, session.begin():
            known = idempotency.known_ids(session, self.name, [i.message_id for i in batch])
            for item in batch:
                if item.message_id in known:
                    duplicates += 1
                    done.append(item)
                    continue
                known.add(item.message_id)  # a second copy in the same batch is a duplicate
                try:
                    item.spec.func(item.event, HandlerContext(self.name, item.delivery, session))
                except Exception as exc:
                    if isinstance(exc, OperationalError | DisconnectionError):
                        raise  # the database itself is in trouble: a transient failure
                    raise _SlowPathNeeded from exc
                fresh.append(item.message_id)
                done.append(item)
            try:
                idempotency.record_many(session, self.name, fresh)
            except IntegrityError as exc:
                raise _SlowPathNeeded from exc
        self.status.count("processed", len(done) - duplicates)
        self.status.count("duplicates", duplicates)
        return done, None, []

    def _handle_inside(self, session: Session, item: _Item) -> BaseException | str | None:
        """Claim the id and run the handler in a savepoint: the error, "duplicate" or None."""
        try:
            with session.begin_nested():
                if not idempotency.claim(session, self.name, item.message_id):
                    return "duplicate"
                item.spec.func(item.event, HandlerContext(self.name, item.delivery, session))
        except Exception as exc:
            self._note_failure(item, exc)
            return exc
        return None

    def _run_outside(self, items: Sequence[_Item]) -> _Outcome:
        """Handlers whose effect is outside the database (webhooks, other brokers).

        The leading run of such items is handled in order: one query finds the duplicates,
        the handlers run with no transaction open, one statement records the ids of those that
        succeeded. A crash before that record repeats the external effect on redelivery, which
        is the at-least-once those receivers must absorb (by the event id they are given).
        """
        batch: list[_Item] = []
        for item in items:
            if item.spec.transactional:
                break
            batch.append(item)
        done: list[_Item] = []
        dead: list[tuple[_Item, BaseException]] = []
        failed: tuple[_Item, BaseException] | None = None
        fresh: list[str] = []
        duplicates = 0
        try:
            with self.session_factory() as session:
                with session.begin():
                    known = idempotency.known_ids(session, self.name, [i.message_id for i in batch])
                for item in batch:
                    if item.message_id in known:
                        duplicates += 1
                        done.append(item)
                        continue
                    try:
                        item.spec.func(item.event, HandlerContext(self.name, item.delivery, None))
                    except Exception as exc:
                        self._note_failure(item, exc)
                        if is_transient(exc):
                            failed = (item, exc)
                            break
                        dead.append((item, exc))
                        continue
                    known.add(item.message_id)
                    fresh.append(item.message_id)
                    done.append(item)
                if fresh:
                    try:
                        with session.begin():
                            idempotency.record_many(session, self.name, fresh)
                    except IntegrityError:
                        # Another worker recorded one of them meanwhile: record one by one.
                        with session.begin():
                            for message_id in fresh:
                                idempotency.claim(session, self.name, message_id)
        except Exception as exc:
            # The ids could not be recorded (or even checked): nothing counts as done; the
            # first item is retried alone and the rest follow it (their effects may repeat).
            return self._transaction_failed(batch, exc)
        self.status.count("processed", len(done) - duplicates)
        self.status.count("duplicates", duplicates)
        return done, failed, dead

    def _retry_alone(self, consumer: Consumer, item: _Item, first_error: BaseException) -> bool:
        """Retry one transiently failing message with backoff; settle it either way.

        Returns False if interrupted by a stop request (the message is then not settled).
        """
        policy = self.retry
        stop = self.stop_event

        def attempt() -> list[tuple[_Item, BaseException]]:
            _done, failed, dead = self._run_transaction([item])
            if failed is not None:
                raise failed[1]
            return dead

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            self.status.set_state(
                RETRYING,
                f"message {item.message_id}: {type(exc).__name__}; retry in {wait:.1f}s",
                log,
            )

        self.status.set_state(
            RETRYING, f"message {item.message_id}: {type(first_error).__name__}", log
        )
        stop.wait(min(policy.initial_delay, policy.max_delay))
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(max(policy.attempts - 1, 1)) | stop_when_event_set(stop),
            wait=wait_exponential(multiplier=policy.initial_delay, max=policy.max_delay)
            + wait_random(0, policy.jitter),
            sleep=stop.wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            if stop.is_set():
                raise _Interrupted
            dead = retrying(attempt)
        except _Interrupted:
            return False
        except Exception as exc:
            if stop.is_set() and is_transient(exc):
                return False
            if is_transient(exc):
                self._give_up(consumer, item, exc)
            else:
                self._dead_letter_failures(consumer, [(item, exc)])
            return True
        finally:
            if not stop.is_set():
                self.status.set_state(RUNNING, f"consuming {self.queue.name}", log)
        if dead:
            self._dead_letter_failures(consumer, dead)
        else:
            consumer.ack(item.delivery)
        return True

    def _give_up(self, consumer: Consumer, item: _Item, exc: BaseException) -> None:
        """Retries used up: back to the queue, or dead-lettered at the delivery limit."""
        limit = self.queue.delivery_limit
        if limit and item.delivery.attempts >= limit:
            self._dead_letter(
                consumer,
                item.delivery,
                ERROR_RETRIES_EXHAUSTED,
                f"still failing after {item.delivery.attempts} deliveries x "
                f"{self.retry.attempts} attempts; last error {type(exc).__name__}: "
                f"{_safe_text(exc)}",
            )
            return
        log.warning(
            "%s: message %s still failing (%s); returning it to the queue",
            self.name,
            item.message_id,
            type(exc).__name__,
        )
        self._requeue(consumer, item.delivery)

    # -- settling -----------------------------------------------------------------------------

    def _dead_letter_failures(
        self, consumer: Consumer, failures: Sequence[tuple[_Item, BaseException]]
    ) -> None:
        for item, exc in failures:
            if isinstance(exc, PermanentError):
                error_class, reason = exc.error_class, exc.reason
            elif isinstance(exc, ValueError):
                error_class, reason = type(exc).__name__, _safe_text(exc)
            else:
                # Unexpected errors may carry data in their text: the dead letter gets only the
                # class, the log the class and where it happened (the stack, not the text).
                log.error(
                    "%s: handler failed on message %s with %s\n%s",
                    self.name,
                    item.message_id,
                    type(exc).__name__,
                    _frames(exc),
                )
                error_class = type(exc).__name__
                reason = f"unexpected {error_class} in the handler; details in the worker log"
            self._dead_letter(consumer, item.delivery, error_class, reason, item.message_id)

    def _dead_letter(
        self,
        consumer: Consumer,
        delivery: Delivery,
        error_class: str,
        reason: str,
        message_id: str | None = None,
    ) -> None:
        key = message_id or delivery.message.message_id
        now = utcnow()
        first = self._first_failure.pop(key, now)
        consumer.dead_letter(
            delivery,
            DeadLetterReason(
                error_class=error_class,
                reason=reason,
                attempts=delivery.attempts,
                first_failure=first,
                last_failure=now,
            ),
        )
        self.status.count("dead_lettered")
        self.status.record_error(f"{error_class}: {reason}")
        log.warning("%s: dead-lettered message %s (%s: %s)", self.name, key, error_class, reason)

    def _requeue(self, consumer: Consumer, delivery: Delivery) -> None:
        consumer.requeue(delivery)
        self.status.count("requeued")

    def _note_failure(self, item: _Item, exc: BaseException) -> None:
        self.status.count("failed")
        self.status.record_error(exc)
        self._first_failure.setdefault(item.message_id, utcnow())
        self._first_failure.move_to_end(item.message_id)
        while len(self._first_failure) > 10_000:
            self._first_failure.popitem(last=False)

    # -- housekeeping -------------------------------------------------------------------------

    def _maybe_purge(self) -> None:
        self.status.maybe_report(log)
        if time.monotonic() - self._last_purge < self.retention.purge_every:
            return
        self._last_purge = time.monotonic()
        try:
            with self.session_factory() as session, session.begin():
                removed = idempotency.purge(
                    session,
                    self.name,
                    max_age=self.retention.max_age,
                    max_count=self.retention.max_count,
                )
            if removed:
                log.info("%s: forgot %d old processed-message ids", self.name, removed)
        except Exception as exc:  # housekeeping must never stop consumption
            log.warning("%s: purging processed-message ids failed (%s)", self.name, exc)


def _ack_all(consumer: Consumer, deliveries: Sequence[Delivery]) -> None:
    """Ack a committed batch. A consumer that offers ``ack_many`` (e.g. one AMQP ``basic.ack``
    with ``multiple``) gets the whole batch at once; the contract's ``ack`` is the fallback."""
    if not deliveries:
        return
    ack_many = getattr(consumer, "ack_many", None)
    if callable(ack_many):
        ack_many(list(deliveries))
        return
    for delivery in deliveries:
        consumer.ack(delivery)


def _frames(exc: BaseException) -> str:
    """Where an error happened (file, line, function, source line), without its message."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


def _safe_text(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error's text, shortened: driver errors append the SQL and its
    parameters on later lines, and parameters may be personal data."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quietly(close: Callable[[], Any]) -> None:
    try:
        close()
    except (BrokerError, OSError) as exc:
        log.debug("close failed: %s", exc)
