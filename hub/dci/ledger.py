"""What the DCI server remembers between requests: transactions (for txn/status) and the
message ids already seen (for replay protection).

Transactions keep per-request statuses, never the records that were sent: personal data
stays in the registry tables, where access is controlled. Seen message ids are purged once
they are older than the accepted ``message_ts`` window (a message that old is refused on its
timestamp anyway), so the table's size is bounded by the window, not by traffic.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.dci.tables import DciSeenMessage, DciTransaction
from registry_core.db import utcnow
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, ParsedEnvelope, timestamp

PURGE_EVERY_SECONDS = 60
REFERENCE_SCAN_LIMIT = 500  # newest transactions searched for a reference_id_list


class MessageLedger:
    def __init__(self, sessions: sessionmaker[Session], window: timedelta) -> None:
        self._sessions = sessions
        self._window = window
        self._last_purge = 0.0

    def remember(self, envelope: ParsedEnvelope) -> None:
        """Record (sender_id, message_id); a second use is a replay: EnvelopeError (409)."""
        now = time.monotonic()
        try:
            with self._sessions() as session, session.begin():
                if now - self._last_purge > PURGE_EVERY_SECONDS:
                    self._last_purge = now
                    session.execute(
                        delete(DciSeenMessage).where(
                            DciSeenMessage.seen_at < utcnow() - self._window
                        )
                    )
                session.add(
                    DciSeenMessage(sender_id=envelope.sender_id, message_id=envelope.message_id)
                )
        except IntegrityError:
            raise EnvelopeError(
                codes.ERR_REQUEST_BAD,
                "this message_id was already received from this sender; use a new message_id",
                reason_code=codes.RJCT_MESSAGE_ID_DUPLICATE,
                http_status=409,
            ) from None


class TransactionStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def start(
        self,
        envelope: ParsedEnvelope,
        correlation_id: str,
        txn_type: str,
        items: list[dict[str, Any]],
        callback: str | None,
        status: str = codes.PDNG,
    ) -> None:
        with self._sessions() as session, session.begin():
            session.add(
                DciTransaction(
                    correlation_id=correlation_id,
                    sender_id=envelope.sender_id,
                    transaction_id=str(envelope.message.get("transaction_id", ""))[:99],
                    message_id=envelope.message_id,
                    txn_type=txn_type,
                    status=status,
                    items=items,
                    callback_uri=callback,
                    callback_status="none" if callback is None else None,
                    completed_at=utcnow() if status != codes.PDNG else None,
                )
            )

    def finish(
        self,
        correlation_id: str,
        status: str,
        items: list[dict[str, Any]] | None,
        callback_status: str | None = None,
        callback_error: str | None = None,
    ) -> None:
        with self._sessions() as session, session.begin():
            row = session.get(DciTransaction, correlation_id)
            if row is None:
                return
            row.status = status
            if items is not None:
                row.items = items
            row.completed_at = utcnow()
            if callback_status:
                row.callback_status = callback_status
                row.callback_error = callback_error

    def find(self, sender_id: str, request: dict[str, Any]) -> list[DciTransaction]:
        """The sender's transactions a TxnStatusRequest points at (never another sender's)."""
        kind = request["attribute_type"]
        value = request["attribute_value"]
        with self._sessions() as session:
            query = select(DciTransaction).where(
                DciTransaction.sender_id == sender_id,
                DciTransaction.txn_type == request["txn_type"],
            )
            if kind == "transaction_id" and isinstance(value, str):
                query = query.where(DciTransaction.transaction_id == value)
            elif kind == "correlation_id" and isinstance(value, str):
                query = query.where(DciTransaction.correlation_id == value)
            elif kind == "reference_id_list" and isinstance(value, list):
                wanted = {str(v) for v in value}
                recent = session.scalars(
                    query.order_by(DciTransaction.created_at.desc()).limit(REFERENCE_SCAN_LIMIT)
                ).all()
                return [
                    row
                    for row in recent
                    if any(item.get("reference_id") in wanted for item in row.items)
                ]
            else:
                return []
            return list(session.scalars(query.order_by(DciTransaction.created_at).limit(50)))


def status_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stored per-request status as a search_response item (no records: status only)."""
    answer = {
        "reference_id": str(item.get("reference_id", "")),
        "timestamp": item.get("timestamp") or timestamp(),
        "status": item.get("status", codes.PDNG),
    }
    if item.get("status_reason_code") in codes.SEARCH_REASON_CODES:
        answer["status_reason_code"] = item["status_reason_code"]
    if item.get("status_reason_message"):
        answer["status_reason_message"] = str(item["status_reason_message"])[:999]
    return answer
