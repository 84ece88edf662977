"""Operating on dead letters: see why messages failed, replay them once the cause is fixed,
or discard them on purpose.

Dead letters live in the ``sr.dead.letters`` queue with ``x-sr-*`` headers saying why. Replay
publishes the original body, with its original message id, back to the exchange and routing key
it first came through; consumers that already handled it skip it (their idempotency store is
keyed by message id). Messages that a replay or discard does not select go back to the
dead-letter queue unchanged, so an operator's filter never loses anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.broker.base import (
    EXCHANGE_DEAD,
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_LAST_FAILURE,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_QUEUE,
    H_ORIGINAL_ROUTING_KEY,
    H_REASON,
    QUEUE_DEAD,
    Broker,
    Delivery,
    Message,
)

H_REPLAYS = "x-sr-replays"
_SR_HEADERS = (
    H_ERROR_CLASS,
    H_REASON,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_QUEUE,
    H_ORIGINAL_ROUTING_KEY,
    H_ATTEMPTS,
    H_FIRST_FAILURE,
    H_LAST_FAILURE,
)


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    routing_key: str
    error_class: str
    reason: str
    original_exchange: str
    original_queue: str
    attempts: int
    first_failure: str
    last_failure: str
    replays: int

    @classmethod
    def of(cls, delivery: Delivery) -> DeadLetter:
        headers = dict(delivery.message.headers)
        return cls(
            message_id=delivery.message.message_id,
            routing_key=str(headers.get(H_ORIGINAL_ROUTING_KEY, delivery.message.routing_key)),
            error_class=str(headers.get(H_ERROR_CLASS, "")),
            reason=str(headers.get(H_REASON, "")),
            original_exchange=str(headers.get(H_ORIGINAL_EXCHANGE, "")),
            original_queue=str(headers.get(H_ORIGINAL_QUEUE, "")),
            attempts=int(headers.get(H_ATTEMPTS, 0) or 0),
            first_failure=str(headers.get(H_FIRST_FAILURE, "")),
            last_failure=str(headers.get(H_LAST_FAILURE, "")),
            replays=int(headers.get(H_REPLAYS, 0) or 0),
        )


@dataclass
class Outcome:
    selected: list[DeadLetter] = field(default_factory=list)
    kept: int = 0


Selector = Callable[[DeadLetter], bool]


def select(
    *,
    message_ids: Sequence[str] = (),
    error_class: str | None = None,
    routing_key: str | None = None,
) -> Selector:
    ids = set(message_ids)

    def matches(letter: DeadLetter) -> bool:
        return (
            (not ids or letter.message_id in ids)
            and (error_class is None or letter.error_class == error_class)
            and (routing_key is None or letter.routing_key == routing_key)
        )

    return matches


def _sweep(
    broker: Broker,
    selector: Selector,
    act: Callable[[Delivery, DeadLetter], None],
    limit: int,
    wait: float,
) -> Outcome:
    """Take every dead letter once: act on the selected ones, put the others back."""
    outcome = Outcome()
    depth = broker.queue_depth(QUEUE_DEAD)
    consumer = broker.open_consumer(QUEUE_DEAD, prefetch=100)
    try:
        for _ in range(depth):
            delivery = consumer.receive(wait)
            if delivery is None:
                break
            letter = DeadLetter.of(delivery)
            if selector(letter) and len(outcome.selected) < limit:
                act(delivery, letter)
                outcome.selected.append(letter)
            else:
                broker.publish(EXCHANGE_DEAD, [delivery.message])
                outcome.kept += 1
            consumer.ack(delivery)
    finally:
        consumer.close()
    return outcome


def list_dead_letters(broker: Broker, limit: int = 100, wait: float = 1.0) -> list[DeadLetter]:
    """What is dead now, oldest first (read by taking and putting back each message)."""
    return _sweep(
        broker,
        lambda _l: True,
        lambda d, _l: broker.publish(EXCHANGE_DEAD, [d.message]),
        limit,
        wait,
    ).selected


def replay(broker: Broker, selector: Selector, limit: int = 1000, wait: float = 1.0) -> Outcome:
    """Send the selected dead letters back where they came from."""

    def send_back(delivery: Delivery, letter: DeadLetter) -> None:
        headers: dict[str, Any] = {
            k: v for k, v in delivery.message.headers.items() if k not in _SR_HEADERS
        }
        headers[H_REPLAYS] = letter.replays + 1
        exchange = letter.original_exchange or EXCHANGE_DEAD
        broker.publish(
            exchange,
            [
                Message(
                    delivery.message.body,
                    letter.routing_key,
                    letter.message_id,
                    headers,
                    delivery.message.content_type,
                )
            ],
        )

    return _sweep(broker, selector, send_back, limit, wait)


def discard(broker: Broker, selector: Selector, limit: int = 1000, wait: float = 1.0) -> Outcome:
    """Drop the selected dead letters for good (an operator's decision)."""
    return _sweep(broker, selector, lambda _d, _l: None, limit, wait)
