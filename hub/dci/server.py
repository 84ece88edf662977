"""The DCI Social Registry server: one ``handle(endpoint, body)`` for every DCI endpoint.

Kept apart from Flask so the protocol logic can be read (and tested) in one place. Each request
goes through the same gate, in this order, and the first failure decides the answer:

1. envelope shape, header fields, version, action, timestamp window (``standards.dci``);
2. the sender's signature: every sender signs with a key registered for it, except a sender an
   operator let in unsigned (``srhub dci allow-unsigned``); a signature that is present must
   verify, whoever sends it;
3. our JSON Schema for the endpoint (``standards.dci.validation``, ``schemas/``);
4. for async endpoints, a callback target registered for the sender (deny by default);
5. replay protection on (sender_id, message_id).

Then sync endpoints answer with the callback-shaped body at once; async endpoints store a
transaction, answer ``ACK`` (or ``NACK`` when the work queue is full) and post the ``on-*``
callback from a small thread pool. Every body with a header is signed. Errors never become a
500: unexpected failures answer ``err.service.unavailable`` with an incident id in the log.
Every refusal carries the spec's ``errors`` list and RFC 9457 problem members besides its DCI
body (an ``ERR`` ack, or a ``rjct`` header on the sync endpoints).

What a search shows is the caller's ``ReadScope`` (from its role, decided by the web layer):
everything, what its program's consents cover, or nothing personal (``hub.dci.search``).

The sync search is the hot path (partners look people up one at a time), so it is built to
cost two database round trips: senders' keys come from a short cache (``KeyDirectory``), the
search reads its page and members in one statement, and step 5 is done last, in the same
statement that records the transaction (``MessageLedger.remember_answered``), on the same
autocommit connection. A replayed message id is still refused and its answer discarded. On
PostgreSQL those connections come from a pool of their own whose commits do not wait for the
WAL flush (``relaxed_search_ledger``): the only thing they write is that ledger row.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.roles import Principal
from hub.dci.authentication import authenticate
from hub.dci.config import DciConfig, SigningKey
from hub.dci.delivery import callback_sender, post_envelope
from hub.dci.ledger import MessageLedger, TransactionStore, txn_status_of
from hub.dci.search import answer_item, consent_purpose, failed_answer
from hub.dci.senders import KeyDirectory, callback_url
from hub.dci.subscriptions import subscribe_item, unsubscribe_codes
from hub.readaudit.log import ReadAuditLog
from hub.readaudit.records import ReadEntry, ReadRecords
from hub.workers.egress import EgressPolicy
from registry_core.consent import ReadScope
from registry_core.crypto import IdentifierCipher
from registry_core.db import is_postgresql, make_engine, read_connection
from registry_core.queries import HouseholdQueries
from standards.dci import codes, validation
from standards.dci.envelope import (
    EnvelopeError,
    ParsedEnvelope,
    ack,
    callback_header,
    check_batch_size,
    http_errors,
    new_id,
    parse_envelope,
    problem_fields,
    timestamp,
)
from standards.dci.signature import sign_envelope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    path: str  # the spec's path, used to find its schema in standards.dci.validation
    action: str  # the header.action it takes
    sync: bool
    reply_action: str  # action of the answer (sync) or of the callback (async)


ENDPOINTS: dict[str, Endpoint] = {
    "search": Endpoint("/registry/search", codes.SEARCH, False, codes.ON_SEARCH),
    "sync/search": Endpoint("/registry/sync/search", codes.SEARCH, True, codes.ON_SEARCH),
    "subscribe": Endpoint("/registry/subscribe", codes.SUBSCRIBE, False, codes.ON_SUBSCRIBE),
    "unsubscribe": Endpoint(
        "/registry/unsubscribe", codes.UNSUBSCRIBE, False, codes.ON_UNSUBSCRIBE
    ),
    "txn/status": Endpoint("/registry/txn/status", codes.TXN_STATUS, False, codes.TXN_ON_STATUS),
    "sync/txn/status": Endpoint(
        "/registry/sync/txn/status", codes.TXN_STATUS, True, codes.TXN_ON_STATUS
    ),
}
CALLBACK_SCHEMA_PATHS = {
    codes.ON_SEARCH: "/registry/on-search",
    codes.ON_SUBSCRIBE: "/registry/on-subscribe",
    codes.ON_UNSUBSCRIBE: "/registry/on-unsubscribe",
    codes.TXN_ON_STATUS: "/registry/txn/on-status",
}


def _search_engine(engine: Engine, relaxed: bool) -> Engine:
    """The engine of the sync search path: the registry's own on SQLite; on PostgreSQL a pool
    of its own, without a ping per checkout (``_sync_search`` retries a search whose
    connection turns out dead instead) and, when ``relaxed``, whose sessions commit without
    waiting for the WAL flush."""
    if not is_postgresql(engine):
        return engine
    options = {"options": "-c synchronous_commit=off"} if relaxed else {}
    return make_engine(
        engine.url.render_as_string(hide_password=False),
        pool_pre_ping=False,
        connect_args=options,
    )


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class DciServer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: IdentifierCipher,
        config: DciConfig,
        signing_key: SigningKey,
        egress: EgressPolicy | None = None,
        program_purpose: Callable[[str], str | None] | None = None,
        read_audit: ReadAuditLog | None = None,
    ) -> None:
        """``program_purpose``: the purpose a program's reads are recorded under when its
        search names none (its subscriptions' purpose, ``hub.subscriptions.purpose``);
        ``read_audit``: the process's read-audit log (one of its own when not given)."""
        self.sessions = sessions
        self.program_purpose = program_purpose
        self.config = config
        self.signing_key = signing_key
        self.queries = HouseholdQueries(sessions, cipher, score_model=config.score_model or None)
        self.transactions = TransactionStore(sessions)
        self.ledger = MessageLedger(sessions, config.max_age + config.max_future)
        self.keys = KeyDirectory(sessions, config.key_cache_seconds)
        self.read_audit = read_audit or ReadAuditLog(sessions)
        self.search_engine = _search_engine(self.queries.engine, config.relaxed_search_ledger)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0
        # One pooled sender for every callback (hub.workers.outbound), closed with the server.
        self.callbacks = callback_sender(
            config.callback_timeout_seconds, config.callback_attempts, egress=egress
        )
        # Outgoing bodies that broke our message schemas (by path, no values): a bug of ours.
        self.outgoing_problems: list[str] = []

    # ------------------------------------------------------------------ plumbing

    def close(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait)
        self.callbacks.close()
        if self.search_engine is not self.queries.engine:
            self.search_engine.dispose()

    def _submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; False when the queue is full (the caller answers NACK)."""
        with self._lock:
            if self._pending >= self.config.max_pending:
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.config.async_workers, thread_name_prefix="dci"
                )
            self._pending += 1
            executor = self._executor

        def run() -> None:
            try:
                job()
            except Exception:  # a job must never kill the pool thread silently
                log.exception("DCI async job failed")
            finally:
                with self._lock:
                    self._pending -= 1

        executor.submit(run)
        return True

    def _sign(self, header: dict[str, Any], message: Any) -> str:
        return sign_envelope(
            header,
            message,
            self.signing_key.private_key,
            sender_id=self.config.registry_id,
            key_id=self.signing_key.key_id,
        )

    def _envelope(self, header: dict[str, Any], message: Any | None) -> dict[str, Any]:
        body: dict[str, Any] = {"signature": self._sign(header, message), "header": header}
        if message is not None:
            body["message"] = message
        return body

    def _check_outgoing(self, problems: list[validation.Problem], what: str) -> None:
        if problems:
            summary = "; ".join(str(p) for p in problems[:5])
            self.outgoing_problems.append(f"{what}: {summary}")
            log.error("outgoing DCI %s breaks the DCI message schema: %s", what, summary)

    def _callback_header(
        self,
        action: str,
        receiver_id: str | None,
        status: str,
        total: int,
        reason_code: str | None = None,
        reason_message: str | None = None,
    ) -> dict[str, Any]:
        return callback_header(
            action,
            sender_id=self.config.registry_id,
            receiver_id=receiver_id,
            status=status,
            total_count=total,
            completed_count=total,
            reason_code=reason_code,
            reason_message=reason_message,
        )

    # ------------------------------------------------------------------ the gate

    def handle(
        self, name: str, body: Any, scope: ReadScope, reader: Principal | None = None
    ) -> Reply:
        """Answer one DCI request for a caller who may read ``scope``; logs who asked what and
        the outcome (and whether the request was signed), never the content. A search's
        answer is recorded in the read audit as read by ``reader`` (``hub.readaudit``)."""
        signed: list[bool] = []
        reply = self._handle(name, body, scope, signed, reader)
        header = body.get("header") if isinstance(body, dict) else None
        sender = header.get("sender_id") if isinstance(header, dict) else None
        message_id = header.get("message_id") if isinstance(header, dict) else None
        outcome = reply.body.get("message", {}) if isinstance(reply.body, dict) else {}
        if not isinstance(outcome, dict):
            outcome = {}
        log.info(
            "DCI %s sender=%.80s message_id=%.99s %s-> %s %s",
            name[:60],
            sender if isinstance(sender, str) else "-",
            message_id if isinstance(message_id, str) else "-",
            {True: "signed ", False: "unsigned (allowed) "}.get(signed[0]) if signed else "",
            reply.status,
            outcome.get("ack_status") or reply.body.get("header", {}).get("status", ""),
        )
        return reply

    def _handle(
        self,
        name: str,
        body: Any,
        scope: ReadScope,
        signed: list[bool],
        reader: Principal | None = None,
    ) -> Reply:
        endpoint = ENDPOINTS.get(name)
        correlation_id = new_id()
        if endpoint is None:
            error = EnvelopeError(
                codes.ERR_NOT_FOUND,
                "no such DCI endpoint; this registry serves registry/search, registry/sync/search,"
                " registry/subscribe, registry/unsubscribe, registry/txn/status and "
                "registry/sync/txn/status",
                http_status=404,
            )
            return Reply(404, self._ack_refusal(error, correlation_id))
        sender: str | None = None
        try:
            envelope = parse_envelope(
                body,
                endpoint.action,
                max_age=self.config.max_age,
                max_future=self.config.max_future,
                receiver_id=self.config.receiver_id or None,
            )
            sender = envelope.sender_id
            signed.append(self._check_signature(envelope))
            problems = validation.request_problems(endpoint.path, body)
            if problems:
                raise EnvelopeError(
                    codes.ERR_REQUEST_BAD,
                    "the message does not match the DCI schema: "
                    + "; ".join(str(p) for p in problems[:5]),
                )
            callback = None
            if not endpoint.sync:
                with self.sessions() as session:
                    callback = callback_url(
                        session, sender, envelope.header.get("sender_uri"), endpoint.reply_action
                    )
            self._check_batch(endpoint, envelope)
            if endpoint.sync and endpoint.action == codes.SEARCH:
                return self._sync_search(endpoint, envelope, correlation_id, scope, reader)
            self.ledger.remember(envelope)
            return self._dispatch(endpoint, envelope, correlation_id, callback, scope, reader)
        except EnvelopeError as error:
            return self._refuse(endpoint, error, correlation_id, sender)
        except SQLAlchemyError:
            incident = uuid.uuid4().hex[:12]
            log.exception("DCI %s: database unavailable (incident %s)", name, incident)
            return self._unavailable(endpoint, correlation_id, sender, incident)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("DCI %s: unexpected failure (incident %s)", name, incident)
            return self._unavailable(endpoint, correlation_id, sender, incident)

    def _unavailable(
        self, endpoint: Endpoint, correlation_id: str, sender: str | None, incident: str
    ) -> Reply:
        error = EnvelopeError(
            codes.ERR_UNAVAILABLE,
            f"the registry cannot serve this request now; retry later (incident {incident})",
            http_status=503,
        )
        return self._refuse(endpoint, error, correlation_id, sender)

    @staticmethod
    def _ack_refusal(error: EnvelopeError, correlation_id: str, text: str | None = None) -> dict:
        """An async refusal: the spec's ``ERR`` ack plus the problem fields."""
        text = text or error.message
        return {
            **problem_fields(error.code, text, error.http_status),
            **ack(codes.ERR, correlation_id, (error.code, text)),
        }

    def _refuse(
        self, endpoint: Endpoint, error: EnvelopeError, correlation_id: str, sender: str | None
    ) -> Reply:
        """The refusal body for ``error``: async endpoints answer an ``ERR`` ack; sync ones a
        signed ``rjct`` header (the spec's default answer) or, for 401/403, the spec's
        ``HttpErrorResponse``; all of them with ``errors`` and the problem members."""
        text = f"{error.reason_code}: {error.message}" if error.reason_code else error.message
        status = error.http_status
        if not endpoint.sync:
            return Reply(status, self._ack_refusal(error, correlation_id, text))
        if status in (401, 403):
            return Reply(status, http_errors(error.code, text, status))
        header = self._callback_header(
            endpoint.reply_action,
            sender,
            codes.RJCT,
            0,
            reason_code=error.reason_code,
            reason_message=f"{error.code}: {text}",
        )
        refusal = {**problem_fields(error.code, text, status), **self._envelope(header, None)}
        return Reply(status, refusal)

    def _check_signature(self, envelope: ParsedEnvelope) -> bool:
        """Refuse the request unless its sender is authenticated; True when it was signed."""
        trust = self.keys.trust(envelope.sender_id)
        return authenticate(
            envelope,
            trust,
            self.config.max_clock_skew_seconds,
            self.config.max_signature_lifetime_seconds,
        )

    def _check_batch(self, endpoint: Endpoint, envelope: ParsedEnvelope) -> None:
        """Batch limits before the message id is spent, so a corrected resend is not a replay."""
        key = {codes.SEARCH: "search_request", codes.SUBSCRIBE: "subscribe_request"}.get(
            endpoint.action
        )
        if key is not None:
            check_batch_size(len(envelope.message[key]), envelope.header, self.config.max_batch)

    def _dispatch(
        self,
        endpoint: Endpoint,
        envelope: ParsedEnvelope,
        correlation_id: str,
        callback: str | None,
        scope: ReadScope,
        reader: Principal | None = None,
    ) -> Reply:
        if endpoint.action == codes.SEARCH:
            return self._search(endpoint, envelope, correlation_id, callback, scope, reader)
        if endpoint.action == codes.SUBSCRIBE:
            return self._subscribe(envelope, correlation_id, callback)
        if endpoint.action == codes.UNSUBSCRIBE:
            return self._unsubscribe(envelope, correlation_id, callback)
        return self._txn_status(endpoint, envelope, correlation_id, callback)

    # ------------------------------------------------------------------ async helpers

    def _accept(self, correlation_id: str, job: Callable[[], None]) -> Reply:
        if not self._submit(job):
            self.transactions.finish(
                correlation_id, codes.RJCT, None, "none", "queue full: answered NACK"
            )
            busy = "the registry is busy; send the request again later"
            return Reply(
                429,
                {
                    **problem_fields(codes.ERR_TOO_MANY, busy, 429),
                    **ack(codes.NACK, correlation_id, (codes.ERR_TOO_MANY, busy)),
                },
            )
        return Reply(200, ack(codes.ACK, correlation_id))

    def _post_callback(
        self,
        correlation_id: str,
        url: str,
        body: dict[str, Any],
        status: str,
        items: list[dict[str, Any]] | None,
    ) -> None:
        action = body["header"]["action"]
        self._check_outgoing(
            validation.answer_problems(CALLBACK_SCHEMA_PATHS[action], body), f"{action} callback"
        )
        result = post_envelope(url, body, sender=self.callbacks)
        self.transactions.finish(
            correlation_id, status, items, "sent" if result.ok else "failed", result.error
        )

    # ------------------------------------------------------------------ search

    def _sync_search(
        self,
        endpoint: Endpoint,
        envelope: ParsedEnvelope,
        correlation_id: str,
        scope: ReadScope,
        reader: Principal | None = None,
    ) -> Reply:
        """Search, then spend the message id and record the transaction: one connection.

        A connection found dead during the search (the database restarted since it was
        pooled: the pool has no ping) invalidates the pool, and the search runs once more on
        a fresh one. A failure while writing the ledger row is not retried: the row may have
        been written, and a second try would call the request a replay.
        """
        for attempt in (1, 2):
            touched: list[dict[str, Any]] = []
            with read_connection(self.search_engine) as connection:
                try:
                    body, status, summary = self._search_answer(
                        envelope, correlation_id, scope, connection, touched
                    )
                except DBAPIError as error:
                    if attempt == 1 and error.connection_invalidated:
                        continue
                    raise
                self.ledger.remember_answered(
                    connection, envelope, correlation_id, "search", status, summary
                )
            break
        # After the search's connection is given back: on SQLite it holds the write lock.
        self._record_read(envelope, endpoint, reader, touched)
        self._check_outgoing(validation.answer_problems(endpoint.path, body), "sync search answer")
        return Reply(200, body)

    def _record_read(
        self,
        envelope: ParsedEnvelope,
        endpoint: Endpoint,
        reader: Principal | None,
        touched: list[dict[str, Any]],
    ) -> None:
        """The search in the read audit: the households answered, the purpose the items name
        (``search_criteria.consent.purpose.code``; else the program's subscription purpose),
        the query types (never the values searched)."""
        if reader is None:
            return
        items = envelope.message["search_request"]
        named = sorted({p for i in items if (p := consent_purpose(i["search_criteria"]))})
        purpose = ",".join(named)[:64] or None
        if purpose is None and reader.program and self.program_purpose is not None:
            purpose = self.program_purpose(reader.program)
        kinds = sorted({str(i["search_criteria"].get("query_type", "?"))[:20] for i in items})
        entry = ReadEntry.by(
            reader,
            "dci",
            f"POST /dci{endpoint.path}",
            ReadRecords.of_households(touched),
            purpose,
            ("dci:" + "+".join(kinds))[:64],
        )
        self.read_audit.append(entry)

    def _search(
        self,
        endpoint: Endpoint,
        envelope: ParsedEnvelope,
        correlation_id: str,
        callback: str | None,
        scope: ReadScope,
        reader: Principal | None = None,
    ) -> Reply:
        assert callback is not None
        pending = [
            {"reference_id": str(r["reference_id"]), "timestamp": timestamp(), "status": codes.PDNG}
            for r in envelope.message["search_request"]
        ]
        self.transactions.start(envelope, correlation_id, "search", pending, callback)

        def job() -> None:
            try:
                touched: list[dict[str, Any]] = []
                body, status, summary = self._search_answer(
                    envelope, correlation_id, scope, touched=touched
                )
                # Recorded before the callback leaves; a failure to record sends no records.
                self._record_read(envelope, endpoint, reader, touched)
            except Exception:
                incident = uuid.uuid4().hex[:12]
                log.exception("DCI async search failed (incident %s)", incident)
                reason = f"the search failed here (incident {incident}); send it again later"
                message, summary = failed_answer(envelope.message, correlation_id, reason)
                header = self._callback_header(
                    codes.ON_SEARCH, envelope.sender_id, codes.RJCT, len(summary), None, reason
                )
                body, status = self._envelope(header, message), codes.RJCT
            self._post_callback(correlation_id, callback, body, status, summary)

        return self._accept(correlation_id, job)

    def _search_answer(
        self,
        envelope: ParsedEnvelope,
        correlation_id: str,
        scope: ReadScope,
        connection: Connection | None = None,
        touched: list[dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
        seen: set[str] = set()
        answers = [
            answer_item(
                item,
                seen,
                self.queries,
                scope,
                default_page_size=self.config.default_page_size,
                max_page_size=self.config.max_page_size,
                connection=connection,
                touched=touched,
            )
            for item in envelope.message["search_request"]
        ]
        status = codes.SUCC if any(a["status"] == codes.SUCC for a in answers) else codes.RJCT
        message = {
            "transaction_id": envelope.message["transaction_id"],
            "correlation_id": correlation_id,
            "search_response": answers,
        }
        header = self._callback_header(codes.ON_SEARCH, envelope.sender_id, status, len(answers))
        summary = [
            {k: v for k, v in a.items() if k not in ("data", "pagination", "locale")}
            for a in answers
        ]
        return self._envelope(header, message), status, summary

    # ------------------------------------------------------------------ subscribe

    def _subscribe(
        self, envelope: ParsedEnvelope, correlation_id: str, callback: str | None
    ) -> Reply:
        assert callback is not None
        requests_ = envelope.message["subscribe_request"]
        with self.sessions() as session:
            notify_url = callback_url(
                session, envelope.sender_id, envelope.header.get("sender_uri"), "notify"
            )
        answers: list[dict[str, Any]] = []
        seen: set[str] = set()
        with self.sessions() as session, session.begin():
            for item in requests_:
                answers.append(
                    subscribe_item(
                        session,
                        self.queries,
                        sender_id=envelope.sender_id,
                        transaction_id=str(envelope.message["transaction_id"]),
                        item=item,
                        notify_url=notify_url,
                        seen=seen,
                    )
                )
        status = codes.SUCC if any(a["status"] == codes.SUCC for a in answers) else codes.RJCT
        summary = [{k: v for k, v in a.items() if k != "subscriptions"} for a in answers]
        self.transactions.start(envelope, correlation_id, "subscribe", summary, callback)
        message = {
            "transaction_id": envelope.message["transaction_id"],
            "correlation_id": correlation_id,
            "subscribe_response": answers,
        }
        header = self._callback_header(codes.ON_SUBSCRIBE, envelope.sender_id, status, len(answers))
        body = self._envelope(header, message)
        return self._accept(
            correlation_id,
            lambda: self._post_callback(correlation_id, callback, body, status, None),
        )

    # ------------------------------------------------------------------ unsubscribe

    def _unsubscribe(
        self, envelope: ParsedEnvelope, correlation_id: str, callback: str | None
    ) -> Reply:
        assert callback is not None
        wanted = [str(c) for c in envelope.message["subscription_codes"]]
        if not wanted or len(wanted) > self.config.max_batch * 10:
            raise EnvelopeError(
                codes.ERR_REQUEST_BAD,
                f"subscription_codes must list 1 to {self.config.max_batch * 10} codes",
            )
        with self.sessions() as session, session.begin():
            states, unknown = unsubscribe_codes(session, envelope.sender_id, wanted)
        message: dict[str, Any] = {
            "transaction_id": envelope.message["transaction_id"],
            "correlation_id": correlation_id,
            "timestamp": timestamp(),
            "status": codes.SUCC if not unknown else codes.RJCT,
            "subscription_status": states,
        }
        if unknown:
            message["status_reason_code"] = codes.RJCT_SUBSCRIPTION_CODE
            message["status_reason_message"] = (
                f"{unknown} subscription code(s) are not subscriptions of this sender"
            )
        status = message["status"]
        summary = [
            {"reference_id": code, "timestamp": timestamp(), "status": status} for code in wanted
        ]
        self.transactions.start(envelope, correlation_id, "unsubscribe", summary, callback)
        header = self._callback_header(codes.ON_UNSUBSCRIBE, envelope.sender_id, status, 1)
        body = self._envelope(header, message)
        return self._accept(
            correlation_id,
            lambda: self._post_callback(correlation_id, callback, body, status, None),
        )

    # ------------------------------------------------------------------ txn status

    def _txn_status(
        self,
        endpoint: Endpoint,
        envelope: ParsedEnvelope,
        correlation_id: str,
        callback: str | None,
    ) -> Reply:
        request = envelope.message["txnstatus_request"]
        txn_status = txn_status_of(
            request,
            self.transactions.find(envelope.sender_id, request),
            transaction_id=str(envelope.message["transaction_id"]),
            correlation_id=correlation_id,
        )
        message = {
            "transaction_id": envelope.message["transaction_id"],
            "correlation_id": correlation_id,
            "txnstatus_response": {"txn_type": request["txn_type"], "txn_status": txn_status},
        }
        header = self._callback_header(codes.TXN_ON_STATUS, envelope.sender_id, codes.SUCC, 1)
        body = self._envelope(header, message)
        if endpoint.sync:
            self._check_outgoing(
                validation.answer_problems(endpoint.path, body), "sync txn status answer"
            )
            return Reply(200, body)
        assert callback is not None
        self.transactions.start(envelope, correlation_id, "txn-status", [], callback)
        return self._accept(
            correlation_id,
            lambda: self._post_callback(correlation_id, callback, body, codes.SUCC, None),
        )
