"""The one resilient outbound sender: every POST the hub makes to a partner's endpoint.

Webhook deliveries (``hub.subscriptions.delivery``), DCI notifies and DCI callbacks
(``hub.dci.delivery``) all go through ``OutboundSender``, so they behave alike:

- pooled connections: one ``requests.Session`` per thread (sessions are not thread-safe),
  kept for the sender's life, so a burst of deliveries reuses its TLS connections;
- a connect and a read timeout on every request (requests has none by default);
- no redirects followed: a redirect could carry personal data to a host nobody registered;
- every URL vetted just before its request by the hub's ``EgressPolicy``
  (``hub.workers.egress``), and the connection pinned to the address vetted: a loopback,
  private or link-local destination is refused (DNS rebinding included) unless an operator
  allowed its host, and the attempt says only ``REFUSED_ERROR`` (no status, no network
  detail, so the delivery log cannot map the internal network);
- retries with backoff and jitter (``RetryPolicy``, tenacity) for network errors, timeouts and
  the statuses that mean "later" (``RETRYABLE_STATUSES``); any other answer is final;
- an ``Attempt`` per try that names the failure without echoing the body, for the caller's
  delivery log.

``send`` is the retry loop alone, for senders whose attempt is not an HTTP request (the AMQP
forwarder publishes to another broker with the same policy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from tenacity import RetryCallState, retry_if_result

from hub.workers.egress import REFUSED_ERROR, EgressPolicy, EgressRefused
from hub.workers.retry import RetryPolicy

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Attempt:
    """One try: whether it worked, whether trying again may help, and what happened."""

    ok: bool
    retryable: bool
    status_code: int | None = None
    error: str | None = None
    response: Any = None  # the parsed JSON of a 2xx answer, when asked for
    started_at: datetime | None = None
    duration_ms: int = 0


@dataclass(frozen=True)
class SendResult:
    """The last attempt of a ``send`` and how many attempts it took."""

    last: Attempt
    attempts: int

    @property
    def ok(self) -> bool:
        return self.last.ok


class OutboundSender:
    """POSTs with pooled connections, timeouts and retries (see the module docstring)."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        retryable_statuses: frozenset[int] = RETRYABLE_STATUSES,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.policy = policy
        # Deny by default: a sender built without the hub's settings reaches public hosts only.
        self.egress = egress or EgressPolicy()
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.retryable_statuses = retryable_statuses
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    # -- connections ----------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """This thread's pooled session."""
        found: requests.Session | None = getattr(self._local, "session", None)
        if found is None:
            found = self.egress.session()
            self._local.session = found
            with self._lock:
                self._sessions.append(found)
        return found

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # -- one request ----------------------------------------------------------------------------

    def post_once(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        want_json: bool = False,
    ) -> Attempt:
        """POST once; never raises for what the network or the partner does."""
        started_at = datetime.now(UTC)
        clock = time.monotonic()
        try:
            response = self.egress.post(
                self.session(),
                url,
                data=body,
                headers=dict(headers),
                timeout=(self.connect_timeout, self.timeout),
            )
        except EgressRefused:
            return Attempt(False, False, None, REFUSED_ERROR, started_at=started_at, duration_ms=0)
        except requests.RequestException as exc:
            return Attempt(
                False,
                True,
                None,
                f"network error {type(exc).__name__}",
                started_at=started_at,
                duration_ms=_ms_since(clock),
            )
        code = response.status_code
        if 200 <= code < 300:
            parsed = None
            if want_json:
                try:
                    parsed = response.json()
                except ValueError:
                    parsed = None
            return Attempt(
                True, False, code, None, parsed, started_at=started_at, duration_ms=_ms_since(clock)
            )
        response.close()
        return Attempt(
            False,
            code in self.retryable_statuses,
            code,
            f"HTTP {code}",
            started_at=started_at,
            duration_ms=_ms_since(clock),
        )

    # -- with retries ---------------------------------------------------------------------------

    def send(
        self,
        attempt: Callable[[int], Attempt],
        *,
        stop_event: threading.Event | None = None,
        first_number: int = 1,
    ) -> SendResult:
        """Call ``attempt(number)`` (numbers from ``first_number``) until it works, fails for
        good, the policy's attempts are used up or ``stop_event`` is set; return the last."""
        counter = {"n": first_number - 1}

        def once() -> Attempt:
            counter["n"] += 1
            return attempt(counter["n"])

        def last_outcome(state: RetryCallState) -> Attempt:
            assert state.outcome is not None  # tenacity calls this after an attempt
            result: Attempt = state.outcome.result()
            return result

        retrying = self.policy.retrying(
            retry=retry_if_result(lambda found: not found.ok and found.retryable),
            stop_event=stop_event,
            retry_error_callback=last_outcome,
        )
        last: Attempt = retrying(once)
        return SendResult(last, counter["n"] - first_number + 1)

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str] | Callable[[int], Mapping[str, str]],
        *,
        stop_event: threading.Event | None = None,
        first_number: int = 1,
        want_json: bool = False,
        on_attempt: Callable[[int, Attempt], None] | None = None,
    ) -> SendResult:
        """POST with retries. ``headers`` may depend on the attempt number (e.g. an
        ``X-SR-Attempt`` header); ``on_attempt`` sees every attempt (a delivery log)."""

        def attempt(number: int) -> Attempt:
            found = self.post_once(
                url, body, headers(number) if callable(headers) else headers, want_json=want_json
            )
            if on_attempt is not None:
                on_attempt(number, found)
            return found

        return self.send(attempt, stop_event=stop_event, first_number=first_number)


def _ms_since(clock: float) -> int:
    return int((time.monotonic() - clock) * 1000)
