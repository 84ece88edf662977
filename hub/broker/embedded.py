"""The embedded broker: durable queue tables in the hub's SQL database.

It keeps the broker contract (``base.py``) without any other service: topic routing with
``*``/``#``, per-consumer prefetch, leases (a visibility timeout) instead of connection-bound
unacked messages, a delivery count, dead-lettering after the queue's delivery limit, and
per-queue depth.

Several worker processes may share one database. On PostgreSQL a claim takes rows with
``FOR UPDATE SKIP LOCKED`` so competing consumers never wait on each other; on SQLite every
write transaction starts with ``BEGIN IMMEDIATE`` (see ``registry_core.db.make_engine``), which
serialises claims across processes through the WAL file lock.

A lease is renewed while its consumer keeps calling ``receive``; a consumer that dies stops
renewing, and after ``visibility_timeout`` its deliveries go to others with ``redelivered``
set. A handler that runs longer than the timeout without returning to ``receive`` may see its
message delivered elsewhere too: at least once, as on RabbitMQ when a heartbeat is missed.

Acks are batched: ``ack`` records the settlement and the next claim (or a short timer, or
``close``) deletes the rows in one transaction. An ack that is lost with its process only means
the message is delivered again after its lease, which at-least-once delivery allows; this is
also what an AMQP ack, which is never confirmed, promises.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, delete, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from registry_core.db import make_engine
from standards.timeutil import utcnow

from .base import (
    EXCHANGE_DEAD,
    QUEUE_DEAD,
    Broker,
    BrokerStatus,
    Consumer,
    DeadLetterReason,
    Delivery,
    Message,
    QueueSpec,
)
from .connecting import ConnectionKeeper
from .embedded_tables import BrokerBinding, BrokerMessage, BrokerQueue
from .errors import BrokerError, ConnectionClosed, QueueNotFound, Unroutable
from .messages import (
    check_exchange,
    check_message,
    decode_headers,
    delivery_dead_letter_headers,
    delivery_limit_reason,
    encode_headers,
)
from .topic import route, validate_pattern

log = logging.getLogger(__name__)

T = TypeVar("T")

# The mapped classes' tables, typed as Tables (``__table__`` is typed as any FromClause).
MESSAGES = cast(Table, BrokerMessage.__table__)
QUEUES = cast(Table, BrokerQueue.__table__)
BINDINGS = cast(Table, BrokerBinding.__table__)

ACK_FLUSH_COUNT = 64  # settle in one transaction once this many acks are pending...
ACK_FLUSH_AGE = 0.5  # ...or once the oldest pending ack is this many seconds old


# Connection failures that waiting cannot cure: report them at once instead of retrying.
_PERMANENT_FAILURES = (
    "password authentication failed",
    "no password supplied",
    "does not exist",  # role or database
    "permission denied",
)


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__


def _describe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


_TOPOLOGY_LOCK = 0x5352_544F_504F  # an arbitrary key of this project's advisory lock


class EmbeddedBroker(Broker):
    """A broker on SQL tables. One instance per thread, like the AMQP one."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        visibility_timeout: float = 60.0,
        wait_for: float | None = None,
        min_poll: float = 0.005,
        max_poll: float = 0.25,
        body_codec: BodyCodec | None = None,
    ) -> None:
        if engine is None:
            if not database_url:
                raise BrokerError("the embedded broker needs a database URL or an engine")
            engine = make_engine(database_url)
            self._owns_engine = True
        else:
            self._owns_engine = False
        self.engine = engine
        self.codec = body_codec or PLAIN
        self.visibility_timeout = float(visibility_timeout)
        self.min_poll = min_poll
        self.max_poll = max_poll
        self._keeper = ConnectionKeeper(_describe(str(engine.url)), wait_for=wait_for)
        self._ready = False
        self._closed = False
        self._consumers: list[EmbeddedConsumer] = []

    # -- connection handling ---------------------------------------------------------------

    def status(self) -> BrokerStatus:
        return self._keeper.status

    def _probe(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                has_tables = inspect(conn).has_table(BrokerMessage.__tablename__)
        except (OperationalError, DBAPIError) as exc:
            detail = str(exc.orig).lower()
            if any(sign in detail for sign in _PERMANENT_FAILURES):
                raise BrokerError(
                    f"the database at {self._keeper.describe} refused the connection "
                    f"({_first_line(exc.orig)}); check the database URL, user and password"
                ) from exc
            raise ConnectionClosed(f"database unreachable: {_first_line(exc.orig)}") from exc
        if not has_tables:
            raise BrokerError(
                "the database has no broker tables; bring the schema up to date first "
                "(hub.dbschema.upgrade_to_head / `srhub db upgrade`)"
            )

    def _ensure_ready(self) -> None:
        if self._closed:
            raise BrokerError("this broker has been closed")
        if not self._ready:
            self._keeper.connect(self._probe)
            self._ready = True

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction, converting lost connections to ``ConnectionClosed``.

        A failed commit raises; nothing is reported as done unless it was committed.
        """
        self._ensure_ready()
        try:
            with self.engine.begin() as conn:
                return work(conn)
        except OperationalError as exc:
            self._lost(exc)
            raise ConnectionClosed(f"database connection lost: {exc.orig}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                self._lost(exc)
                raise ConnectionClosed(f"database connection lost: {exc.orig}") from exc
            raise

    def _lost(self, exc: BaseException) -> None:
        self._ready = False
        self._keeper.mark_lost(type(exc).__name__)

    # -- topology ---------------------------------------------------------------------------

    def declare_topology(self, queues: Sequence[QueueSpec] = ()) -> None:
        specs = [QueueSpec(QUEUE_DEAD, [(EXCHANGE_DEAD, "#")], delivery_limit=0, dead_letter=False)]
        specs.extend(queues)
        for spec in specs:
            for exchange, pattern in spec.bindings:
                check_exchange(exchange)
                validate_pattern(pattern)
            if spec.delivery_limit < 0:
                raise BrokerError(f"queue {spec.name}: delivery_limit must be >= 0")

        def work(conn: Connection) -> None:
            if conn.dialect.name == "postgresql":
                # Workers and publishers declare at start-up at the same moment: serialise the
                # read-then-insert so two of them never race to create the same queue.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TOPOLOGY_LOCK})
            now = utcnow()
            for spec in specs:
                row = conn.execute(
                    select(QUEUES.c.delivery_limit, QUEUES.c.dead_letter).where(
                        QUEUES.c.name == spec.name
                    )
                ).first()
                if row is None:
                    conn.execute(
                        insert(QUEUES).values(
                            name=spec.name,
                            delivery_limit=spec.delivery_limit,
                            dead_letter=spec.dead_letter,
                            declared_at=now,
                        )
                    )
                elif (row.delivery_limit, bool(row.dead_letter)) != (
                    spec.delivery_limit,
                    spec.dead_letter,
                ):
                    raise BrokerError(
                        f"queue {spec.name} exists with delivery_limit={row.delivery_limit}, "
                        f"dead_letter={bool(row.dead_letter)}; declared now with "
                        f"delivery_limit={spec.delivery_limit}, dead_letter={spec.dead_letter}. "
                        "Drain and delete the queue to change its policy."
                    )
                existing = {
                    (row.exchange, row.pattern)
                    for row in conn.execute(
                        select(BINDINGS.c.exchange, BINDINGS.c.pattern).where(
                            BINDINGS.c.queue == spec.name
                        )
                    )
                }
                for exchange, pattern in spec.bindings:
                    if (exchange, pattern) not in existing:
                        conn.execute(
                            insert(BINDINGS).values(
                                queue=spec.name, exchange=exchange, pattern=pattern
                            )
                        )
                        existing.add((exchange, pattern))

        self.run(work)

    def delete_queue(self, queue: str) -> None:
        """Remove a queue, its bindings and its messages (tests and operators)."""

        def work(conn: Connection) -> None:
            conn.execute(delete(MESSAGES).where(MESSAGES.c.queue == queue))
            conn.execute(delete(BINDINGS).where(BINDINGS.c.queue == queue))
            conn.execute(delete(QUEUES).where(QUEUES.c.name == queue))

        self.run(work)

    # -- publishing -------------------------------------------------------------------------

    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        check_exchange(exchange)
        for message in messages:
            check_message(message)
        if not messages:
            return
        unroutable: list[str] = []

        def work(conn: Connection) -> None:
            bindings = [
                (row.queue, row.pattern)
                for row in conn.execute(
                    select(BINDINGS.c.queue, BINDINGS.c.pattern).where(
                        BINDINGS.c.exchange == exchange
                    )
                )
            ]
            now = utcnow()
            rows: list[dict[str, Any]] = []
            for message in messages:
                targets = sorted(route(message.routing_key, bindings))
                if not targets:
                    unroutable.append(message.message_id)
                    continue
                headers = encode_headers(message.headers)
                for queue in targets:
                    rows.append(_row(queue, exchange, message, headers, now, self.codec))
            if rows:
                conn.execute(insert(MESSAGES), rows)

        self.run(work)
        if unroutable:
            raise Unroutable(
                f"{len(unroutable)} message(s) to {exchange} matched no queue binding",
                unroutable,
            )

    # -- consuming --------------------------------------------------------------------------

    def open_consumer(self, queue: str, prefetch: int = 10) -> Consumer:
        if prefetch < 1:
            raise BrokerError("prefetch must be at least 1")
        row = self.run(
            lambda conn: conn.execute(
                select(QUEUES.c.delivery_limit, QUEUES.c.dead_letter).where(QUEUES.c.name == queue)
            ).first()
        )
        if row is None:
            raise QueueNotFound(f"queue {queue!r} has not been declared")
        consumer = EmbeddedConsumer(
            self, queue, prefetch, row.delivery_limit, bool(row.dead_letter)
        )
        self._consumers.append(consumer)
        return consumer

    def queue_depth(self, queue: str) -> int:
        def work(conn: Connection) -> int:
            if conn.execute(select(QUEUES.c.name).where(QUEUES.c.name == queue)).first() is None:
                raise QueueNotFound(f"queue {queue!r} has not been declared")
            return int(
                conn.execute(
                    select(func.count(MESSAGES.c.id)).where(
                        MESSAGES.c.queue == queue, MESSAGES.c.visible_at <= utcnow()
                    )
                ).scalar_one()
            )

        return self.run(work)

    def purge(self, queue: str) -> int:
        def work(conn: Connection) -> int:
            if conn.execute(select(QUEUES.c.name).where(QUEUES.c.name == queue)).first() is None:
                raise QueueNotFound(f"queue {queue!r} has not been declared")
            result = conn.execute(
                delete(MESSAGES).where(MESSAGES.c.queue == queue, MESSAGES.c.visible_at <= utcnow())
            )
            return int(result.rowcount or 0)

        return self.run(work)

    def close(self) -> None:
        if self._closed:
            return
        for consumer in list(self._consumers):
            consumer.close()
        self._closed = True
        self._keeper.mark_closed()
        if self._owns_engine:
            self.engine.dispose()

    # -- dead-lettering, shared by consumers --------------------------------------------------

    def _dead_letter_in(
        self, conn: Connection, delivery: Delivery, reason: DeadLetterReason
    ) -> bool:
        """Insert the dead copy of ``delivery`` into the queues bound to ``sr.dead``; False when
        no queue is bound (then nothing was written)."""
        bindings = [
            (row.queue, row.pattern)
            for row in conn.execute(
                select(BINDINGS.c.queue, BINDINGS.c.pattern).where(
                    BINDINGS.c.exchange == EXCHANGE_DEAD
                )
            )
        ]
        targets = sorted(route(delivery.message.routing_key, bindings))
        if not targets:
            return False
        dead = Message(
            body=delivery.message.body,
            routing_key=delivery.message.routing_key,
            message_id=delivery.message.message_id,
            headers=delivery_dead_letter_headers(delivery, reason),
            content_type=delivery.message.content_type,
        )
        headers = encode_headers(dead.headers)
        now = utcnow()
        conn.execute(
            insert(MESSAGES),
            [_row(q, EXCHANGE_DEAD, dead, headers, now, self.codec) for q in targets],
        )
        return True


def _row(
    queue: str, exchange: str, message: Message, headers: str, now: datetime, codec: BodyCodec
) -> dict[str, Any]:
    return {
        "queue": queue,
        "message_id": message.message_id,
        "exchange": exchange,
        "routing_key": message.routing_key,
        "content_type": message.content_type,
        "headers": headers,
        "body": codec.seal(bytes(message.body)),
        "enqueued_at": now,
        "visible_at": now,
        "attempts": 0,
        "locked_by": None,
        "first_delivered_at": None,
    }


class BodyCodec:
    """How message bodies are kept in the queue table. The base class keeps them as they are;
    ``SealedBodies`` encrypts them, so partner records (which carry personal identifiers) are
    never in clear in the database that also holds the registry."""

    def seal(self, body: bytes) -> bytes:
        return body

    def unseal(self, stored: bytes) -> bytes:
        return stored


PLAIN = BodyCodec()
_SEALED_MARK = b"\x00srseal1"


class SealedBodies(BodyCodec):
    """AES-GCM sealing with the hub's identifier key (``seal``/``unseal`` callables given).

    Stored bodies carry a marker, so a queue written before sealing was switched on (or by a
    codec-less test client) is still read correctly.
    """

    def __init__(self, seal: Callable[[bytes], bytes], unseal: Callable[[bytes], bytes]) -> None:
        self._seal, self._unseal = seal, unseal

    def seal(self, body: bytes) -> bytes:
        return _SEALED_MARK + self._seal(body)

    def unseal(self, stored: bytes) -> bytes:
        if stored.startswith(_SEALED_MARK):
            return self._unseal(stored[len(_SEALED_MARK) :])
        return stored


class EmbeddedConsumer(Consumer):
    """Claims up to ``prefetch`` messages at a time under a lease held in the rows themselves."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        queue: str,
        prefetch: int,
        delivery_limit: int,
        dead_letter: bool,
    ) -> None:
        self.broker = broker
        self.queue = queue
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self.dead_letter_enabled = dead_letter
        self.id = uuid.uuid4().hex
        self._buffer: deque[Delivery] = deque()  # claimed, not yet handed out
        self._held: dict[int, Delivery] = {}  # handed out, not yet settled
        self._pending_acks: list[int] = []
        self._pending_since = 0.0
        self._lease_renewed = time.monotonic()
        self._closed = False

    # -- the claim --------------------------------------------------------------------------

    def _flush_in(self, conn: Connection) -> None:
        if self._pending_acks:
            conn.execute(
                delete(MESSAGES).where(
                    MESSAGES.c.id.in_(self._pending_acks), MESSAGES.c.locked_by == self.id
                )
            )

    def _renew_leases_in(self, conn: Connection, now: datetime) -> None:
        # Keep what this live consumer holds from being redelivered elsewhere; only a dead
        # consumer's leases run out.
        if time.monotonic() - self._lease_renewed < self.broker.visibility_timeout / 3:
            return
        if self._held or self._buffer:
            conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.locked_by == self.id)
                .values(visible_at=now + timedelta(seconds=self.broker.visibility_timeout))
            )
        self._lease_renewed = time.monotonic()

    def _claim(self, limit: int) -> list[Delivery]:
        def work(conn: Connection) -> list[Delivery]:
            now = utcnow()
            self._flush_in(conn)
            self._renew_leases_in(conn, now)
            rows = conn.execute(
                select(MESSAGES)
                .where(MESSAGES.c.queue == self.queue, MESSAGES.c.visible_at <= now)
                .order_by(MESSAGES.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            claimed: list[Any] = []
            for row in rows:
                if self.delivery_limit and row.attempts >= self.delivery_limit:
                    self._give_up_in(conn, row, now)
                else:
                    claimed.append(row)
            if not claimed:
                return []
            lease_end = now + timedelta(seconds=self.broker.visibility_timeout)
            ids = [row.id for row in claimed]
            conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id.in_(ids))
                .values(
                    locked_by=self.id,
                    visible_at=lease_end,
                    attempts=MESSAGES.c.attempts + 1,
                    first_delivered_at=func.coalesce(MESSAGES.c.first_delivered_at, now),
                )
            )
            return [self._delivery(row) for row in claimed]

        deliveries = self.broker.run(work)
        self._pending_acks = []
        self._lease_renewed = time.monotonic()
        return deliveries

    def _delivery(self, row: Any) -> Delivery:
        return Delivery(
            message=Message(
                body=self.broker.codec.unseal(bytes(row.body)),
                routing_key=row.routing_key,
                message_id=row.message_id,
                headers=decode_headers(row.headers),
                content_type=row.content_type,
            ),
            queue=self.queue,
            exchange=row.exchange,
            tag=(row.id, row.attempts + 1),  # one tag per delivery, not per message
            redelivered=row.attempts > 0,
            attempts=row.attempts + 1,
        )

    def _give_up_in(self, conn: Connection, row: Any, now: datetime) -> None:
        """Dead-letter (or drop, if the queue has no dead-lettering) a message that reached
        the delivery limit, inside the caller's transaction."""
        if self.dead_letter_enabled:
            delivery = self._delivery(row)
            delivery = Delivery(
                message=delivery.message,
                queue=self.queue,
                exchange=row.exchange,
                tag=(row.id, row.attempts),
                redelivered=True,
                attempts=row.attempts,
            )
            reason = delivery_limit_reason(
                row.attempts, self.delivery_limit, row.first_delivered_at or now, now
            )
            if not self.broker._dead_letter_in(conn, delivery, reason):
                # Nowhere to put it: keep it rather than lose it, and look again later.
                log.error(
                    "queue %s: message %s reached its delivery limit but no queue is bound "
                    "to %s; keeping it",
                    self.queue,
                    row.message_id,
                    EXCHANGE_DEAD,
                )
                conn.execute(
                    update(MESSAGES)
                    .where(MESSAGES.c.id == row.id)
                    .values(visible_at=now + timedelta(seconds=self.broker.visibility_timeout))
                )
                return
        else:
            log.warning(
                "queue %s: dropping message %s after %d deliveries (no dead-lettering)",
                self.queue,
                row.message_id,
                row.attempts,
            )
        conn.execute(delete(MESSAGES).where(MESSAGES.c.id == row.id))

    # -- the Consumer contract ----------------------------------------------------------------

    def receive(self, timeout: float) -> Delivery | None:
        self._check_open()
        deadline = time.monotonic() + max(0.0, timeout)
        sleep = self.broker.min_poll
        while True:
            if self._pending_acks and time.monotonic() - self._pending_since >= ACK_FLUSH_AGE:
                self._flush()
            if self._buffer:
                delivery = self._buffer.popleft()
                self._held[delivery.tag] = delivery
                return delivery
            room = self.prefetch - len(self._held)
            if room > 0:
                self._buffer.extend(self._claim(room))
                if self._buffer:
                    continue
            elif time.monotonic() - self._lease_renewed >= self.broker.visibility_timeout / 3:
                self.broker.run(lambda conn: self._renew_leases_in(conn, utcnow()))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(sleep, remaining))
            sleep = min(sleep * 2, self.broker.max_poll)

    def _take(self, delivery: Delivery) -> Delivery:
        self._check_open()
        held = self._held.pop(delivery.tag, None)
        if held is None:
            raise BrokerError(
                f"delivery {delivery.tag!r} is not held by this consumer (already settled, "
                "or received by another consumer)"
            )
        return held

    def ack(self, delivery: Delivery) -> None:
        self._take(delivery)
        if not self._pending_acks:
            self._pending_since = time.monotonic()
        self._pending_acks.append(delivery.tag[0])
        # Usually the next claim settles them in its own transaction; flush here only when a
        # consumer holding many deliveries acks them without asking for more.
        if len(self._pending_acks) >= max(ACK_FLUSH_COUNT, self.prefetch):
            self._flush()

    def _flush(self) -> None:
        if self._pending_acks:
            self.broker.run(self._flush_in)
            self._pending_acks = []

    def requeue(self, delivery: Delivery) -> None:
        held = self._take(delivery)

        def work(conn: Connection) -> None:
            now = utcnow()
            row = conn.execute(
                select(MESSAGES).where(
                    MESSAGES.c.id == held.tag[0], MESSAGES.c.locked_by == self.id
                )
            ).first()
            if row is None:  # lease lost: it is already someone else's to deliver
                return
            if self.delivery_limit and row.attempts >= self.delivery_limit:
                self._give_up_in(conn, row, now)
                return
            conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == held.tag[0])
                .values(locked_by=None, visible_at=now)
            )

        self.broker.run(work)

    def dead_letter(self, delivery: Delivery, reason: DeadLetterReason) -> None:
        held = self._take(delivery)

        def work(conn: Connection) -> None:
            if not self.broker._dead_letter_in(conn, held, reason):
                raise Unroutable(
                    f"no queue is bound to {EXCHANGE_DEAD} for {held.message.routing_key!r}",
                    [held.message.message_id],
                )
            conn.execute(
                delete(MESSAGES).where(
                    MESSAGES.c.id == held.tag[0], MESSAGES.c.locked_by == self.id
                )
            )

        try:
            self.broker.run(work)
        except BaseException:
            self._held[held.tag] = held  # still ours: the caller may retry or requeue
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.broker._consumers and self in self.broker._consumers:
            self.broker._consumers.remove(self)

        def work(conn: Connection) -> None:
            # Prefetched-but-not-handed-out messages count as delivered, exactly as RabbitMQ
            # counts the prefetched deliveries of a closed channel.
            self._flush_in(conn)
            now = utcnow()
            conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.locked_by == self.id)
                .values(locked_by=None, visible_at=now)
            )

        try:
            self.broker.run(work)
        except BrokerError as exc:
            # The leases run out on their own; nothing is lost, delivery is only later.
            log.warning("queue %s: could not release deliveries on close (%s)", self.queue, exc)
        self._buffer.clear()
        self._held.clear()
        self._pending_acks = []

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerError("this consumer has been closed")
