"""Subscribing to OpenCRVS's webhooks, one topic at a time, with every outcome visible.

What OpenCRVS's subscribe endpoint does (``packages/webhooks``, ``subscribeWebhooksHandler``),
and how each answer is read here:

- it needs ``Authorization: Bearer <system client token>`` (``opencrvs_auth.SystemToken``);
  a 401 means the token expired or was revoked: a fresh one is fetched and the call repeated
  once;
- it checks the topic, that the client is active, that ``hub.secret`` equals the signing
  secret it issued to that client, and ``hub.mode``; a refusal is 400
  ``{"hub": {"mode": "denied", "topic", "reason"}}`` -> ``refused`` with OpenCRVS's reason;
- it then calls ``GET <callback>?mode=subscribe&challenge=…&topic=…`` and compares the JSON
  ``challenge``; a failure is 400 with the text "Subscription callback check failed" ->
  ``failed`` (often the callback is not reachable from OpenCRVS yet; tried again later), with
  whether the challenge reached us;
- success is **202 with an empty body**: OpenCRVS checked the callback before answering, so the
  topic is ``active``. (Other WebSub hubs answer 2xx first and verify later: with
  ``plain-hmac`` the topic waits for the challenge and turns ``unconfirmed`` if none comes.)

OpenCRVS does not merge subscriptions: every call adds one, and each delivers every event. So
existing subscriptions of this client are listed first (``GET <webhooks>``); a topic already
delivered to the same callback is reused, and extra copies are removed.

Each topic is subscribed on its own: one refusal or outage never stops the others. Failures
of the transport (registry down, timeouts, the callback check) are tried again in the
background with growing pauses; refusals wait for an operator. Every outcome goes to the
connector's status (``websub:<topic>``), which keeps the connector ``degraded`` with the reason
until every topic is active.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import requests

from connectors.base import Clock, ConnectorStatus, PartnerHttpClient
from connectors.base.errors import (
    NotAttempted,
    PartnerError,
    TransientPartnerError,
    safe_reason,
)
from connectors.base.status import (
    ACTIVE,
    AWAITING_CONFIRMATION,
    FAILED,
    REFUSED,
    SUBSCRIBING,
)
from connectors.base.webhooks import OPENCRVS
from connectors.civil_registry.opencrvs_auth import SystemToken, TokenRefused
from connectors.civil_registry.websub import SubscriptionBook

ANSWERS_READ = frozenset({400, 401, 403})
CALLBACK_CHECK_FAILED = "Subscription callback check failed"


def status_key(topic: str) -> str:
    return f"websub:{topic}"


class _Outcome(Exception):
    """How one attempt ended when it did not end active: state and reason."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


def _denial(response: requests.Response) -> str | None:
    """OpenCRVS's reason from a ``{"hub": {"mode": "denied", "reason"}}`` answer."""
    try:
        answer: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    hub = answer.get("hub") if isinstance(answer, dict) else None
    if isinstance(hub, dict) and hub.get("mode") == "denied":
        reason = hub.get("reason")
        return str(reason)[:300] if reason else "no reason given"
    return None


