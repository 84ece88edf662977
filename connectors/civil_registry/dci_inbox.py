"""What to do with DCI calls the registry makes to us: notify, on-search, on-subscribe,
on-unsubscribe. Takes a checked envelope, returns the acknowledgement; no Flask.

Answers follow the DCI acknowledgement (``{"message": {"ack_status", "timestamp",
"correlation_id", "error"?}}``):

- ``ACK`` (200) once every usable record was *published*; records that could not be used are
  listed in ``error`` and kept in the rejection log, and the registry need not resend;
- ``NACK`` (4xx) with an ``err.*`` code when the message cannot be used at all;
- ``ERR`` ``err.service.unavailable`` (503) when publishing failed, so the registry sends the
  same notification again and nothing is lost (the records' message ids are stable, so the
  copy is dropped by the ingest).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from connectors.base import ConnectorContext
from connectors.civil_registry import dci_messages as msgs
from connectors.civil_registry.dci_client import DciClient
from connectors.civil_registry.rejections import RejectionLog
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, ParsedEnvelope, ack

MAX_REASONS_IN_ACK = 5


@dataclass(frozen=True)
class Answer:
    body: dict[str, Any]
    status: int


def nack(code: str, message: str, status: int = 400, ack_status: str = codes.NACK) -> Answer:
    return Answer(ack(ack_status, uuid.uuid4().hex, (code, message)), status)


def _ok(error: tuple[str, str] | None = None) -> Answer:
    return Answer(ack(codes.ACK, uuid.uuid4().hex, error), 200)


class DciInbox:
    """Handles checked DCI callbacks for one connector instance."""

    def __init__(
        self, context: ConnectorContext, client: DciClient, rejections: RejectionLog
    ) -> None:
        self.context = context
        self.client = client
        self.rejections = rejections
        self._lock = threading.Lock()
        self._callbacks: dict[str, dict[str, Any]] = {}  # action -> {count, last_at}

    def handle(self, action: str, envelope: ParsedEnvelope, message: dict[str, Any]) -> Answer:
        """Raises ``PublishFailed`` when the hub cannot take the records (the view answers ERR)."""
        self._seen(action)
        if action == codes.NOTIFY:
            return self._notify(message)
        if action == codes.ON_SEARCH:
            return self._on_search(message)
        if action == codes.ON_SUBSCRIBE:
            return self._on_subscribe(envelope.header, message)
        return self._on_unsubscribe(message)

    def _seen(self, action: str) -> None:
        """An authenticated, well-formed call arrived: the registry reaches our callback URL.
        Counted (``callbacks`` in the status, per action in ``snapshot``) and a success."""
        with self._lock:
            entry = self._callbacks.setdefault(action, {"count": 0, "last_at": None})
            entry["count"] += 1
            entry["last_at"] = self.context.clock.now().isoformat()
        status = self.context.connector_status
        status.count("callbacks")
        status.record_success()

    def _publish(self, extracted: msgs.Extracted, counter: str) -> Answer:
        for rejection in extracted.rejected:
            self.rejections.add(rejection, counter)
        if not extracted.records:
            reasons = "; ".join(r.reason for r in extracted.rejected[:MAX_REASONS_IN_ACK])
            raise EnvelopeError(
                codes.ERR_REQUEST_BAD, f"no usable record in the message: {reasons or 'empty'}"
            )
        self.context.publish_many(extracted.records)
        status = self.context.connector_status
        status.count("pushes_accepted")
        status.record_success()
        if extracted.rejected:
            reasons = "; ".join(
                f"{r.source}: {r.reason}" for r in extracted.rejected[:MAX_REASONS_IN_ACK]
            )
            return _ok(
                (
                    codes.ERR_REQUEST_BAD,
                    f"{len(extracted.records)} record(s) accepted, "
                    f"{len(extracted.rejected)} refused: {reasons}",
                )
            )
        return _ok()

    def _notify(self, message: dict[str, Any]) -> Answer:
        return self._publish(msgs.notify_records(message), "rows_rejected")

    def _on_search(self, message: dict[str, Any]) -> Answer:
        transaction_id = str(message["transaction_id"])
        publish = self.client.claim_on_search(transaction_id)
        if publish is None:
            raise EnvelopeError(
                codes.ERR_REQUEST_BAD,
                "message.transaction_id is not a search this hub is waiting for",
            )
        try:
            results = msgs.search_results(message)
        except msgs.DciAnswerError as error:
            raise EnvelopeError(codes.ERR_REQUEST_BAD, str(error)) from None
        answer = _ok()
        if publish:
            extracted = msgs.Extracted()
            for result in results:
                if result.ok and result.data is not None:
                    msgs.extract_records(
                        result.data,
                        reference_id=result.reference_id or transaction_id,
                        origin="dci_on_search",
                        into=extracted,
                    )
            if extracted.records or extracted.rejected:
                answer = self._publish(extracted, "rows_rejected")
        self.client.deliver_on_search(transaction_id, results)
        return answer

    def _on_subscribe(self, header: dict[str, Any], message: dict[str, Any]) -> Answer:
        if not self.client.subscriptions.on_subscribe(header, message):
            raise EnvelopeError(
                codes.ERR_REQUEST_BAD,
                "message.transaction_id / correlation_id answer no subscribe this hub sent",
            )
        return _ok()

    def _on_unsubscribe(self, message: dict[str, Any]) -> Answer:
        self.client.subscriptions.on_unsubscribe(message)
        return _ok()

    def snapshot(self) -> dict[str, Any]:
        """Confirmed subscription codes, every subscribe and its fate, callbacks received."""
        with self._lock:
            callbacks = {k: dict(v) for k, v in self._callbacks.items()}
        return {
            "subscriptions": self.client.subscriptions.codes(),
            **self.client.subscriptions.snapshot(),
            "callbacks": callbacks,
            "signatures": {
                "signing": self.client.signing_key is not None,
                "verifying_registry": self.client.registry_key is not None,
            },
        }
