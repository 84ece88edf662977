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

Connecting, reconnecting and stopping are the one worker loop's (``hub.workers.loop``). What
the handlers achieved reaches the middleware the runtime was given (``hub.workers.middleware``):
``after`` only once a message's effect is committed, so a batch redone after a failure never
reports a message twice as done.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import RetryCallState, retry_if_exception

from hub.broker.base import Consumer, DeadLetterReason, Delivery, QueueSpec
from hub.workers import idempotency
from hub.workers.connect import BrokerFactory
from hub.workers.errors import PermanentError, is_transient
from hub.workers.handlers import (
    APPLIED,
    HandlerContext,
    HandlerRegistry,
    HandlerResult,
    HandlerSpec,
)
from hub.workers.loop import ConsumerLoop
from hub.workers.middleware import Middleware, MiddlewareChain
from hub.workers.retry import RetryPolicy
from hub.workers.status import RETRYING, RUNNING, WorkerStatus
from hub.workers.topology import WORKER_QUEUES
from standards.cloudevents import CloudEvent, EnvelopeError, parse_envelope
from standards.timeutil import utcnow

log = logging.getLogger(__name__)

ERROR_INVALID_ENVELOPE = "InvalidEnvelope"
ERROR_NO_HANDLER = "NoHandler"
ERROR_RETRIES_EXHAUSTED = "RetriesExhausted"


__all__ = ["ConsumerRuntime", "Retention", "RetryPolicy"]


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
    result: HandlerResult = APPLIED  # what the handler reported, once it succeeded

    @property
    def message_id(self) -> str:
        return str(self.event["id"])


_Outcome = tuple[list[_Item], tuple[_Item, BaseException] | None, list[tuple[_Item, BaseException]]]


_DUPLICATE = "duplicate"


class _SlowPathNeeded(Exception):
    """The fast path met a failure; redo the batch with a savepoint per message."""


class _Interrupted(Exception):
    """Retrying stopped because the worker is shutting down."""


class ConsumerRuntime(ConsumerLoop):
    """Consumes one queue with a handler registry until told to stop.

    ``broker_factory`` makes a new broker connection (called again after a connection loss);
    ``session_factory`` gives database sessions for handlers and the idempotency store;
    ``middleware`` watches every handling (monitoring, counters).
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
        middleware: Iterable[Middleware] = (),
    ) -> None:
        super().__init__(name, queue, broker_factory, topology, prefetch=prefetch, status=status)
        self.session_factory = session_factory
        self.handlers = handlers
        self.batch_size = max(min(batch_size, self.prefetch), 1)
        self.receive_timeout = receive_timeout
        self.retry = retry or RetryPolicy()
        self.retention = retention or Retention()
        self.middleware = MiddlewareChain(middleware)
        self._first_failure: OrderedDict[str, datetime] = OrderedDict()
        self._last_purge = time.monotonic()

    def consume(self, consumer: Consumer) -> None:
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
        handled: list[_Item] = []
        dead: list[tuple[_Item, BaseException]] = []
        failed: tuple[_Item, BaseException] | None = None
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
                    if not isinstance(outcome, BaseException):  # done, or a duplicate
                        done.append(item)
                        if outcome is None:
                            handled.append(item)
                    elif is_transient(outcome):
                        failed = (item, outcome)
                        break
                    else:
                        dead.append((item, outcome))
        except Exception as exc:
            return self._transaction_failed(batch, exc)
        self._committed(done, handled)
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
        handled: list[_Item] = []
        with self.session_factory() as session, session.begin():
            known = idempotency.known_ids(session, self.name, [i.message_id for i in batch])
            for item in batch:
                if item.message_id in known:
                    done.append(item)
                    continue
                known.add(item.message_id)  # a second copy in the same batch is a duplicate
                try:
                    self._call(item, session)
                except Exception as exc:
                    if isinstance(exc, OperationalError | DisconnectionError):
                        raise  # the database itself is in trouble: a transient failure
                    raise _SlowPathNeeded from exc
                handled.append(item)
                done.append(item)
            try:
                idempotency.record_many(session, self.name, [i.message_id for i in handled])
            except IntegrityError as exc:
                raise _SlowPathNeeded from exc
        self._committed(done, handled)
        return done, None, []

    def _handle_inside(self, session: Session, item: _Item) -> BaseException | str | None:
        """Claim the id and run the handler in a savepoint: the error, "duplicate" or None."""
        try:
            with session.begin_nested():
                if not idempotency.claim(session, self.name, item.message_id):
                    return _DUPLICATE
                self._call(item, session)
        except Exception as exc:
            self._handler_failed(item, exc)
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
        handled: list[_Item] = []
        dead: list[tuple[_Item, BaseException]] = []
        failed: tuple[_Item, BaseException] | None = None
        try:
            with self.session_factory() as session:
                with session.begin():
                    known = idempotency.known_ids(session, self.name, [i.message_id for i in batch])
                for item in batch:
                    if item.message_id in known:
                        done.append(item)
                        continue
                    try:
                        self._call(item, None)
                    except Exception as exc:
                        self._handler_failed(item, exc)
                        if is_transient(exc):
                            failed = (item, exc)
                            break
                        dead.append((item, exc))
                        continue
                    known.add(item.message_id)
                    handled.append(item)
                    done.append(item)
                fresh = [i.message_id for i in handled]
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
        self._committed(done, handled)
        return done, failed, dead

    # -- one handler run ------------------------------------------------------------------------

    def _context(self, item: _Item, session: Session | None) -> HandlerContext:
        return HandlerContext(self.name, item.delivery, session, self.handlers.services)

    def _call(self, item: _Item, session: Session | None) -> None:
        """Run the item's handler and keep what it reported."""
        if self.middleware:
            self.middleware.before(self._context(item, session), item.event)
        result = item.spec.func(item.event, self._context(item, session))
        item.result = result if isinstance(result, HandlerResult) else APPLIED

    def _handler_failed(self, item: _Item, exc: BaseException) -> None:
        self._note_failure(item, exc)
        if self.middleware:
            self.middleware.failed(self._context(item, None), item.event, exc)

    def _committed(self, done: Sequence[_Item], handled: Sequence[_Item]) -> None:
        """``done`` is settled (``handled`` ran their handler, the rest were duplicates):
        count it and tell the middleware."""
        self.status.count("processed", len(handled))
        self.status.count("duplicates", len(done) - len(handled))
        if self.middleware:
            for item in handled:
                self.middleware.after(self._context(item, None), item.event, item.result)

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
        retrying = policy.retrying(
            retry=retry_if_exception(is_transient),
            stop_event=stop,
            attempts=max(policy.attempts - 1, 1),  # the first run was in the batch
            before_sleep=before_sleep,
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
