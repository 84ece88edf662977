"""REST transport for connectors: a ``requests.Session`` that always has a timeout.

All HTTP of the connectors goes through ``PartnerHttpClient``, as all of zeep's goes through
its transport: one module that tests can point at a local server, that never makes a call
without a timeout (``requests`` waits forever by default), and that converts what ``requests``
raises into the connectors' error tree at the point where it enters:

- connection refused/reset, DNS, TLS -> ``PartnerConnectionError`` (transient)
- connect or read timeout -> ``PartnerTimeout`` (transient)
- 502, 503, 504, 429, 408 -> ``PartnerBusy`` with the ``Retry-After`` hint (transient)
- any other 4xx/5xx -> ``PartnerRejected`` (permanent); a redirect -> ``PartnerProtocolError``
  (redirects are not followed unless a call asks for it: a partner API should not move)
- a body that is not the JSON promised -> ``PartnerProtocolError`` (permanent)

A call that must read a refusal's body (a partner that explains its 400 in JSON) names those
statuses in ``accept``: they come back as responses instead of being raised.

Each request runs through the connector's ``ResilientCaller``, so retries, the circuit breaker
and the rate limit apply without the connector writing a loop. Error messages carry the method,
the path without its query string and the status; never bodies, query values or headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connectors.base.clock import Deadline
from connectors.base.errors import (
    PartnerBusy,
    PartnerConnectionError,
    PartnerError,
    PartnerProtocolError,
    PartnerRejected,
    PartnerTimeout,
)
from connectors.base.resilience import ResilientCaller
from connectors.base.watchdog import total_deadline, watch_session

TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
MAX_BODY_BYTES = 32 * 1024 * 1024  # a partner answer larger than this is refused
USER_AGENT = "srhub-connector/1"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent or
    unreadable (a malformed hint is ignored rather than trusted)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _operation(method: str, url: str) -> str:
    """``GET /path``: enough to locate a failure, without query values that may identify someone."""
    return f"{method.upper()} {urlsplit(url).path or '/'}"


class PartnerHttpClient:
    """HTTP calls to one partner base URL, with timeouts, error mapping and resilience."""

    def __init__(
        self,
        base_url: str,
        caller: ResilientCaller,
        *,
        session: requests.Session | None = None,
        headers: Mapping[str, str] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"partner base URL must be http or https, not {scheme or 'empty'!r}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.caller = caller
        self.session = watch_session(session or requests.Session())
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        if headers:
            self.session.headers.update(headers)
        self.max_body_bytes = max_body_bytes

    @property
    def partner(self) -> str:
        return self.caller.partner

    def url(self, path: str) -> str:
        """``path`` resolved under the base URL; absolute URLs elsewhere are refused."""
        resolved = urljoin(self.base_url, path.lstrip("/"))
        if not resolved.startswith(self.base_url):
            raise ValueError("request path leaves the partner's base URL")
        return resolved

    def request(
        self,
        method: str,
        path: str,
        *,
        deadline: Deadline | None = None,
        operation: str | None = None,
        accept: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """One logical request (retried as needed); returns a 2xx/3xx response, or one with a
        status listed in ``accept``; body read."""
        if "timeout" in kwargs:
            raise TypeError("timeouts come from the connector's resilience settings")
        url = self.url(path)
        op = operation or _operation(method, url)

        def attempt(timeout: float) -> requests.Response:
            return self.send_once(
                method, url, timeout=timeout, operation=op, accept=accept, **kwargs
            )

        return self.caller.call(attempt, operation=op, deadline=deadline)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.json_of(self.get(path, **kwargs), _operation("GET", self.url(path)))

    def post_json(self, path: str, **kwargs: Any) -> Any:
        return self.json_of(self.post(path, **kwargs), _operation("POST", self.url(path)))

    def json_of(self, response: requests.Response, operation: str) -> Any:
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise PartnerProtocolError(
                self.partner, operation, "bad_json", "the answer is not valid JSON"
            ) from None

    def send_once(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        operation: str,
        accept: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        """Exactly one HTTP exchange, no retry: errors mapped to the connectors' tree; a
        status in ``accept`` is returned as it is. The exchange ends after ``timeout`` in all,
        however slowly the partner sends (``connectors.base.watchdog``)."""
        late = PartnerTimeout(
            self.partner, operation, "timeout", f"answer took over {timeout:.1f}s"
        )
        with total_deadline(timeout) as watch:
            try:
                response = self._exchange(
                    method, url, timeout=timeout, operation=operation, accept=accept, **kwargs
                )
            except PartnerError:
                if watch.fired:
                    raise late from None
                raise
        if watch.fired:  # a body without a length ends "normally" when its socket is shut
            raise late
        return response

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        operation: str,
        accept: frozenset[int],
        **kwargs: Any,
    ) -> requests.Response:
        connect = min(self.caller.connect_timeout, timeout)
        kwargs.setdefault("allow_redirects", False)  # a partner API that redirects is a surprise
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, timeout=(connect, timeout), stream=True, **kwargs
            )
        except requests.Timeout:
            raise PartnerTimeout(
                self.partner, operation, "timeout", f"no answer within {timeout:.1f}s"
            ) from None
        except requests.ConnectionError:
            raise PartnerConnectionError(
                self.partner, operation, "unreachable", "connection failed"
            ) from None
        except requests.RequestException as exc:
            raise PartnerRejected(
                self.partner, operation, 0, f"request could not be sent: {type(exc).__name__}"
            ) from None
        try:
            self._read_body(response, operation, timeout, started)
        finally:
            response.close()
        status = response.status_code
        if status in accept:
            return response
        if response.is_redirect:
            raise PartnerProtocolError(
                self.partner, operation, f"http_{status}", "unexpected redirect (not followed)"
            )
        if status in TRANSIENT_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise PartnerBusy(self.partner, operation, status, retry_after)
        if status >= 400:
            raise PartnerRejected(self.partner, operation, status)
        return response

    def _read_body(
        self, response: requests.Response, operation: str, timeout: float, started: float
    ) -> None:
        """Read the body within the size cap and the attempt's time; ``requests`` applies its
        read timeout per socket read, so a partner dripping bytes is stopped here. A body cut
        off mid-way is a transient failure."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise PartnerProtocolError(self.partner, operation, "body_too_large")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise PartnerProtocolError(self.partner, operation, "body_too_large")
                chunks.append(chunk)
                if time.monotonic() - started > timeout:
                    raise PartnerTimeout(
                        self.partner, operation, "timeout", f"answer took over {timeout:.1f}s"
                    )
        except requests.Timeout:
            raise PartnerTimeout(
                self.partner, operation, "timeout", f"body not received within {timeout:.1f}s"
            ) from None
        except requests.RequestException:
            raise PartnerConnectionError(
                self.partner, operation, "body_interrupted", "the answer was cut off"
            ) from None
        response._content = b"".join(chunks)  # requests keeps .content here
        response._content_consumed = True  # type: ignore[attr-defined]
