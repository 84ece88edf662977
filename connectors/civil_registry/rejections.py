"""Records refused at the edge, kept where an operator can see them.

A bad feed entry, a notify record without an event type, a delivery we cannot route: each is
refused with a reason while its neighbours go through. The reasons go to the connector's status
(``rows_rejected`` / ``pushes_refused`` and the last error) and the most recent ones are kept
here for the connector listing; reasons name the place (page, reference, index), never a person.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from connectors.base import Clock, ConnectorStatus
from connectors.civil_registry.feed import Rejection

KEEP = 100


class RejectionLog:
    def __init__(self, status: ConnectorStatus, clock: Clock, log: logging.Logger) -> None:
        self._status = status
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._recent: deque[dict[str, str]] = deque(maxlen=KEEP)

    def add(self, rejection: Rejection, counter: str = "rows_rejected") -> None:
        text = f"{rejection.source}: {rejection.reason}"
        self._status.count(counter)
        self._status.record_error(f"refused {text}")
        self._log.warning("refused %s", text)
        with self._lock:
            self._recent.append(
                {
                    "at": self._clock.now().isoformat(),
                    "source": rejection.source,
                    "reason": rejection.reason,
                }
            )

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._recent)
