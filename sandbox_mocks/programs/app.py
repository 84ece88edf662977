"""The program MIS mock (default port 8105): programs, beneficiary lists, enrolment, and the
notification receiver (webhook, DCI notify, AMQP queue) with a read-back API for tests.

Read-back endpoints also live under ``/_admin/notifications`` so that standing fault injection
(which never touches ``/_admin``) cannot get in the way of a test reading what arrived.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import jsonschema
from flask import Flask, Response, jsonify, request

from sandbox_mocks.common.faults import FaultConfig, add_shutdown_hook, install_faults
from sandbox_mocks.population.ids import is_valid_national_id
from sandbox_mocks.population.model import Household
from sandbox_mocks.programs.amqp_consumer import AmqpNotificationConsumer, disabled_status
from sandbox_mocks.programs.catalogue import initial_enrolments
from sandbox_mocks.programs.notifications import (
    CHANNELS,
    DEFAULT_SIGNATURE_HEADERS,
    NotificationLog,
    check_signature,
)
from sandbox_mocks.programs.page import render_page
from sandbox_mocks.programs.store import (
    STATUSES,
    AlreadyEnrolledError,
    BeneficiaryNotFoundError,
    BeneficiaryStore,
    ProgramNotFoundError,
)

EXTENSION_KEY = "program_mis"
MAX_PAGE_SIZE = 500
_NID = {"type": "string", "pattern": "^[0-9]{10}$"}

ENROLMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["nationalId"],
    "properties": {
        "nationalId": _NID,
        "householdRef": {"type": "string", "minLength": 1, "maxLength": 64},
        "memberNationalIds": {"type": "array", "items": _NID, "maxItems": 50},
        "fullName": {"type": "string", "minLength": 1, "maxLength": 200},
        "externalRef": {"type": "string", "minLength": 1, "maxLength": 100},
        "enrolledOn": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    },
}
EXIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 200}},
}


@dataclass
class ProgramMisConfig:
    households: Sequence[Household] = ()
    seed: int = 0
    as_of: date | None = None  # ages and enrolment dates are computed on this day (default today)
    coverage: float = 0.7  # share of eligible households already enrolled at start
    currency: str = "XTS"
    noise_rate: float = 0.0  # share of beneficiaries whose name has data-entry noise
    webhook_secret: str | None = None  # HMAC-SHA256 secret shared with the hub
    signature_headers: tuple[str, ...] = DEFAULT_SIGNATURE_HEADERS
    reject_unverified: bool = False  # True: a bad or missing signature gets 401 (still recorded)
    amqp_url: str | None = None  # None: no AMQP receiver
    amqp_queue: str = "sr.deliver.program-mis"
    amqp_declare_queue: bool = False  # the hub owns its delivery queues; tests may declare
    max_notifications: int = 10_000
    max_body_bytes: int = 2 * 1024 * 1024
    faults: FaultConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProgramMis:
    """What ``create_app`` wires together; reachable as ``app.extensions["program_mis"]``."""

    store: BeneficiaryStore
    log: NotificationLog
    consumer: AmqpNotificationConsumer | None

    def amqp_status(self) -> dict[str, Any]:
        if self.consumer is None:
            return disabled_status("no amqp_url configured")
        return self.consumer.status()


class BadRequestError(ValueError):
    """The caller sent something we cannot use; the message says what and how to fix it."""


def validate(data: Any, schema: dict[str, Any]) -> None:
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(body)"
        raise BadRequestError(f"{where}: {exc.message}") from None


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def _body_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequestError("(body): must be a JSON object (Content-Type: application/json)")
    return body


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequestError(f"{name}: expected a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def create_app(config: ProgramMisConfig) -> Flask:
    today = config.as_of or datetime.now(UTC).date()
    store = BeneficiaryStore(
        initial_enrolments(
            config.households, today, config.seed, config.coverage, config.noise_rate
        ),
        currency=config.currency,
        today=today,
    )
    log = NotificationLog(config.max_notifications)
    consumer = None
    if config.amqp_url:
        consumer = AmqpNotificationConsumer(
            config.amqp_url,
            config.amqp_queue,
            lambda message: log.record("amqp", **message),
            declare_queue=config.amqp_declare_queue,
        )
    mis = ProgramMis(store=store, log=log, consumer=consumer)

    app = Flask("sandbox_program_mis")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.extensions[EXTENSION_KEY] = mis
    install_faults(app, config.faults)

    @app.errorhandler(ProgramNotFoundError)
    def _no_program(exc: ProgramNotFoundError) -> tuple[Response, int]:
        known = ", ".join(p["code"] for p in store.programs())
        return _error(404, "program_not_found", f"no program {exc.args[0]!r}; known: {known}")

    @app.errorhandler(BeneficiaryNotFoundError)
    def _no_beneficiary(exc: BeneficiaryNotFoundError) -> tuple[Response, int]:
        return _error(404, "beneficiary_not_found", f"no beneficiary {exc.args[0]!r}")

    @app.errorhandler(BadRequestError)
    def _bad(exc: BadRequestError) -> tuple[Response, int]:
        return _error(400, "bad_request", str(exc))

    # ------------------------------------------------------------- the officer's page
    @app.get("/")
    def page() -> str:
        return render_page(log, store.programs())

    # ------------------------------------------------------------- programs
    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok", "service": "program-mis"})

    @app.get("/status")
    def status() -> Response:
        return jsonify(
            {
                "programs": store.counts(),
                "notifications": log.counts(),
                "amqp": mis.amqp_status(),
                "webhook_signature_check": config.webhook_secret is not None,
            }
        )

    @app.get("/programs")
    def programs() -> Response:
        return jsonify({"programs": store.programs()})

    @app.get("/programs/<code>")
    def program(code: str) -> Response:
        return jsonify(store.program(code))

    @app.get("/programs/<code>/beneficiaries")
    def beneficiaries(code: str) -> Response:
        status_filter = request.args.get("status") or None
        if status_filter is not None and status_filter not in STATUSES:
            raise BadRequestError(f"status: expected one of {', '.join(STATUSES)}")
        page = _int_arg("page", 1, 1, 1_000_000)
        size = _int_arg("page_size", 50, 1, MAX_PAGE_SIZE)
        national_id = request.args.get("national_id") or None
        return jsonify(store.page(code, page, size, status_filter, national_id))

    @app.get("/programs/<code>/beneficiaries/<number>")
    def beneficiary(code: str, number: str) -> Response:
        return jsonify(store.get(code, number))

    @app.post("/programs/<code>/enrollments")
    def enrol(code: str) -> tuple[Response, int]:
        store.program(code)  # unknown program: 404 before judging the body
        body = _body_object()
        validate(body, ENROLMENT_SCHEMA)
        for nid in [body["nationalId"], *body.get("memberNationalIds", [])]:
            if not is_valid_national_id(nid):
                return _error(
                    400, "invalid_national_id", f"national ID ending {nid[-3:]} fails its check"
                )
        try:
            created = store.enrol(code, body)
        except AlreadyEnrolledError as exc:
            number = exc.existing["beneficiaryNo"]
            return _error(409, "already_enrolled", f"already an active beneficiary: {number}")
        return jsonify(created), 201

    @app.post("/programs/<code>/beneficiaries/<number>/exit")
    def exit_beneficiary(code: str, number: str) -> Response:
        body = _body_object()
        validate(body, EXIT_SCHEMA)
        return jsonify(store.exit(code, number, body["reason"]))

    # -------------------------------------------------------- notifications
    def webhook(label: str | None = None) -> Response | tuple[Response, int]:
        raw = request.get_data(cache=True)
        check = check_signature(
            config.webhook_secret, raw, request.headers, config.signature_headers
        )
        entry = log.record(
            "webhook",
            label=label,
            method=request.method,
            path=request.path,
            headers=dict(request.headers.items()),
            body=raw.decode("utf-8", errors="replace"),
            json=request.get_json(silent=True),
            signature=check.to_json(),
        )
        if config.reject_unverified and config.webhook_secret and not check.verified:
            return _error(401, "bad_signature", check.reason)
        return jsonify({"received": entry["seq"], "signature_verified": check.verified})

    def webhook_handshake(label: str | None = None) -> Response:
        """CloudEvents webhook abuse protection: allow the origin that asks."""
        response = Response(status=200)
        origin = request.headers.get("WebHook-Request-Origin")
        if origin:
            response.headers["WebHook-Allowed-Origin"] = origin
            response.headers["WebHook-Allowed-Rate"] = "*"
        response.headers["Allow"] = "POST, OPTIONS"
        return response

    for rule in ("/notifications/webhook", "/notifications/webhook/<label>"):
        app.add_url_rule(
            rule,
            view_func=webhook,
            methods=["POST"],
            endpoint=f"wh{rule}",
            provide_automatic_options=False,
        )
        app.add_url_rule(
            rule, view_func=webhook_handshake, methods=["OPTIONS"], endpoint=f"whopt{rule}"
        )

    @app.post("/registry/notify")
    def dci_notify() -> Response:
        """A DCI ``notify`` from the registry: record it and acknowledge the DCI way."""
        raw = request.get_data(cache=True)
        body = request.get_json(silent=True)
        check = check_signature(
            config.webhook_secret, raw, request.headers, config.signature_headers
        )
        log.record(
            "dci",
            method=request.method,
            path=request.path,
            headers=dict(request.headers.items()),
            body=raw.decode("utf-8", errors="replace"),
            json=body,
            signature=check.to_json(),
        )
        message = body.get("message") if isinstance(body, dict) else None
        correlation = str(uuid.uuid4())
        if not isinstance(message, dict) or not isinstance(body, dict):
            valid = False
        else:
            valid = isinstance(body.get("header"), dict)
        if not valid:
            ack = {
                "ack_status": "ERR",
                "error": {"code": "err.request.bad", "message": "body needs header and message"},
            }
        else:
            ack = {"ack_status": "ACK"}
        ack.update(
            {
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                "correlation_id": correlation,
            }
        )
        return jsonify({"message": ack})

    def read_notifications() -> Response:
        channel = request.args.get("channel") or None
        if channel is not None and channel not in CHANNELS:
            raise BadRequestError(f"channel: expected one of {', '.join(CHANNELS)}")
        limit = _int_arg("limit", 0, 0, 100_000) or None
        try:
            items = log.query(channel, request.args.get("since"), limit)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
        last = items[-1]["seq"] if items else None
        return jsonify({"count": len(items), "last_seq": last, "items": items})

    def clear_notifications() -> Response:
        channel = request.args.get("channel") or None
        return jsonify({"deleted": log.clear(channel)})

    def amqp_status() -> Response:
        return jsonify(mis.amqp_status())

    for prefix in ("", "/_admin"):
        app.add_url_rule(
            f"{prefix}/notifications", f"{prefix}read", read_notifications, methods=["GET"]
        )
        app.add_url_rule(
            f"{prefix}/notifications", f"{prefix}clear", clear_notifications, methods=["DELETE"]
        )
        app.add_url_rule(
            f"{prefix}/notifications/amqp", f"{prefix}amqp", amqp_status, methods=["GET"]
        )

    if consumer is not None:
        consumer.start()
        add_shutdown_hook(app, consumer.stop)
    return app
