"""Consumer processes for the contract tests. They must be module-level functions so that a
``spawn``-started process can import them; a test kills or joins them."""

from __future__ import annotations

import time
from typing import Any

from hub.broker import connect


def hold_one_delivery(url: str, options: dict[str, Any], queue: str, report: Any) -> None:
    """Receive one message, report its id, then hang without acking until killed."""
    broker = connect(url, **options)
    consumer = broker.open_consumer(queue, prefetch=1)
    delivery = consumer.receive(timeout=20)
    report.put(delivery.message.message_id if delivery else None)
    time.sleep(120)


def consume_until_idle(
    url: str,
    options: dict[str, Any],
    queue: str,
    prefetch: int,
    work_seconds: float,
    go: Any,
    report: Any,
) -> None:
    """Once ``go`` is set, handle (``work_seconds`` each) and ack everything until the queue
    stays quiet for a second; report the ids seen. Waiting for ``go`` lets competing consumers
    start together."""
    broker = connect(url, **options)
    consumer = broker.open_consumer(queue, prefetch=prefetch)
    report.put("ready")
    go.wait(30)
    seen: list[str] = []
    try:
        while True:
            delivery = consumer.receive(timeout=1.0)
            if delivery is None:
                break
            seen.append(delivery.message.message_id)
            time.sleep(work_seconds)
            consumer.ack(delivery)
    finally:
        consumer.close()
        broker.close()
        report.put(seen)
