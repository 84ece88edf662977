"""The DCI (SPDCI) CRVS client: search (sync and async), subscribe, unsubscribe.

All calls go through the connector's ``PartnerHttpClient`` (timeouts, retries, circuit breaker,
rate limit) with ``Authorization: Bearer <token>``. Asynchronous answers arrive later as POSTs
to our ``sender_uri``; the blueprint hands an ``on-search`` body to ``deliver_on_search``, which
wakes whoever waits on that transaction. Only transactions we started are accepted there: an
``on-search`` for an unknown transaction id is refused, so nobody can slip records in by
inventing one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from connectors.base import Clock, PartnerHttpClient, PermanentPartnerError
from connectors.base.clock import Deadline
from connectors.civil_registry import dci_messages as msgs
from connectors.civil_registry.dci_messages import DciAnswerError, SearchResult
from standards.dci import codes
from standards.dci.envelope import request_header

MAX_PENDING = 1000


class DciRefused(PermanentPartnerError):
    """The registry answered, but with NACK/ERR or a body that is not DCI; ``reason`` is the
    DCI error code (or ``bad_dci_answer``)."""


@dataclass
class _Pending:
    expires_at: float
    publish: bool
    done: threading.Event = field(default_factory=threading.Event)
    results: list[SearchResult] | None = None


class DciClient:
    """One registry's DCI API, as seen by one sender (our ``sender_id``)."""

    def __init__(
        self,
        http: PartnerHttpClient,
        *,
        sender_id: str,
        receiver_id: str | None,
        clock: Clock,
        pending_ttl: float = 600.0,
    ) -> None:
        self.http = http
        self.sender_id = sender_id
        self.receiver_id = receiver_id
        self.clock = clock
        self.pending_ttl = pending_ttl
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

    # --- the wire ------------------------------------------------------------------------------

    def _post(
        self,
        path: str,
        action: str,
        message: dict[str, Any],
        *,
        total_count: int,
        sender_uri: str | None = None,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        body = {
            "header": request_header(
                action,
                sender_id=self.sender_id,
                receiver_id=self.receiver_id,
                total_count=total_count,
                sender_uri=sender_uri,
            ),
            "message": message,
        }
        operation = f"DCI {action}"
        answer = self.http.post_json(path, json=body, deadline=deadline, operation=operation)
        if not isinstance(answer, dict) or not isinstance(answer.get("message"), dict):
            raise DciRefused(
                self.http.partner, operation, "bad_dci_answer", "the answer has no message object"
            )
        return answer

    def _expect_ack(self, answer: dict[str, Any], operation: str) -> str:
        message = answer["message"]
        status = message.get("ack_status")
        if status != codes.ACK:
            error = message.get("error") if isinstance(message.get("error"), dict) else {}
            code = str(error.get("code") or "bad_dci_answer")[:80]
            text = str(error.get("message") or f"ack_status {str(status)[:10]!r}")[:200]
            raise DciRefused(self.http.partner, operation, code, text)
        return str(message.get("correlation_id") or "")

    # --- search --------------------------------------------------------------------------------

    def search(
        self, criteria_list: Sequence[Mapping[str, Any]], *, deadline: Deadline | None = None
    ) -> list[SearchResult]:
        """Synchronous search (``/registry/sync/search``): one result per criteria block."""
        message = msgs.search_message(criteria_list)
        answer = self._post(
            "sync/search",
            codes.SEARCH,
            message,
            total_count=len(criteria_list),
            deadline=deadline,
        )
        try:
            return msgs.search_results(answer["message"])
        except DciAnswerError as error:
            raise DciRefused(
                self.http.partner, "DCI search", "bad_dci_answer", str(error)
            ) from None

    def search_by_id(
        self,
        id_type: str,
        value: str,
        *,
        event_type: str | None = None,
        deadline: Deadline | None = None,
    ) -> list[dict[str, Any]]:
        """Person records with that identifier (UIN, BRN, DRN, MRN); empty if none.

        Only records that really carry the identifier are returned: a registry answering with
        more than was asked must not put other people's data in front of the caller."""
        criteria = msgs.id_criteria(id_type, value, event_type)
        (result,) = self.search([criteria], deadline=deadline)
        wanted = (criteria["query"]["type"], criteria["query"]["value"])
        return [r for r in self._records_or_refusal(result) if msgs.carries(r, *wanted)]

    def search_by_dates(
        self,
        attribute: str,
        *,
        since: date | datetime | str | None = None,
        until: date | datetime | str | None = None,
        event_type: str | None = None,
        page_size: int = 100,
        page_number: int = 1,
        deadline: Deadline | None = None,
    ) -> SearchResult:
        """One page of records whose ``attribute`` date lies in [since, until]."""
        criteria = msgs.date_criteria(
            attribute,
            since=since,
            until=until,
            event_type=event_type,
            page_size=page_size,
            page_number=page_number,
        )
        (result,) = self.search([criteria], deadline=deadline)
        self._records_or_refusal(result)
        return result

    def _records_or_refusal(self, result: SearchResult) -> list[dict[str, Any]]:
        if result.ok:
            return result.records
        raise DciRefused(
            self.http.partner,
            "DCI search",
            str(result.reason_code or "rjct")[:80],
            str(result.reason_message or "the registry rejected the search")[:200],
        )

    def search_async(
        self,
        criteria_list: Sequence[Mapping[str, Any]],
        *,
        sender_uri: str,
        publish: bool = False,
        deadline: Deadline | None = None,
    ) -> str:
        """Start an asynchronous search; returns its transaction id (``wait_for`` it).

        With ``publish`` the records of the on-search callback are also published raw."""
        message = msgs.search_message(criteria_list)
        transaction_id = str(message["transaction_id"])
        self._register(transaction_id, publish)
        try:
            answer = self._post(
                "search",
                codes.SEARCH,
                message,
                total_count=len(criteria_list),
                sender_uri=sender_uri,
                deadline=deadline,
            )
            self._expect_ack(answer, "DCI search")
        except BaseException:
            with self._lock:
                self._pending.pop(transaction_id, None)
            raise
        return transaction_id

    def _register(self, transaction_id: str, publish: bool) -> None:
        now = self.clock.monotonic()
        with self._lock:
            for txn in [t for t, p in self._pending.items() if p.expires_at < now]:
                del self._pending[txn]
            if len(self._pending) >= MAX_PENDING:
                raise DciRefused(
                    self.http.partner,
                    "DCI search",
                    "too_many_pending",
                    f"{MAX_PENDING} asynchronous searches are already waiting",
                )
            self._pending[transaction_id] = _Pending(now + self.pending_ttl, publish)

    def claim_on_search(self, transaction_id: str) -> bool | None:
        """Whether the on-search for ``transaction_id`` should be published; None if we are not
        waiting for that transaction (then the callback is refused)."""
        with self._lock:
            pending = self._pending.get(transaction_id)
            if pending is None or pending.expires_at < self.clock.monotonic():
                return None
            return pending.publish

    def deliver_on_search(self, transaction_id: str, results: list[SearchResult]) -> None:
        with self._lock:
            pending = self._pending.get(transaction_id)
        if pending is not None:
            pending.results = results
            pending.done.set()

    def wait_for(self, transaction_id: str, timeout: float) -> list[SearchResult] | None:
        """The results of an asynchronous search, or None if they did not come in time."""
        with self._lock:
            pending = self._pending.get(transaction_id)
        if pending is None:
            return None
        if not pending.done.wait(timeout):
            return None
        with self._lock:
            self._pending.pop(transaction_id, None)
        return pending.results

    # --- subscriptions -------------------------------------------------------------------------

    def subscribe(self, event_types: Iterable[str], *, sender_uri: str) -> str:
        """Subscribe to notifications of ``event_types``; returns the correlation id. The
        subscription codes come later in the on-subscribe callback."""
        message = msgs.subscribe_message(list(event_types))
        answer = self._post(
            "subscribe",
            codes.SUBSCRIBE,
            message,
            total_count=len(message["subscribe_request"]),
            sender_uri=sender_uri,
        )
        return self._expect_ack(answer, "DCI subscribe")

    def unsubscribe(self, subscription_codes: Sequence[str], *, sender_uri: str) -> str:
        message = msgs.unsubscribe_message(subscription_codes)
        answer = self._post(
            "unsubscribe",
            codes.UNSUBSCRIBE,
            message,
            total_count=len(subscription_codes),
            sender_uri=sender_uri,
        )
        return self._expect_ack(answer, "DCI unsubscribe")
