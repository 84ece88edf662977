"""Failed logins counted where every API process sees them.

The dashboard's login form and OpenRosa's Basic/Digest logins refuse a client after a few
failures in a window. Counted in one process's memory, N gunicorn processes behind a load
balancer would each allow the full count: N times the guesses. These counters live in the
rate limits' storage (``hub.ratelimit.storage``: the hub's database; ``storage = "memory"``
keeps one process's count, for tests and a single process), so one limit holds across all
processes and hosts.

The window is fixed (``limits``' fixed-window strategy, like the request limits): a client
that spent its failures waits until the window ends, at most ``window_seconds``. A success
clears the key. Keys are digests: neither user names nor addresses are stored in clear.
If the storage cannot be reached the login goes on (logged), as the request limits do: the
throttle slows guessing, it must not lock everyone out.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from hub.ratelimit.clients import digest

log = logging.getLogger(__name__)


class LoginFailures:
    """``limit`` failed logins per key in ``window_seconds``, in a shared storage."""

    def __init__(self, storage: Storage, kind: str, limit: int, window_seconds: float) -> None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("a login throttle needs a limit and a window of at least 1")
        self._limiter = FixedWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(limit, max(1, round(window_seconds)))
        self._kind = kind

    def _key(self, parts: tuple[str, ...]) -> str:
        return digest(f"login-{self._kind}", "\x1f".join(parts))

    def retry_after(self, *parts: str) -> int:
        """Seconds until the client named by ``parts`` may try again; 0 when it may now."""
        key = self._key(parts)
        try:
            if self._limiter.test(self._item, key):
                return 0
            reset = self._limiter.get_window_stats(self._item, key).reset_time
        except Exception:  # the storage's own errors vary by backend; never lock everyone out
            log.warning("login throttle: the counters could not be read; letting the login on")
            return 0
        return max(1, math.ceil(reset - time.time()))

    def failed(self, *parts: str) -> None:
        try:
            self._limiter.hit(self._item, self._key(parts))
        except Exception:
            log.warning("login throttle: a failed login could not be counted")

    def succeeded(self, *parts: str) -> None:
        try:
            self._limiter.clear(self._item, self._key(parts))
        except Exception:
            log.warning("login throttle: a success could not clear the counter")
