"""The rate limits on the hub's Flask app: counted before authentication, 429 past a limit.

The hook runs before every other one (before authentication and before any view), so a
flood costs one counter update per request and never a token check or a database query of
the view. Three limits (``settings.rate_limits``):

- a request with a credential counts against that credential (``per_credential``);
- a request without one counts against its client address (``per_address``): login, health,
  OpenRosa challenges, DCI and other routes that authenticate by other means;
- a request answered 401 while carrying a credential counts against its address
  (``failed_credentials``); once that is spent, every credential-bearing request from the
  address gets 429 until the window ends, whatever the credential: guessing tokens or keys
  from one address is cut to a few dozen tries per window. A Digest ``stale=true`` challenge
  (an expired nonce, the normal life of a device) is not a failure.

A refusal is a problem document with ``Retry-After`` (whole seconds until the window ends).
If the counters cannot be reached the request goes on (logged): the limiter guards the hub,
it must not be the thing that stops it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, Response, g, request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.engine import Engine

from hub.auth.flask_auth import problem_response
from hub.ratelimit.clients import SESSION_COOKIE, address_key, credential_key
from hub.settings import Settings

log = logging.getLogger(__name__)

EXTENSION_KEY = "srhub_rate_limits"


@dataclass(frozen=True)
class RateLimits:
    """The limiter and its three limits (None: that limit is off)."""

    limiter: FixedWindowRateLimiter
    per_credential: RateLimitItem | None
    per_address: RateLimitItem | None
    failed_credentials: RateLimitItem | None


def _item(value: str) -> RateLimitItem | None:
    return parse(value) if value.strip() else None


def make_storage(settings: Settings, engine: Engine) -> Storage:
    """Counters in the database (``hub.ratelimit.storage``, shared) or in this process."""
    if settings.rate_limits.storage == "memory":
        return MemoryStorage()
    import hub.ratelimit.storage  # noqa: F401  registers the srhub-db scheme with limits

    # limits types its options as scalars; the engine is what DatabaseStorage takes.
    storage = storage_from_string("srhub-db://", engine=engine)  # type: ignore[arg-type]
    assert isinstance(storage, Storage)
    return storage


def install(app: Flask, settings: Settings, engine: Engine) -> RateLimits | None:
    """Put the limits in front of ``app``'s other hooks; nothing when they are off."""
    config = settings.rate_limits
    if not config.enabled:
        return None
    limits = RateLimits(
        limiter=FixedWindowRateLimiter(make_storage(settings, engine)),
        per_credential=_item(config.per_credential),
        per_address=_item(config.per_address),
        failed_credentials=_item(config.failed_credentials),
    )
    app.extensions[EXTENSION_KEY] = limits
    app.before_request_funcs.setdefault(None, []).insert(0, _before)
    app.after_request(_after)
    return limits


def _limits() -> RateLimits:
    from flask import current_app

    found = current_app.extensions[EXTENSION_KEY]
    assert isinstance(found, RateLimits)
    return found


def _too_many(limits: RateLimits, item: RateLimitItem, key: str) -> Response:
    reset = limits.limiter.get_window_stats(item, key).reset_time
    wait = max(1, math.ceil(reset - time.time()))
    return problem_response(
        429,
        "Too Many Requests",
        f"Rate limit of {item} reached; retry after {wait} seconds.",
        {"Retry-After": str(wait)},
    )


def _before() -> Response | None:
    limits = _limits()
    credential = credential_key(
        request.headers.get("Authorization", ""),
        request.headers.get("X-API-Key", ""),
        request.cookies.get(SESSION_COOKIE, ""),
    )
    g.rate_limit_credential = credential is not None
    address = address_key(request.remote_addr)
    try:
        if credential is not None:
            failed = limits.failed_credentials
            if failed is not None and not limits.limiter.test(failed, "failed", address):
                log.info("429: too many failed credentials from one address")
                return _too_many(limits, failed, address)
            item, key = limits.per_credential, credential
        else:
            item, key = limits.per_address, address
        if item is not None and not limits.limiter.hit(item, key):
            log.info("429: %s limit reached", "credential" if credential else "address")
            return _too_many(limits, item, key)
    except Exception:  # the counters' store is down: serve rather than refuse everything
        log.warning("rate-limit counters unavailable; request not limited", exc_info=True)
    return None


def _after(response: Response) -> Response:
    if response.status_code != 401 or not g.get("rate_limit_credential"):
        return response
    if "stale=true" in response.headers.get("WWW-Authenticate", "").lower():
        return response
    failed = _limits().failed_credentials
    if failed is not None:
        try:
            _limits().limiter.hit(failed, "failed", address_key(request.remote_addr))
        except Exception:
            log.warning("rate-limit counters unavailable; failure not counted", exc_info=True)
    return response
