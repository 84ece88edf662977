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

from sqlalchemy import JSON, bindparam, delete, insert, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.dci.tables import DciSeenMessage, DciTransaction
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, ParsedEnvelope, timestamp
from standards.timeutil import utcnow

PURGE_EVERY_SECONDS = 60
REFERENCE_SCAN_LIMIT = 500  # newest transactions searched for a reference_id_list


_REPLAY = "this message_id was already received from this sender; use a new message_id"

# PostgreSQL: the message id and the finished transaction in one atomic statement. The
# transaction row is written only when the message id was new (``FROM seen`` has a row), so
# "no row returned" means a replay and nothing was written.
_SEEN_AND_DONE_PG = text(
    "WITH seen AS ("
    " INSERT INTO dci_seen_messages (sender_id, message_id, seen_at)"
    " VALUES (:sender_id, :message_id, :now) ON CONFLICT DO NOTHING RETURNING 1"
    ") INSERT INTO dci_transactions (correlation_id, sender_id, transaction_id, message_id,"
    " txn_type, status, items, callback_uri, callback_status, created_at, completed_at)"
    " SELECT :correlation_id, :sender_id, :transaction_id, :message_id, :txn_type, :status,"
    " :items, NULL, 'none', :now, :now FROM seen RETURNING 1"
).bindparams(bindparam("items", type_=JSON))


def _replayed() -> EnvelopeError:
    return EnvelopeError(
        codes.ERR_REQUEST_BAD,
        _REPLAY,
        reason_code=codes.RJCT_MESSAGE_ID_DUPLICATE,
        http_status=409,
    )


class MessageLedger:
    def __init__(self, sessions: sessionmaker[Session], window: timedelta) -> None:
        self._sessions = sessions
        self._window = window
        self._last_purge = 0.0

    def _purge_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_purge > PURGE_EVERY_SECONDS:
            self._last_purge = now
            return True
        return False

    def remember_answered(
        self,
        connection: Connection,
        envelope: ParsedEnvelope,
        correlation_id: str,
        txn_type: str,
        status: str,
        items: list[dict[str, Any]],
    ) -> None:
        """Spend the message id and record a transaction answered on the spot (sync search).

        Written on the caller's connection after the answer is built, so the whole request
        costs no separate round trips for the ledger: one statement on PostgreSQL (autocommit,
        see ``registry_core.db.read_connection``), one transaction on SQLite. A replayed
        message id raises EnvelopeError (409) and writes nothing; the answer is discarded.
        """
        now = utcnow()
        values = {
            "sender_id": envelope.sender_id,
            "message_id": envelope.message_id,
            "correlation_id": correlation_id,
            "transaction_id": str(envelope.message.get("transaction_id", ""))[:99],
            "txn_type": txn_type,
            "status": status,
            "items": items,
            "now": now,
        }
        if self._purge_due():
            connection.execute(
                delete(DciSeenMessage).where(DciSeenMessage.seen_at < now - self._window)
            )
        if connection.dialect.name == "postgresql":
            if connection.execute(_SEEN_AND_DONE_PG, values).first() is None:
                raise _replayed()
            return
        spent = connection.execute(
            sqlite_insert(DciSeenMessage)
            .values(sender_id=envelope.sender_id, message_id=envelope.message_id, seen_at=now)
            .on_conflict_do_nothing()
        )
        if spent.rowcount != 1:
            raise _replayed()
        connection.execute(
            insert(DciTransaction).values(
                correlation_id=correlation_id,
                sender_id=envelope.sender_id,
                transaction_id=values["transaction_id"],
                message_id=envelope.message_id,
                txn_type=txn_type,
                status=status,
                items=items,
                callback_uri=None,
                callback_status="none",
                created_at=now,
                completed_at=now,
            )
        )

    def remember(self, envelope: ParsedEnvelope) -> None:
        """Record (sender_id, message_id); a second use is a replay: EnvelopeError (409)."""
        try:
            with self._sessions() as session, session.begin():
                if self._purge_due():
                    session.execute(
                        delete(DciSeenMessage).where(
                            DciSeenMessage.seen_at < utcnow() - self._window
                        )
                    )
                session.add(
                    DciSeenMessage(sender_id=envelope.sender_id, message_id=envelope.message_id)
                )
        except IntegrityError:
            raise _replayed() from None


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


def txn_status_of(
    request: dict[str, Any],
    rows: list[DciTransaction],
    *,
    transaction_id: str,
    correlation_id: str,
) -> dict[str, Any]:
    """The ``txn_status`` answering a TxnStatusRequest from the sender's matching rows.

    No matching transaction is not a refusal of the status request: its answer says so per
    request, as the spec's ``search_response`` items do (``rjct``, ``rjct.reference_id.invalid``
    and a message). The spec requires ``transaction_id`` and ``correlation_id`` here: they name
    the id that was asked about when it was one of them, else the status request's own ids
    (``transaction_id``, ``correlation_id``), never another transaction's.
    """
    if rows:
        return {
            "transaction_id": rows[0].transaction_id or rows[0].correlation_id,
            "correlation_id": rows[0].correlation_id,
            "search_response": [status_item(item) for row in rows for item in row.items],
        }
    kind, value = request["attribute_type"], request["attribute_value"]
    answer: dict[str, Any] = {
        "transaction_id": transaction_id,
        "correlation_id": correlation_id,
        "search_response": [
            {
                "reference_id": str(request["reference_id"]),
                "timestamp": timestamp(),
                "status": codes.RJCT,
                "status_reason_code": codes.RJCT_REFERENCE_ID_INVALID,
                "status_reason_message": (
                    f"no {request['txn_type']} transaction of this sender matches this {kind}"
                ),
            }
        ],
    }
    if kind in ("transaction_id", "correlation_id") and isinstance(value, str) and value:
        answer[kind] = value[:99]
    return answer