class WebSubSubscriber:
    """Subscribes the configured topics at the registry's webhooks endpoint."""

    def __init__(
        self,
        *,
        http: PartnerHttpClient,
        path: str,
        scheme: str,
        secret: str,
        token: SystemToken | None,
        book: SubscriptionBook,
        status: ConnectorStatus,
        clock: Clock,
        log: logging.Logger,
        confirm_within: float,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        self._http = http
        self._path = path
        self._scheme = scheme
        self._secret = secret
        self._token = token
        self._book = book
        self._status = status
        self._clock = clock
        self._log = log
        self._confirm_within = confirm_within
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._lock = threading.Lock()
        self._states: dict[str, str] = {}
        self._to_retry: dict[str, str] = {}  # topic -> callback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the requests --------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            return {}
        return {"Authorization": f"Bearer {self._token.bearer()}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with the system token; a 401 fetches a fresh token and repeats once."""
        response = self._http.request(
            method, path, headers=self._headers(), accept=ANSWERS_READ, **kwargs
        )
        if response.status_code == 401 and self._token is not None:
            self._token.invalidate()
            response = self._http.request(
                method, path, headers=self._headers(), accept=ANSWERS_READ, **kwargs
            )
        return response

    def existing(self, callback: str) -> dict[str, list[str]]:
        """topic -> ids of this client's subscriptions delivering to ``callback`` (OpenCRVS
        lists them at ``GET <webhooks>``); empty when they cannot be listed."""
        if self._scheme != OPENCRVS:
            return {}
        try:
            response = self._call("GET", self._path, operation="GET webhooks")
            answer = json.loads(response.content) if response.status_code == 200 else None
        except (PartnerError, NotAttempted, ValueError, UnicodeDecodeError) as error:
            self._log.info("listing existing webhook subscriptions failed: %s", safe_reason(error))
            return {}
        entries = answer.get("entries") if isinstance(answer, dict) else None
        found: dict[str, list[str]] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("callback") != callback:
                continue
            topic, webhook_id = entry.get("topic"), entry.get("id")
            if isinstance(topic, str) and isinstance(webhook_id, str) and webhook_id:
                found.setdefault(topic, []).append(webhook_id)
        return found

    def _remove_copies(self, topic: str, copies: list[str]) -> None:
        for webhook_id in copies:
            try:
                self._call("DELETE", f"{self._path}/{webhook_id}", operation="DELETE webhooks")
                self._log.info("removed a duplicate subscription to %s (%s)", topic, webhook_id)
            except (PartnerError, NotAttempted) as error:
                self._log.warning(
                    "could not remove a duplicate subscription to %s: %s", topic, safe_reason(error)
                )

    # --- one topic -----------------------------------------------------------------------------

    def _set(self, topic: str, state: str, reason: str | None = None, **details: Any) -> None:
        with self._lock:
            self._states[topic] = state
        confirm_by = None
        if state == AWAITING_CONFIRMATION:
            confirm_by = self._clock.now() + timedelta(seconds=self._confirm_within)
        self._status.set_subscription(
            status_key(topic), state, reason, confirm_by=confirm_by, **details
        )

    def state(self, topic: str) -> str | None:
        with self._lock:
            return self._states.get(topic)

    def subscribe_topic(
        self, callback: str, topic: str, existing: dict[str, list[str]] | None = None
    ) -> str:
        """Subscribe one topic; return its state. Never raises for the registry's answers."""
        known = (existing or {}).get(topic) or []
        if known:
            self._book.remember_id(topic, known[0])
            self._book.activate(topic)
            self._set(topic, ACTIVE, None, webhook_id=known[0], reused="yes")
            self._remove_copies(topic, known[1:])
            self._forget_retry(topic)
            return ACTIVE
        self._set(topic, SUBSCRIBING)
        self._book.mark_pending(topic)
        challenged_before = self._book.challenges_answered(topic)
        try:
            state = self._request(callback, topic, challenged_before)
        except _Outcome as outcome:
            self._book.forget_pending(topic)
            if outcome.state == FAILED:
                with self._lock:
                    self._to_retry[topic] = callback
                reason = f"{outcome.reason}; tried again in the background"
            else:
                self._forget_retry(topic)
                reason = outcome.reason
            self._set(topic, outcome.state, reason)
            self._log.warning("WebSub subscription to %s %s: %s", topic, outcome.state, reason)
            if outcome.state == FAILED:
                self._ensure_retry_thread()
            return outcome.state
        self._forget_retry(topic)
        return state

    def _request(self, callback: str, topic: str, challenged_before: int) -> str:
        body = {
            "hub": {
                "callback": callback,
                "mode": "subscribe",
                "topic": topic,
                "secret": self._secret,
            }
        }
        try:
            response = self._call("POST", self._path, json=body, operation="POST webhooks")
        except TokenRefused as error:
            raise _Outcome(REFUSED, error.detail) from None
        except (TransientPartnerError, NotAttempted) as error:
            raise _Outcome(
                FAILED, f"the registry could not be reached ({safe_reason(error)})"
            ) from None
        except PartnerError as error:
            raise _Outcome(
                REFUSED,
                f"the registry refused the call ({safe_reason(error)}); check webhooks_url",
            ) from None
        status = response.status_code
        challenged = self._book.challenges_answered(topic) > challenged_before
        if status in (401, 403):
            raise _Outcome(
                REFUSED,
                f"the registry refused the system client's token (HTTP {status}); check that "
                "the client is active and that client_id, client_secret and auth_url point at "
                "this OpenCRVS",
            )
        if status == 400:
            denied = _denial(response)
            if denied is not None:
                raise _Outcome(REFUSED, f"OpenCRVS denied the subscription: {denied}")
            text = response.content[:200].decode("utf-8", "replace")
            if CALLBACK_CHECK_FAILED in text:
                heard = (
                    "our challenge view answered it, so check that the callback URL is the one "
                    "OpenCRVS reaches (no proxy rewriting the answer)"
                    if challenged
                    else f"its challenge never reached {callback}: check callback_base_url and "
                    "that OpenCRVS can reach the hub"
                )
                raise _Outcome(FAILED, f"OpenCRVS could not verify the callback ({heard})")
            raise _Outcome(
                REFUSED,
                "OpenCRVS answered 400 without a reason (its handler failed; often the system "
                "client is unknown to it)",
            )
        if challenged or self._scheme == OPENCRVS:
            # OpenCRVS answers 202 only after its challenge succeeded (or for a demo client,
            # which it does not challenge at all).
            self._book.activate(topic)
            self._set(topic, ACTIVE, None, verified="yes" if challenged else "by the registry")
            return ACTIVE
        self._set(topic, AWAITING_CONFIRMATION, "waiting for the registry's challenge")
        return AWAITING_CONFIRMATION

    def challenge_answered(self, topic: str) -> None:
        """Our view answered a challenge for ``topic``: a subscription waiting for it is
        active now."""
        if self.state(topic) == AWAITING_CONFIRMATION:
            self._set(topic, ACTIVE, None, verified="yes")

    # --- all topics and the background retries ------------------------------------------------

    def subscribe(self, callback: str, topics: Iterable[str]) -> dict[str, str]:
        """Subscribe every topic on its own; return topic -> state."""
        existing = self.existing(callback)
        return {topic: self.subscribe_topic(callback, topic, existing) for topic in sorted(topics)}

    def _forget_retry(self, topic: str) -> None:
        with self._lock:
            self._to_retry.pop(topic, None)

    def _ensure_retry_thread(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._retry_loop, name="websub-resubscribe", daemon=True
            )
            self._thread.start()

    def _retry_loop(self) -> None:
        """Try failed topics again after a pause that doubles up to ``retry_max``; ends when
        none is left (a later failure starts it again) or on ``close``."""
        delay = self._retry_initial
        while not self._stop.wait(delay):
            with self._lock:
                due = dict(self._to_retry)
                if not due:
                    self._thread = None
                    return
            for callback in sorted(set(due.values())):
                existing = self.existing(callback)
                for topic in sorted(t for t, c in due.items() if c == callback):
                    if self._stop.is_set():
                        return
                    self.subscribe_topic(callback, topic, existing)
            delay = min(delay * 2, self._retry_max)

    def waiting_retries(self) -> list[str]:
        with self._lock:
            return sorted(self._to_retry)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5)
