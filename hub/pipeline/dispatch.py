"""The dispatch worker's handler: deliver each registry event to the subscriptions it matches.

Subscriptions (AMQP queues, signed webhooks, DCI notify) arrive with the notifications step;
until then no subscription can match, so every event is settled here as "no subscribers" and
counted, instead of being dead-lettered as if it were broken.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from hub.workers.handlers import DISPATCH_HANDLERS, HandlerContext

DELIVERIES: Counter[str] = Counter()
_LOCK = threading.Lock()


def handle(event: dict[str, Any], ctx: HandlerContext) -> None:
    with _LOCK:
        DELIVERIES["no_subscribers"] += 1


DISPATCH_HANDLERS.register("#", handle, transactional=False)
