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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, inspect, select, text
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
from .embedded_consumer import EmbeddedConsumer
from .embedded_storage import (
    BINDINGS,
    MESSAGES,
    PLAIN,
    QUEUES,
    BodyCodec,
    SealedBodies,
    message_row,
)
from .errors import BrokerError, ConnectionClosed, QueueNotFound, Unroutable
from .messages import (
    check_exchange,
    check_message,
    delivery_dead_letter_headers,
    encode_headers,
)
from .topic import route, validate_pattern

log = logging.getLogger(__name__)

T = TypeVar("T")

# The mapped classes' tables, typed as Tables (``__table__`` is typed as any FromClause).


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
                has_tables = inspect(conn).has_table(MESSAGES.name)
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
                    rows.append(message_row(queue, exchange, message, headers, now, self.codec))
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
            [message_row(q, EXCHANGE_DEAD, dead, headers, now, self.codec) for q in targets],
        )
        return True


__all__ = ["BodyCodec", "EmbeddedBroker", "EmbeddedConsumer", "SealedBodies"]
