"""POSTing signed DCI bodies (callbacks, notifications) to a partner.

All outbound DCI HTTP goes through ``post_envelope``, on the hub's one outbound sender
(``hub.workers.outbound.OutboundSender``, the same one webhook deliveries use): a connect and
read timeout on every attempt, no redirects followed (a redirect could carry personal data to a
host nobody registered), pooled connections, retries with backoff (tenacity) only for network
errors and the statuses that mean "later" (429, 5xx...), and a result that names the failure
without echoing the body. The DCI server keeps one sender for its callbacks
(``callback_sender``); a caller without one gets a sender for the call.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hub.workers.egress import EgressPolicy
from hub.workers.outbound import OutboundSender
from hub.workers.retry import RetryPolicy

log = logging.getLogger(__name__)

HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status_code: int | None
    attempts: int
    error: str | None = None
    response_json: Any = None


def callback_sender(
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 0.5,
    *,
    egress: EgressPolicy | None = None,
) -> OutboundSender:
    """A sender for DCI bodies: ``attempts`` tries, waits doubling from ``backoff`` seconds;
    ``egress`` the hub's outbound rule (None: public hosts only)."""
    policy = RetryPolicy(
        attempts=max(attempts, 1), initial_delay=backoff, max_delay=backoff * 8, jitter=0.0
    )
    return OutboundSender(policy, timeout=timeout, connect_timeout=5.0, egress=egress)


def post_envelope(
    url: str,
    body: dict[str, Any],
    *,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 0.5,
    sender: OutboundSender | None = None,
) -> DeliveryResult:
    """POST ``body`` as JSON with ``sender`` (its own policy), or with a sender for this
    call made from ``timeout``, ``attempts`` and ``backoff``."""
    own = sender is None
    http = sender or callback_sender(timeout, attempts, backoff)
    try:
        result = http.post(url, json.dumps(body, allow_nan=False).encode(), HEADERS, want_json=True)
    finally:
        if own:
            http.close()
    last = result.last
    if last.ok:
        return DeliveryResult(True, last.status_code, result.attempts, None, last.response)
    log.warning(
        "DCI delivery to %s failed after %d attempt(s): %s",
        urlsplit(url).netloc,
        result.attempts,
        last.error,
    )
    return DeliveryResult(False, last.status_code, result.attempts, last.error)
