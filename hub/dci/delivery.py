"""POSTing signed DCI bodies (callbacks, notifications) to a partner, with a few retries.

All outbound DCI HTTP goes through ``post_envelope`` so tests and operators see one behaviour:
a connect/read timeout on every attempt (requests has none by default), no redirects followed
(a redirect could carry personal data to a host nobody registered), retries only for network
errors and 5xx/429 answers, and a result that names the failure without echoing the body.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status_code: int | None
    attempts: int
    error: str | None = None
    response_json: Any = None


def post_envelope(
    url: str,
    body: dict[str, Any],
    *,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 0.5,
    session: requests.Session | None = None,
) -> DeliveryResult:
    http = session or requests.Session()
    error: str | None = None
    status: int | None = None
    for attempt in range(1, attempts + 1):
        try:
            response = http.post(
                url,
                json=body,
                timeout=(min(timeout, 5.0), timeout),
                allow_redirects=False,
                headers={"Content-Type": "application/json"},
            )
        except requests.RequestException as exc:
            error, status = f"network error: {type(exc).__name__}", None
        else:
            status = response.status_code
            if 200 <= status < 300:
                try:
                    parsed = response.json()
                except ValueError:
                    parsed = None
                return DeliveryResult(True, status, attempt, None, parsed)
            error = f"HTTP {status}"
            if status not in RETRY_STATUSES:
                break
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    log.warning("DCI delivery to %s failed after %d attempt(s): %s", _host(url), attempt, error)
    return DeliveryResult(False, status, attempt, error)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc
