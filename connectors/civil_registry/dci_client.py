"""The DCI (SPDCI) CRVS client: search (sync and async), subscribe, unsubscribe.

All calls go through the connector's ``PartnerHttpClient`` (timeouts, retries, circuit breaker,
rate limit) with ``Authorization: Bearer <token>``. Every request is signed with the hub's
ed25519 key when the hub gave one (the envelope's ``signature``; ``kidId`` names our configured
``sender_id``); without a key the field is left out, never sent as ``null``. When the
registry's public key is configured, what it signs (sync answers, callbacks) must verify:
``verify`` refuses a missing or wrong signature with the DCI error code and the reason.

Asynchronous answers arrive later as POSTs to the ``sender_uri`` we give with each request: the
full callback URL of that action, which the registry calls as given (the spec's example is
``https://spp.example.org/{namespace}/callback/on-search``). The blueprint hands an
``on-search`` body to ``deliver_on_search``, which wakes whoever waits on that transaction.
Only transactions we started are accepted there: an ``on-search`` for an unknown transaction
id is refused, so nobody can slip records in by inventing one. Subscriptions are tracked by
``DciSubscriptions`` until their ``on-subscribe`` confirms them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connectors.base import Clock, MessageSigningKey, PartnerHttpClient, PermanentPartnerError
from connectors.base.clock import Deadline
from connectors.base.status import ConnectorStatus
from connectors.civil_registry import dci_messages as msgs
from connectors.civil_registry.dci_messages import DciAnswerError, SearchResult
from connectors.civil_registry.dci_subscriptions import DciSubscriptions
from standards.dci import codes
from standards.dci.envelope import request_header
from standards.dci.signature import (
    DEFAULT_MAX_LIFETIME_SECONDS,
    SignatureError,
    sign_envelope,
    verify_envelope,
)

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
        signing_key: MessageSigningKey | None = None,
        registry_key: Ed25519PublicKey | None = None,
        locale: str = msgs.LOCALE,
        reg_type: str = msgs.CRVS_REG_TYPE,
        record_type: str = msgs.PERSON_RECORD_TYPE,
        status: ConnectorStatus | None = None,
    ) -> None:
        self.http = http
        self.sender_id = sender_id
        self.receiver_id = receiver_id
        self.clock = clock
        self.pending_ttl = pending_ttl
        self.signing_key = signing_key
        self.registry_key = registry_key
        self.locale = locale
        self.reg_type = reg_type
        self.record_type = record_type
        self.subscriptions = DciSubscriptions(clock, pending_ttl, status)
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

    # --- signatures ----------------------------------------------------------------------------

    def envelope(self, header: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
        """``{signature?, header, message}``: signed when the hub gave us a key."""
        body: dict[str, Any] = {"header": header, "message": message}
        if self.signing_key is not None:
            body["signature"] = sign_envelope(
                header,
                message,
                self.signing_key.private_key,
                sender_id=self.sender_id,
                key_id=self.signing_key.key_id,
            )
        return body

    def verify(self, signature: Any, header: Any, message: Any) -> None:
        """Check what the registry signed against its configured public key; raise
        ``SignatureError`` (``err.signature.missing`` / ``.invalid`` and why) when it does not
        hold. Without a configured key nothing can be checked, and nothing is refused."""
        if self.registry_key is None:
            return
        params = verify_envelope(
            signature,
            header,
            message,
            self.registry_key,
            max_lifetime_seconds=DEFAULT_MAX_LIFETIME_SECONDS,
        )
        sender = header.get("sender_id") if isinstance(header, dict) else None
        if sender is not None and params.sender_id != str(sender):
            raise SignatureError(
                codes.ERR_SIGNATURE_INVALID,
                "the signature's kidId names another sender than header.sender_id",
            )

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
        operation = f"DCI {action}"
        url = self.http.url(path)

        def attempt(timeout: float) -> Any:
            # A fresh header (message_id, message_ts) and signature per attempt: a registry
            # that refuses a replayed message_id (ours does, with 409) would otherwise refuse
            # the retry of a request whose answer was lost.
            header = request_header(
                action,
                sender_id=self.sender_id,
                receiver_id=self.receiver_id,
                total_count=total_count,
                sender_uri=sender_uri,
            )
            body = self.envelope(header, message)
            response = self.http.send_once(
                "POST", url, timeout=timeout, operation=operation, json=body
            )
            return self.http.json_of(response, operation)

        answer = self.http.caller.call(attempt, operation=operation, deadline=deadline)
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
        """Synchronous search (``/registry/sync/search``): one result per criteria block.

        The answer is an on-search envelope: its signature is checked when the registry's key
        is configured (``DciRefused`` with ``err.signature.*`` otherwise)."""
        message = self._search_message(criteria_list)
        answer = self._post(
            "sync/search",
            codes.SEARCH,
            message,
            total_count=len(criteria_list),
            deadline=deadline,
        )
        try:
            self.verify(answer.get("signature"), answer.get("header"), answer["message"])
        except SignatureError as error:
            raise DciRefused(self.http.partner, "DCI search", error.code, error.message) from None
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

        With ``publish`` the records of the on-search callback are also published raw.
        ``sender_uri`` is the full URL of our on-search view."""
        message = self._search_message(criteria_list)
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

    def _search_message(self, criteria_list: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return msgs.search_message(criteria_list, locale=self.locale, reg_type=self.reg_type)

    # --- subscriptions -------------------------------------------------------------------------

    def subscribe(
        self,
        event_types: Iterable[str],
        *,
        sender_uri: str,
        filter: Any,
        filter_type: str | None = None,
    ) -> str:
        """Subscribe to notifications of ``event_types`` (as the registry spells them);
        returns the correlation id. ``sender_uri`` is the full URL of our on-subscribe view;
        the subscription codes come in that callback (``self.subscriptions`` tracks it)."""
        message = msgs.subscribe_message(
            list(event_types),
            filter=filter,
            filter_type=filter_type,
            locale=self.locale,
            reg_type=self.reg_type,
            record_type=self.record_type,
        )
        transaction_id = str(message["transaction_id"])
        self.subscriptions.sent(transaction_id, msgs.subscribe_references(message))
        try:
            answer = self._post(
                "subscribe",
                codes.SUBSCRIBE,
                message,
                total_count=len(message["subscribe_request"]),
                sender_uri=sender_uri,
            )
            correlation_id = self._expect_ack(answer, "DCI subscribe")
        except BaseException:
            self.subscriptions.failed(transaction_id)
            raise
        self.subscriptions.acknowledged(transaction_id, correlation_id)
        return correlation_id

    def unsubscribe(self, subscription_codes: Sequence[str], *, sender_uri: str) -> str:
        """Ask the registry to drop ``subscription_codes``; ``sender_uri`` is the full URL of
        our on-unsubscribe view."""
        message = msgs.unsubscribe_message(subscription_codes)
        answer = self._post(
            "unsubscribe",
            codes.UNSUBSCRIBE,
            message,
            total_count=len(subscription_codes),
            sender_uri=sender_uri,
        )
        return self._expect_ack(answer, "DCI unsubscribe")
