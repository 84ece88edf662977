"""Our DCI subscriptions at the registry: sent, confirmed, refused, or never answered. No I/O.

A DCI ``subscribe`` is only acknowledged at once (``ACK``); whether the registry really holds
the subscription comes later, in an ``on-subscribe`` POSTed to the ``sender_uri`` we gave. If
that callback never reaches us (a firewall, a wrong public URL, a registry that appends paths
to it), notifications will never reach us either, and nothing else would show it: the
connector keeps answering searches and looks healthy. So every subscribe we send is remembered
until its on-subscribe confirms it, and each one is reported to the connector's status as
subscription ``dci:<event types>`` (``ConnectorStatus.set_subscription``), which keeps the
connector degraded, with the reason, when:

- the on-subscribe did not arrive within ``ttl`` seconds of the subscribe;
- the registry refused the subscription (``status: rjct`` with its reason code).

A late on-subscribe still confirms (and clears the problem); a new subscribe for the same event
types replaces the older attempt; a subscribe whose call failed is forgotten (the resilience
layer reports that failure itself). The registry's answer is matched by our ``transaction_id``
(the spec has the registry echo it), else by the ``correlation_id`` its ACK gave us.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.base import Clock
from connectors.base.status import ACTIVE, AWAITING_CONFIRMATION, ConnectorStatus
from connectors.base.status import REFUSED as STATUS_REFUSED
from standards.dci import codes

MAX_ATTEMPTS = 20  # kept for the operator's view; older ones are dropped
ALREADY_SUBSCRIBED = "rjct.event.already_subscribed"

PENDING = "pending"  # sent, no on-subscribe yet
CONFIRMED = "confirmed"
REFUSED = "refused"


@dataclass
class Attempt:
    """One subscribe message we sent."""

    transaction_id: str
    event_types: tuple[str, ...]
    sent_at: str  # ISO, for people
    deadline: float  # monotonic
    confirm_by: datetime | None = None  # the same moment, for the connector's status
    correlation_id: str | None = None
    state: str = PENDING
    reason: str | None = None
    confirmed_at: str | None = None
    references: dict[str, str] = field(default_factory=dict)  # our reference_id -> event
    codes: dict[str, str] = field(default_factory=dict)  # subscription code -> event type

    @property
    def key(self) -> str:
        """Its name among the connector's subscriptions."""
        return "dci:" + ",".join(self.event_types)

    def public(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "event_types": list(self.event_types),
            "sent_at": self.sent_at,
            "state": self.state,
            "reason": self.reason,
            "confirmed_at": self.confirmed_at,
            "codes": dict(self.codes),
        }


