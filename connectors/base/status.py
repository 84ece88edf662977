"""What each connector is doing, in a form a health page can show without exposing anyone.

A partner that is down must be visible as down, with when it last worked and why it stopped,
instead of showing up only as missing data days later. The status keeps reasons produced by
``errors.safe_reason`` (partner, operation, reason code), never payloads or identifiers.

A connector that lives on subscriptions (WebSub topics, DCI event types) also reports each
one here (``set_subscription``): a subscription that was refused, failed, or was accepted but
never confirmed keeps the connector ``degraded`` with the reason, so it is never silently "up"
while nothing can arrive.

Writers are the connector's own threads (runner, HTTP views, retry loop); readers are the
monitoring pages. Every change and ``snapshot`` take one lock, so a reader never sees half an
update.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base.clock import SYSTEM_CLOCK, Clock
from connectors.base.errors import safe_reason

COUNTED_MARK = "_srhub_failure_counted"

UP = "up"
DEGRADED = "degraded"  # working, but recent calls failed or needed retries
DOWN = "down"  # the circuit is open, or the last attempts all failed
PAUSED = "paused"  # stopped on purpose by an operator

# Subscription states; every one but ACTIVE keeps the connector degraded.
SUBSCRIBING = "subscribing"  # the request is being made (or retried)
AWAITING_CONFIRMATION = "awaiting_confirmation"  # accepted; the partner has yet to verify
ACTIVE = "active"
REFUSED = "refused"  # the partner said no; an operator must act
FAILED = "failed"  # the partner could not be asked; retried later
UNCONFIRMED = "unconfirmed"  # accepted, but not verified in time
SUBSCRIPTION_STATES = (SUBSCRIBING, AWAITING_CONFIRMATION, ACTIVE, REFUSED, FAILED, UNCONFIRMED)

# Counters a connector may bump; unknown names are refused so typos do not vanish silently.
COUNTERS: tuple[str, ...] = (
    "calls",  # attempts made to the partner (each retry counts)
    "retries",
    "failures",  # attempts that failed, transient or permanent
    "not_attempted",  # refused locally: circuit open, rate limit, deadline
    "records_published",
    "polls",
    "pushes_accepted",
    "pushes_refused",
    "callbacks",  # answers the partner called back with (e.g. DCI on-subscribe, on-search)
    "files_processed",
    "files_rejected",
    "files_duplicate",
    "rows_rejected",
    "lookups",
)


@dataclass
class ConnectorStatus:
    """Live state of one connector; read it from any thread through ``snapshot``."""

    name: str
    clock: Clock = SYSTEM_CLOCK
    paused: bool = False
    circuit: str = "closed"
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    checkpoint_saved_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- writers -------------------------------------------------------------------------------

    def record_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self.last_success_at = self.clock.now()

    def record_failure(self, error: BaseException | str) -> None:
        """The partner (or the path to the hub) failed: counts towards degraded/down.

        An exception recorded here is marked, so a runner that catches it later does not
        count the same failure twice.
        """
        if isinstance(error, BaseException):
            if getattr(error, COUNTED_MARK, False):
                return
            with contextlib.suppress(AttributeError):  # some built-in exceptions refuse
                setattr(error, COUNTED_MARK, True)
        reason = error if isinstance(error, str) else safe_reason(error)
        with self._lock:
            self.consecutive_failures += 1
            self.last_error = reason[:500]
            self.last_error_at = self.clock.now()

    def record_error(self, error: BaseException | str) -> None:
        """Remember an error that says nothing about availability (the partner answered "no"):
        shown as the last error, without making the connector degraded."""
        reason = error if isinstance(error, str) else safe_reason(error)
        with self._lock:
            self.last_error = reason[:500]
            self.last_error_at = self.clock.now()

    def set_circuit(self, state: str) -> None:
        with self._lock:
            self.circuit = state

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self.paused = paused

    def checkpoint_saved(self) -> None:
        with self._lock:
            self.checkpoint_saved_at = self.clock.now()

    def set_subscription(
        self,
        key: str,
        state: str,
        reason: str | None = None,
        *,
        confirm_by: datetime | None = None,
        overdue_reason: str | None = None,
        **details: str,
    ) -> None:
        """Record the outcome of one subscription (``key`` names it: ``websub:BIRTH_REGISTERED``,
        ``dci:<event types>``).

        ``reason`` says why it is not active, in words an operator can act on (no secrets, no
        personal data). ``confirm_by``: with ``awaiting_confirmation``, the moment after which
        it counts as ``unconfirmed``, for ``overdue_reason`` (what confirmation never came and
        what to check; a WebSub challenge by default). ``details`` are shown beside it (e.g.
        the partner's id).
        """
        if state not in SUBSCRIPTION_STATES:
            raise ValueError(f"unknown subscription state {state!r}; known: {SUBSCRIPTION_STATES}")
        with self._lock:
            previous = self.subscriptions.get(key)
            since = (
                previous["since"]
                if previous is not None and previous["state"] == state
                else self.clock.now()
            )
            self.subscriptions[key] = {
                "state": state,
                "reason": reason[:500] if reason else None,
                "since": since,
                "confirm_by": confirm_by,
                "overdue_reason": overdue_reason[:500] if overdue_reason else None,
                "details": {k: str(v)[:200] for k, v in details.items()},
            }

    def forget_subscription(self, key: str) -> None:
        with self._lock:
            self.subscriptions.pop(key, None)

    def count(self, counter: str, n: int = 1) -> None:
        if counter not in self.counts:
            raise KeyError(f"unknown connector counter {counter!r}; known: {', '.join(COUNTERS)}")
        with self._lock:
            self.counts[counter] += n

    # --- readers -------------------------------------------------------------------------------

    def _subscriptions_locked(self) -> dict[str, dict[str, Any]]:
        """Each subscription as shown, an overdue confirmation turned ``unconfirmed``."""
        now = self.clock.now()
        shown: dict[str, dict[str, Any]] = {}
        for key, entry in sorted(self.subscriptions.items()):
            state, reason = entry["state"], entry["reason"]
            due = entry["confirm_by"]
            if state == AWAITING_CONFIRMATION and due is not None and now > due:
                state = UNCONFIRMED
                reason = entry["overdue_reason"] or (
                    "the partner accepted the subscription but never verified it "
                    f"(no challenge by {due.isoformat()})"
                )
            shown[key] = {
                "state": state,
                "reason": reason,
                "since": entry["since"].isoformat(),
                **entry["details"],
            }
        return shown

    def _state_locked(self, subscriptions: dict[str, dict[str, Any]] | None = None) -> str:
        if self.paused:
            return PAUSED
        if self.circuit == "open":
            return DOWN
        if self.circuit == "half_open" or self.consecutive_failures:
            if self.last_success_at is None or self.consecutive_failures >= 3:
                return DOWN
            return DEGRADED
        shown = self._subscriptions_locked() if subscriptions is None else subscriptions
        if any(entry["state"] != ACTIVE for entry in shown.values()):
            return DEGRADED
        return UP

    @property
    def state(self) -> str:
        with self._lock:
            return self._state_locked()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: state, circuit, times (ISO 8601), last error reason, counters,
        subscriptions and ``problems`` (why a subscription keeps the connector degraded)."""

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        with self._lock:
            subscriptions = self._subscriptions_locked()
            problems = [
                f"{key}: {entry['state']}" + (f" ({entry['reason']})" if entry["reason"] else "")
                for key, entry in subscriptions.items()
                if entry["state"] != ACTIVE
            ]
            return {
                "name": self.name,
                "state": self._state_locked(subscriptions),
                "circuit": self.circuit,
                "paused": self.paused,
                "consecutive_failures": self.consecutive_failures,
                "last_success_at": iso(self.last_success_at),
                "last_error_at": iso(self.last_error_at),
                "last_error": self.last_error,
                "checkpoint_saved_at": iso(self.checkpoint_saved_at),
                "counts": dict(self.counts),
                "subscriptions": subscriptions,
                "problems": problems,
            }
