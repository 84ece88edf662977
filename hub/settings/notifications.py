"""Settings of notification deliveries (``settings.notifications``): how hard the hub tries to
push one event to a subscriber (webhook, DCI callback, forwarded AMQP) and how often it looks
for new subscriptions.

Read by ``hub.subscriptions.delivery``; described in docs/notifications.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hub.settings.base import Section, non_negative, positive, ranged


@dataclass(frozen=True)
class NotificationSettings(Section):
    """Retry policy (tenacity, exponential backoff with jitter) and polling of deliveries."""

    name: ClassVar[str] = "notifications"

    attempts: int = ranged(5, low=1)  # tries per delivery before it is dead-lettered
    initial_delay: float = positive(0.5)  # seconds before the first retry, doubling after
    max_delay: float = positive(30.0)  # longest wait between two tries
    jitter: float = non_negative(0.25)  # up to this many seconds added to each wait at random
    timeout: float = positive(5.0)  # seconds to read an answer (connecting gets at most 3 s)
    refresh: float = positive(1.0)  # seconds between looks at the subscriptions table
    receive_timeout: float = positive(0.2)  # seconds one consumer waits for a message
