"""DCI (SPDCI) CRVS registry endpoints of the civil-registry mock, after the CRVS API file.

- ``POST /registry/sync/search``: answers with the on-search body directly.
- ``POST /registry/search``: ACK now, the on-search later, POSTed to ``sender_uri`` as given
  (the spec's example sender_uri is the full callback URL, ``.../callback/on-search``).
- ``POST /registry/subscribe`` / ``/registry/unsubscribe``: ACK now; the on-subscribe /
  on-unsubscribe later, to that request's ``sender_uri``. While subscribed, each registered
  event of the subscribed ``reg_event_type`` that passes the subscription's ``filter`` (a
  predicate list such as ``registration_date ge <day>``, or ``{type, value}`` for one person,
  see ``dci_query.compile_filter``) is notified to the ``sender_uri`` given with the subscribe:
  the only address of the subscriber the registry has.

Event types are answered in the spec's vocabulary (``spdci-common:RegistryEventType:LiveBirth``,
``...:Death``); records have the shape of the spec's example person (``dci_query``); locales are
ISO 639-3 (``eng``). Callback statuses are the spec's (``succ`` / ``rjct``, with
``completed_count`` telling how many items succeeded).

Refusals of a whole request are ``ack_status: ERR`` answers with a DCI ``err.*`` code and an HTTP
4xx; refusals of one item inside a request are that item's ``status: rjct`` with an ``rjct.*``
reason. Nothing a client sends produces a 500: the blueprint turns any unexpected failure into
``err.service.unavailable``.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox_mocks.civil_registry import dci_query
from sandbox_mocks.civil_registry.dci_envelope import (
    LOCALE,
    REG_RECORD_TYPE,
    REG_TYPE,
    EnvelopeError,
    SeenMessages,
    ack,
    error_body,
    now_ts,
    require_sender_uri,
    response_header,
    validate_envelope,
    validate_message,
)
from sandbox_mocks.civil_registry.delivery import Deliverer, Job
from sandbox_mocks.civil_registry.store import Released

log = logging.getLogger(__name__)
NOTIFY_BATCH = 100


@dataclass
class DciSubscription:
    code: str
    sender_id: str
    sender_uri: str
    event_type: str
    test: Callable[[dci_query.Indexed], bool]
    filter_key: str  # the filter as canonical JSON: the same filter twice is a duplicate
    created_at: str

    def public(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "sender_id": self.sender_id,
            "reg_event_type": self.event_type,
            "filter": json.loads(self.filter_key),
            "created_at": self.created_at,
        }


class DciService:
    """Searchable index of registered events and the DCI subscriptions to them."""

    def __init__(self, registry_id: str, deliverer: Deliverer) -> None:
        self.registry_id = registry_id
        self._deliverer = deliverer
        self._lock = threading.Lock()
        self._indexed: list[dci_query.Indexed] = []
        self._subs: dict[str, DciSubscription] = {}
        self.seen = SeenMessages()

    # -- registered events -------------------------------------------------------------
    def add_released(self, released: list[Released]) -> int:
        """Index newly registered events and queue notify calls; returns notifies queued."""
        fresh = [dci_query.index(r) for r in released]
        with self._lock:
            self._indexed.extend(fresh)
            subs = list(self._subs.values())
        queued = 0
        for sub in subs:
            matching = [
                i for i in fresh if i.values["reg_event_type"] == sub.event_type and sub.test(i)
            ]
            for start in range(0, len(matching), NOTIFY_BATCH):
                self._notify(sub, matching[start : start + NOTIFY_BATCH])
                queued += 1
        return queued

    def _notify(self, sub: DciSubscription, items: list[dci_query.Indexed]) -> None:
        body = {
            "header": response_header(
                "notify", self.registry_id, sub.sender_id, "succ", len(items), len(items)
            ),
            "message": {
                "transaction_id": str(uuid.uuid4()),
                "notify_event": [
                    {
                        "reference_id": item.released.event_id,
                        "timestamp": now_ts(),
                        "data": {
                            "version": "1.0.0",
                            "reg_type": REG_TYPE,
                            "reg_event_type": dci_query.EVENT_NAMES[sub.event_type],
                            "reg_record_type": REG_RECORD_TYPE,
                            "reg_records": item.record,  # an object in NotifyEventRequest
                        },
                        "locale": LOCALE,
                    }
                    for item in items
                ],
            },
        }
        self._post(sub.sender_uri, body, "dci-notify", sub.code)

    def _post(self, url: str, body: dict[str, Any], kind: str, ref: str) -> None:
        self._deliverer.submit(
            Job(
                kind=kind,
                method="POST",
                url=url,
                body=json.dumps(body, separators=(",", ":")).encode(),
                headers={"Content-Type": "application/json"},
                label={"reference": ref},
            )
        )

    def subscriptions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.public() for s in self._subs.values()]

    # -- search --------------------------------------------------------------------------
    def search_message(self, message: dict[str, Any], correlation_id: str) -> dict[str, Any]:
        """The on-search ``message`` for a validated search message."""
        with self._lock:
            items = list(self._indexed)
        responses: list[dict[str, Any]] = []
        seen_refs: set[str] = set()
        for request_item in message["search_request"]:
            ref = str(request_item["reference_id"])
            entry: dict[str, Any] = {"reference_id": ref, "timestamp": now_ts(), "locale": LOCALE}
            if ref in seen_refs:
                entry.update(_reject("rjct.reference_id.duplicate", "reference_id repeated"))
                responses.append(entry)
                continue
            seen_refs.add(ref)
            criteria = request_item["search_criteria"]
            try:
                event_type, page, pagination = dci_query.search(items, criteria)
            except dci_query.QueryError as exc:
                entry.update(_reject(exc.code, str(exc)))
                responses.append(entry)
                continue
            data: dict[str, Any] = {
                "version": "1.0.0",
                "reg_type": REG_TYPE,
                "reg_record_type": REG_RECORD_TYPE,
                "reg_records": [item.record for item in page],
            }
            if event_type:
                data["reg_event_type"] = dci_query.EVENT_NAMES[event_type]
            entry.update({"status": "succ", "data": data, "pagination": pagination})
            responses.append(entry)
        return {
            "transaction_id": message["transaction_id"],
            "correlation_id": correlation_id,
            "search_response": responses,
        }

    def search_answer(self, header: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
        correlation_id = str(uuid.uuid4())
        result = self.search_message(message, correlation_id)
        total = len(result["search_response"])
        done = sum(1 for r in result["search_response"] if r["status"] == "succ")
        status = "succ" if done else "rjct"
        return {
            "header": response_header(
                "on-search", self.registry_id, header["sender_id"], status, total, done
            ),
            "message": result,
        }

    def search_async(self, header: dict[str, Any], message: dict[str, Any]) -> str:
        sender_uri = require_sender_uri(header)
        answer = self.search_answer(header, message)
        correlation_id = str(answer["message"]["correlation_id"])
        self._post(sender_uri, answer, "dci-on-search", correlation_id)
        return correlation_id

    # -- subscriptions ---------------------------------------------------------------------
    def subscribe(self, header: dict[str, Any], message: dict[str, Any]) -> str:
        sender_uri = require_sender_uri(header)
        correlation_id = str(uuid.uuid4())
        responses = []
        for item in message["subscribe_request"]:
            entry: dict[str, Any] = {
                "reference_id": str(item["reference_id"]),
                "timestamp": now_ts(),
                "locale": LOCALE,
            }
            try:
                sub = self._make_subscription(header, sender_uri, item["subscribe_criteria"])
            except dci_query.QueryError as exc:
                entry.update(_reject(exc.code, str(exc)))
            else:
                entry.update(
                    {
                        "status": "succ",
                        "subscriptions": [
                            {
                                "code": sub.code,
                                "status": "subscribe",
                                "timestamp": sub.created_at,
                                "reg_event_type": dci_query.EVENT_NAMES[sub.event_type],
                            }
                        ],
                    }
                )
            responses.append(entry)
        done = sum(1 for r in responses if r["status"] == "succ")
        status = "succ" if done else "rjct"
        body = {
            "header": response_header(
                "on-subscribe", self.registry_id, header["sender_id"], status, len(responses), done
            ),
            "message": {
                "transaction_id": message["transaction_id"],
                "correlation_id": correlation_id,
                "subscribe_response": responses,
            },
        }
        self._post(sender_uri, body, "dci-on-subscribe", correlation_id)
        return correlation_id

    def _make_subscription(
        self, header: dict[str, Any], sender_uri: str, criteria: dict[str, Any]
    ) -> DciSubscription:
        reason = "rjct.notify_types.invalid"
        event_type = dci_query.normalise_event_type(criteria.get("reg_event_type"), reason)
        if event_type is None:
            raise dci_query.QueryError(reason, "subscribe_criteria.reg_event_type is required")
        test = dci_query.compile_filter(criteria["filter"], criteria.get("filter_type"))
        filter_key = json.dumps(criteria["filter"], sort_keys=True, separators=(",", ":"))
        with self._lock:
            for existing in self._subs.values():
                if (
                    existing.sender_id == header["sender_id"]
                    and existing.event_type == event_type
                    and existing.sender_uri == sender_uri
                    and existing.filter_key == filter_key
                ):
                    raise dci_query.QueryError(
                        "rjct.event.already_subscribed",
                        f"already subscribed to {event_type} (code {existing.code})",
                    )
            sub = DciSubscription(
                code=str(uuid.uuid4()),
                sender_id=header["sender_id"],
                sender_uri=sender_uri,
                event_type=event_type,
                test=test,
                filter_key=filter_key,
                created_at=now_ts(),
            )
            self._subs[sub.code] = sub
        return sub

    def unsubscribe(self, header: dict[str, Any], message: dict[str, Any]) -> str:
        """Drop the sender's subscriptions; the on-unsubscribe lists the codes dropped (the
        spec's ``subscription_status`` knows only subscribe / unsubscribe) and names unknown
        codes in ``status_reason_code`` / ``status_reason_message``."""
        sender_uri = require_sender_uri(header)
        correlation_id = str(uuid.uuid4())
        dropped: list[dict[str, str]] = []
        unknown: list[str] = []
        with self._lock:
            for code in message["subscription_codes"]:
                sub = self._subs.get(code)
                if sub is None or sub.sender_id != header["sender_id"]:
                    unknown.append(code)
                    continue
                del self._subs[code]
                dropped.append({"code": code, "status": "unsubscribe"})
        status = "succ" if dropped else "rjct"
        result: dict[str, Any] = {
            "transaction_id": message["transaction_id"],
            "correlation_id": correlation_id,
            "timestamp": now_ts(),
            "status": status,
            "subscription_status": dropped,
        }
        if unknown:
            result["status_reason_code"] = "rjct.subscription_code.invalid"
            result["status_reason_message"] = (
                f"{len(unknown)} code(s) are not subscriptions of this sender: "
                + ", ".join(c[:99] for c in unknown[:10])
            )
        body = {
            "header": response_header(
                "on-unsubscribe",
                self.registry_id,
                header["sender_id"],
                status,
                len(message["subscription_codes"]),
                len(dropped),
            ),
            "message": result,
        }
        self._post(sender_uri, body, "dci-on-unsubscribe", correlation_id)
        return correlation_id


def _reject(code: str, message: str) -> dict[str, str]:
    return {"status": "rjct", "status_reason_code": code, "status_reason_message": message}


def dci_blueprint(service: DciService, bearer_token: str | None = None) -> Blueprint:
    bp = Blueprint("crvs_dci", __name__)

    def refuse(error: EnvelopeError, action: str, receiver: str | None = None) -> Response:
        response = jsonify(error_body(error, service.registry_id, action, receiver))
        response.status_code = error.http_status
        return response

    def handle(
        action: str,
        work: Callable[[dict[str, Any], dict[str, Any]], Any],
        asynchronous: bool = True,
    ) -> Response:
        receiver: str | None = None
        try:
            if bearer_token is not None:
                given = request.headers.get("Authorization", "")
                expected = f"Bearer {bearer_token}"
                if not hmac.compare_digest(given.encode(), expected.encode()):
                    raise EnvelopeError(
                        "err.request.unauthorized",
                        "a valid Bearer token is required",
                        http_status=401,
                    )
            body = request.get_json(silent=True)
            if body is None:
                raise EnvelopeError("err.request.bad", "body must be a JSON DCI envelope")
            header = validate_envelope(body, action)
            receiver = header["sender_id"]
            message = validate_message(body, action)
            if asynchronous:
                require_sender_uri(header)  # before the replay check, so a fixed retry passes
            service.seen.check_and_add(header["sender_id"], header["message_id"])
            result = work(header, message)
        except EnvelopeError as exc:
            return refuse(exc, action, receiver)
        except HTTPException:
            raise  # 413 and friends: rendered by the app's handler with their own status
        except Exception:  # the contract: never a 500, and never a stack trace to a partner
            log.exception("DCI %s failed", action)
            return refuse(
                EnvelopeError(
                    "err.service.unavailable", "internal error; try again later", http_status=503
                ),
                action,
                receiver,
            )
        if isinstance(result, str):
            return jsonify(ack(result))
        return jsonify(result)

    @bp.post("/registry/sync/search")
    def sync_search() -> Response:
        return handle("search", service.search_answer, asynchronous=False)

    @bp.post("/registry/search")
    def async_search() -> Response:
        return handle("search", service.search_async)

    @bp.post("/registry/subscribe")
    def subscribe() -> Response:
        return handle("subscribe", service.subscribe)

    @bp.post("/registry/unsubscribe")
    def unsubscribe() -> Response:
        return handle("unsubscribe", service.unsubscribe)

    return bp