class DciSubscriptions:
    """What we asked the registry to notify us of, and what became of it."""

    def __init__(
        self, clock: Clock, ttl_seconds: float, status: ConnectorStatus | None = None
    ) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        self._status = status
        self._lock = threading.Lock()
        self._attempts: dict[str, Attempt] = {}  # transaction id -> attempt, oldest first
        self._unsubscribed: list[str] = []

    # --- what we send ------------------------------------------------------------------------

    def sent(self, transaction_id: str, references: Mapping[str, str]) -> None:
        """Called *before* the subscribe goes out (the on-subscribe may beat the ACK back);
        ``references`` maps each request's ``reference_id`` to its event type."""
        types = tuple(references.values())
        with self._lock:
            for txn in [t for t, a in self._attempts.items() if a.event_types == types]:
                del self._attempts[txn]  # a new subscribe for the same events replaces it
            attempt = Attempt(
                transaction_id,
                types,
                self._clock.now().isoformat(),
                self._clock.monotonic() + self._ttl,
                confirm_by=self._clock.now() + timedelta(seconds=self._ttl),
                references=dict(references),
            )
            self._attempts[transaction_id] = attempt
            while len(self._attempts) > MAX_ATTEMPTS:
                del self._attempts[next(iter(self._attempts))]
            self._report(attempt)

    def acknowledged(self, transaction_id: str, correlation_id: str) -> None:
        with self._lock:
            attempt = self._attempts.get(transaction_id)
            if attempt is not None and correlation_id:
                attempt.correlation_id = correlation_id[:200]

    def failed(self, transaction_id: str) -> None:
        """The subscribe call itself failed (the resilience layer reports that): forget it."""
        with self._lock:
            attempt = self._attempts.pop(transaction_id, None)
            if attempt is not None and self._status is not None:
                self._status.forget_subscription(attempt.key)

    # --- what the registry tells us ------------------------------------------------------

    def _find(self, message: Mapping[str, Any]) -> Attempt | None:
        txn = message.get("transaction_id")
        if txn is not None and str(txn) in self._attempts:
            return self._attempts[str(txn)]
        correlation = message.get("correlation_id")
        if correlation:
            for attempt in self._attempts.values():
                if attempt.correlation_id == str(correlation):
                    return attempt
        return None

    def on_subscribe(self, header: Mapping[str, Any], message: Mapping[str, Any]) -> bool:
        """Record an on-subscribe; False when it answers no subscribe we are waiting for."""
        items = [i for i in message.get("subscribe_response") or [] if isinstance(i, dict)]
        with self._lock:
            attempt = self._find(message)
            if attempt is None:
                return False
            refusals: list[str] = []
            granted: dict[str, str] = {}
            for item in items:
                status = str(item.get("status", ""))
                reason = str(item.get("status_reason_code") or "")[:80]
                if status == codes.SUCC or reason == ALREADY_SUBSCRIBED:
                    ours = attempt.references.get(str(item.get("reference_id")))
                    for sub in item.get("subscriptions") or []:
                        if isinstance(sub, dict) and sub.get("code"):
                            kind = (
                                ours or sub.get("reg_event_type") or ",".join(attempt.event_types)
                            )
                            granted[str(sub["code"])[:200]] = str(kind)[:120]
                elif status == codes.RJCT:
                    text = str(item.get("status_reason_message") or "")[:200]
                    refusals.append(f"{reason or 'rjct'}{': ' + text if text else ''}")
            if header.get("status") == codes.RJCT and not items:
                reason = str(header.get("status_reason_code") or "rjct")[:80]
                text = str(header.get("status_reason_message") or "")[:200]
                refusals.append(f"{reason}{': ' + text if text else ''}")
            attempt.codes.update(granted)
            attempt.confirmed_at = self._clock.now().isoformat()
            if refusals:
                attempt.state, attempt.reason = REFUSED, "; ".join(refusals)[:400]
            elif items or header.get("status") == codes.SUCC:
                attempt.state, attempt.reason = CONFIRMED, None
            else:  # an answer that says nothing: keep waiting for a real one
                attempt.confirmed_at = None
            self._report(attempt)
            return True

    def _report(self, attempt: Attempt) -> None:
        """Tell the connector's status where this subscription stands (under our lock)."""
        if self._status is None:
            return
        events = ", ".join(attempt.event_types)
        if attempt.state == CONFIRMED:
            self._status.set_subscription(attempt.key, ACTIVE, codes=",".join(attempt.codes))
        elif attempt.state == REFUSED:
            self._status.set_subscription(
                attempt.key,
                STATUS_REFUSED,
                f"DCI subscription to {events} refused by the registry: {attempt.reason}",
            )
        else:
            self._status.set_subscription(
                attempt.key,
                AWAITING_CONFIRMATION,
                confirm_by=attempt.confirm_by,
                overdue_reason=(
                    f"DCI subscription to {events} (sent {attempt.sent_at}) not confirmed: "
                    f"no on-subscribe within {self._ttl:g} s; check that the registry can "
                    "reach this hub's callback URL (callback_base_url) and calls it as given"
                ),
            )

    def on_unsubscribe(self, message: Mapping[str, Any]) -> None:
        with self._lock:
            for item in message.get("subscription_status") or []:
                if isinstance(item, dict) and item.get("status") == "unsubscribe":
                    code = str(item.get("code"))
                    for attempt in self._attempts.values():
                        attempt.codes.pop(code, None)
                    self._unsubscribed = [*self._unsubscribed[-19:], code[:200]]

    # --- the operator's view ----------------------------------------------------------------

    def codes(self) -> dict[str, str]:
        """Subscription code -> event type(s), of every confirmed subscription."""
        with self._lock:
            found: dict[str, str] = {}
            for attempt in self._attempts.values():
                found.update(attempt.codes)
            return found

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "attempts": [a.public() for a in self._attempts.values()],
                "unsubscribed": list(self._unsubscribed),
            }
