"""The HTTP face of the connector: the views the hub mounts under ``/connectors/<name>/``.

- ``GET  /webhook``: the WebSub challenge, answered only for a topic we have a pending
  subscription to.
- ``POST /webhook``: a signed delivery in OpenCRVS's form. The body is read within the size
  limit, the ``X-Hub-Signature`` is checked (the connector's ``signature_scheme``) in constant
  time *before* anything is parsed, and 2xx is answered only after each Bundle of
  ``event.context`` was published as one raw record (otherwise 503; see docs/connectors.md on
  what OpenCRVS does with that).
- ``POST /dci/<token>/<action>`` (``on-search``, ``on-subscribe``, ``on-unsubscribe``,
  ``notify``): DCI calls from the registry. Each is the full ``sender_uri`` we gave with the
  request of that action, and the registry posts to it as given (the spec's example:
  ``https://spp.example.org/{namespace}/callback/on-search``). The URL given with a subscribe
  also takes the ``notify`` calls of that subscription: it is the only address of ours the
  registry learns from it. ``POST /registry/<action>`` with ``Authorization: Bearer <token>``
  suits callback URLs configured at the registry during onboarding.
  The registry sends no token of the hub, so these views are declared public to the hub's auth
  and check their own (the capability token in the path, or the bearer token), then the
  envelope, then the registry's signature when its key is configured. Every answer is a DCI
  acknowledgement; nothing a caller sends produces a 500.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from connectors.base import PublishFailed, signed_webhook
from connectors.civil_registry.dci_inbox import Answer, nack
from connectors.civil_registry.dci_messages import check_message
from connectors.civil_registry.feed import Rejection
from connectors.civil_registry.websub import MAX_CHALLENGE_LENGTH, DeliveryError, parse_delivery
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, parse_envelope, problem_fields
from standards.dci.signature import SignatureError

if TYPE_CHECKING:
    from connectors.civil_registry.connector import CivilRegistryConnector

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature"
DCI_ACTIONS = (codes.NOTIFY, codes.ON_SEARCH, codes.ON_SUBSCRIBE, codes.ON_UNSUBSCRIBE)
# What each callback URL takes besides its own action: a subscription's notifications go to
# the sender_uri given with the subscribe, the on-subscribe URL.
ALSO_ACCEPTED = {codes.ON_SUBSCRIBE: (codes.NOTIFY,)}
RETRY_AFTER_SECONDS = "5"
_NOT_JSON = object()


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _read_body(limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` (read no further)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    data = request.stream.read(limit + 1)
    return None if len(data) > limit else data


def _arg(*names: str) -> str | None:
    for name in names:
        value = request.args.get(name)
        if value is not None:
            return value
    return None


def build_blueprint(connector: CivilRegistryConnector) -> Blueprint:
    bp = Blueprint(f"connector_{connector.instance_name}", __name__)
    limit = int(connector.settings["max_body_bytes"])
    status = connector.status

    def refuse_push(http_status: int, code: str, reason: str) -> Response:
        connector.rejections.add(Rejection("webhook delivery", reason), "pushes_refused")
        return _error(http_status, code, reason)

    @bp.get("/webhook")
    @signed_webhook
    def websub_challenge() -> Response:
        mode = _arg("hub.mode", "mode")
        topic = _arg("hub.topic", "topic")
        challenge = _arg("hub.challenge", "challenge")
        if mode != "subscribe" or not topic or not challenge:
            return _error(400, "bad_request", "mode=subscribe, topic and challenge are required")
        if len(challenge) > MAX_CHALLENGE_LENGTH or not challenge.isprintable():
            return _error(400, "bad_request", "the challenge is too long or not printable")
        if not connector.subscriptions.confirm(topic):
            log.warning(
                "%s: refused a WebSub challenge for a topic not pending", connector.instance_name
            )
            return _error(404, "not_subscribing", "no pending subscription to this topic")
        connector.challenge_answered(topic)
        return jsonify({"challenge": challenge})

    @bp.post("/webhook")
    @signed_webhook
    def websub_delivery() -> Response:
        body = _read_body(limit)
        if body is None:
            return refuse_push(413, "too_large", f"the body is larger than {limit} bytes")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            return refuse_push(
                401, "signature_missing", f"the {SIGNATURE_HEADER} header is missing"
            )
        if not connector.webhook_secret:
            return refuse_push(
                403,
                "signature_invalid",
                "no webhook_secret is configured, so no delivery can be verified",
            )
        if not connector.verify_signature(body, signature):
            return refuse_push(
                403,
                "signature_invalid",
                f"{SIGNATURE_HEADER} does not match the body "
                f"({connector.signature_scheme} scheme, "
                f"{' or '.join(connector.signature_algorithms)})",
            )
        try:
            delivery = parse_delivery(
                body,
                connector.topics,
                max_age_seconds=int(connector.settings.get("max_delivery_age_seconds", 600)),
            )
        except DeliveryError as error:
            return refuse_push(error.status, "bad_delivery", str(error))
        if delivery.refused_items:
            connector.rejections.add(
                Rejection(
                    "webhook delivery",
                    f"{delivery.refused_items} item(s) of event.context are not FHIR Bundles; "
                    "the Bundles beside them were accepted",
                ),
                "pushes_refused",
            )
        message_ids: list[str] = []
        try:
            for event in delivery.events:
                message_ids.append(
                    connector.accept_push(
                        delivery.record_type,
                        delivery.body,
                        source_id=event.source_id,
                        headers=connector.delivery_headers(
                            delivery.topic, event.bundle_path, delivery.webhook_id
                        ),
                        content_key=event.content_key,
                    )
                )
        except PublishFailed:
            response = _error(503, "unavailable", "the hub could not store the event; resend")
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        return jsonify(
            {"status": "accepted", "message_id": message_ids[0], "message_ids": message_ids}
        )

    def dci_answer(answer: Answer) -> Response:
        body = answer.body
        error = body.get("message", {}).get("error")
        if answer.status >= 400 and isinstance(error, dict):
            # Beside the DCI acknowledgement, the spec's HttpErrorResponse and problem fields,
            # as the hub's DCI server answers: generic HTTP clients find the reason too.
            body = {**problem_fields(error["code"], error["message"], answer.status), **body}
        response = jsonify(body)
        response.status_code = answer.status
        if answer.status == 503:
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    def dci_call(endpoint: str, authorized: bool) -> Response:
        if endpoint not in DCI_ACTIONS:
            return dci_answer(nack(codes.ERR_NOT_FOUND, "no such DCI callback here", 404))
        action = endpoint
        if not authorized:
            status.count("pushes_refused")
            status.record_error(f"DCI {action}: refused an unauthorized call")
            return dci_answer(
                nack(codes.ERR_UNAUTHORIZED, "a valid callback token is required", 401)
            )
        body = _read_body(limit)
        if body is None:
            status.count("pushes_refused")
            return dci_answer(
                nack(codes.ERR_REQUEST_BAD, f"the body is larger than {limit} bytes", 413)
            )
        try:
            decoded: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            decoded = _NOT_JSON
        header = decoded.get("header") if isinstance(decoded, dict) else None
        sent = header.get("action") if isinstance(header, dict) else None
        if sent in ALSO_ACCEPTED.get(endpoint, ()):
            action = str(sent)
        try:
            if decoded is _NOT_JSON:
                raise EnvelopeError(codes.ERR_REQUEST_BAD, "the body is not JSON")
            envelope = parse_envelope(
                decoded,
                action,
                max_age=connector.dci_max_age,
                receiver_id=connector.dci.sender_id,
            )
            registry_id = connector.settings.get("registry_id")
            if registry_id and envelope.sender_id != registry_id:
                raise EnvelopeError(
                    codes.ERR_SENDER_ID,
                    "header.sender_id is not the registry this connector talks to",
                    http_status=403,
                )
            try:
                connector.dci.verify(envelope.signature, envelope.header, envelope.message)
            except SignatureError as error:
                raise EnvelopeError(error.code, error.message, http_status=401) from None
            message = check_message(action, envelope.message)
            return dci_answer(connector.inbox.handle(action, envelope, message))
        except EnvelopeError as error:
            connector.rejections.add(Rejection(f"DCI {action}", error.message), "pushes_refused")
            return dci_answer(nack(error.code, error.message, error.http_status))
        except PublishFailed:
            return dci_answer(
                nack(
                    codes.ERR_UNAVAILABLE,
                    "the hub could not store the records; resend",
                    503,
                    codes.ERR,
                )
            )
        except Exception:  # the contract: never a 500 or a stack trace to the partner
            log.exception("%s: DCI %s failed", connector.instance_name, action)
            return dci_answer(
                nack(codes.ERR_UNAVAILABLE, "internal error; resend later", 503, codes.ERR)
            )

    @bp.post("/registry/<action>")
    @signed_webhook
    def dci_with_bearer(action: str) -> Response:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {connector.callback_token}"
        authorized = hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())
        return dci_call(action, authorized)

    @bp.post("/dci/<token>/<action>")
    @signed_webhook
    def dci_with_path_token(token: str, action: str) -> Response:
        authorized = hmac.compare_digest(
            token.encode("utf-8", "replace"), connector.callback_token.encode()
        )
        return dci_call(action, authorized)

    return bp
