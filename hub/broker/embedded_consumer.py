"""The embedded broker's consumer: claims messages under a lease kept in the rows themselves,
hands them out one by one, and settles them (acks batched, requeues, dead letters)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from standards.timeutil import utcnow

from .base import EXCHANGE_DEAD, Consumer, DeadLetterReason, Delivery, Message
from .embedded_storage import MESSAGES
from .errors import BrokerError, Unroutable
from .messages import decode_headers, delivery_limit_reason

if TYPE_CHECKING:
    from .embedded import EmbeddedBroker

log = logging.getLogger(__name__)

ACK_FLUSH_COUNT = 64  # settle in one transaction once this many acks are pending...
ACK_FLUSH_AGE = 0.5  # ...or once the oldest pending ack is this many seconds old


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
