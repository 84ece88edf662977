"""Checks and header conventions that both backends apply in the same way.

Keeping them in one place is what makes the backends interchangeable: a message that one
backend refuses, the other refuses too, with the same reason, before anything is sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .base import (
    EXCHANGES,
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_FIRST_FAILURE,
    H_LAST_FAILURE,
    H_ORIGINAL_EXCHANGE,
    H_ORIGINAL_QUEUE,
    H_ORIGINAL_ROUTING_KEY,
    H_REASON,
    DeadLetterReason,
    Delivery,
    Message,
)
from .errors import BrokerError
from .topic import InvalidRoutingKey, validate_routing_key

MAX_MESSAGE_ID = 255
DELIVERY_LIMIT_ERROR = "DeliveryLimitExceeded"


class InvalidMessage(BrokerError, ValueError):
    """A message that cannot be published as given; the text says what to fix."""


def check_exchange(exchange: str) -> None:
    if exchange not in EXCHANGES:
        raise InvalidMessage(f"unknown exchange {exchange!r}; use one of {', '.join(EXCHANGES)}")


def _check_header_value(name: str, value: Any) -> None:
    # JSON types only: the embedded queue stores headers as JSON and AMQP field tables
    # carry them as is, so both give back exactly what was published.
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMessage(f"header {name!r} is not a finite number")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_header_value(name, item)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidMessage(f"header {name!r} has a non-string key")
            _check_header_value(name, item)
        return
    raise InvalidMessage(
        f"header {name!r} has a {type(value).__name__} value; use JSON types "
        "(str, int, float, bool, None, list, dict)"
    )


def check_message(message: Message) -> None:
    """Raise ``InvalidMessage`` for anything one of the backends could not carry faithfully."""
    if not isinstance(message.body, bytes | bytearray):
        raise InvalidMessage("message body must be bytes")
    if not isinstance(message.message_id, str) or not message.message_id:
        raise InvalidMessage("every message needs a non-empty string message_id")
    if len(message.message_id) > MAX_MESSAGE_ID:
        raise InvalidMessage(f"message_id is longer than {MAX_MESSAGE_ID} characters")
    try:
        validate_routing_key(message.routing_key)
    except InvalidRoutingKey as exc:
        raise InvalidMessage(str(exc)) from exc
    for name, value in message.headers.items():
        if not isinstance(name, str):
            raise InvalidMessage("header names must be strings")
        _check_header_value(name, value)


def encode_headers(headers: Mapping[str, Any]) -> str:
    return json.dumps(dict(headers), separators=(",", ":"), sort_keys=True)


def decode_headers(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def dead_letter_headers(
    message: Message, reason: DeadLetterReason, *, exchange: str, queue: str
) -> dict[str, Any]:
    """The headers of a dead-lettered copy of ``message``: its own headers plus why it failed
    and where from (the ``x-sr-*`` set, every one of them, always).

    The one place these headers are built: both backends' ``dead_letter`` (used by the worker
    runtime, the delivery senders and the AMQP forwarder), RabbitMQ's own ``x-death``
    translation and the relay's copy of a malformed outbox row all call it, so a dead letter
    reads the same whoever wrote it. ``queue`` is where the message was when it failed (the
    relay names its outbox, which is not a queue).
    """
    headers = dict(message.headers)
    headers.update(
        {
            H_ERROR_CLASS: reason.error_class,
            H_REASON: reason.reason,
            H_ORIGINAL_EXCHANGE: exchange,
            H_ORIGINAL_ROUTING_KEY: str(message.routing_key)[:MAX_MESSAGE_ID],
            H_ORIGINAL_QUEUE: queue,
            H_ATTEMPTS: int(reason.attempts),
            H_FIRST_FAILURE: reason.first_failure.isoformat(),
            H_LAST_FAILURE: reason.last_failure.isoformat(),
        }
    )
    return headers


def delivery_dead_letter_headers(delivery: Delivery, reason: DeadLetterReason) -> dict[str, Any]:
    """``dead_letter_headers`` for a delivery: from the exchange and queue it came through."""
    return dead_letter_headers(
        delivery.message, reason, exchange=delivery.exchange, queue=delivery.queue
    )


def delivery_limit_reason(
    attempts: int, limit: int, first: datetime, last: datetime
) -> DeadLetterReason:
    """The reason written when a queue gives up on a message it could not get acknowledged."""
    return DeadLetterReason(
        error_class=DELIVERY_LIMIT_ERROR,
        reason=(
            f"not acknowledged after {attempts} deliveries (queue delivery limit {limit}); "
            "consumers kept failing or crashing on it"
        ),
        attempts=attempts,
        first_failure=first,
        last_failure=last,
    )
