"""The program MIS's AMQP receiver: consume one queue on RabbitMQ and record every message.

It runs in its own thread with its own pika connection (pika connections are not thread-safe),
and it never lets the broker take the mock down: when RabbitMQ is absent, or drops the
connection, or cancels the consumer (queue deleted), the thread records why, waits with a
growing back-off, and connects again. Its state is visible through ``status()``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

log = logging.getLogger(__name__)

Recorder = Callable[[dict[str, Any]], object]  # what it returns is not used


class _ConsumerCancelledError(Exception):
    """The broker cancelled our consumer (e.g. the queue was deleted)."""


def redact_url(url: str) -> str:
    """The URL without its password, for status pages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def describe_message(
    queue: str, method: Basic.Deliver, properties: BasicProperties, body: bytes
) -> dict[str, Any]:
    """What the notification log keeps of one AMQP message."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    return {
        "queue": queue,
        "exchange": method.exchange,
        "routing_key": method.routing_key,
        "redelivered": bool(method.redelivered),
        "properties": {
            "content_type": properties.content_type,
            "message_id": properties.message_id,
            "correlation_id": properties.correlation_id,
            "type": properties.type,
            "app_id": properties.app_id,
            "timestamp": properties.timestamp,
            "delivery_mode": properties.delivery_mode,
        },
        "headers": _json_safe(properties.headers or {}),
        "body": text,
        "json": parsed,
    }


class AmqpNotificationConsumer:
    """Consume ``queue`` at ``url`` in a background thread; reconnect forever until stopped."""

    def __init__(
        self,
        url: str,
        queue: str,
        record: Recorder,
        *,
        prefetch: int = 20,
        declare_queue: bool = False,
        reconnect_initial_s: float = 0.25,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self.url = url
        self.queue = queue
        self._record = record
        self._prefetch = prefetch
        self._declare = declare_queue
        self._initial = reconnect_initial_s
        self._max = reconnect_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "state": "stopped",
            "connected_since": None,
            "last_error": None,
            "last_error_at": None,
            "connects": 0,
            "disconnects": 0,
            "messages": 0,
        }

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": True,
                "url": redact_url(self.url),
                "queue": self.queue,
                **self._status,
            }

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"amqp-{self.queue}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._update(state="stopped", connected_since=None)

    # --------------------------------------------------------------- internals
    def _update(self, **values: Any) -> None:
        with self._lock:
            self._status.update(values)

    def _run(self) -> None:
        delay = self._initial
        while not self._stop.is_set():
            connection: pika.BlockingConnection | None = None
            try:
                self._update(state="connecting")
                connection = self._connect()
                channel = connection.channel()
                channel.basic_qos(prefetch_count=self._prefetch)
                if self._declare:
                    channel.queue_declare(self.queue, durable=True)
                channel.basic_consume(self.queue, on_message_callback=self._on_message)
                with self._lock:
                    self._status["connects"] += 1
                    self._status.update(
                        state="consuming", connected_since=datetime.now(UTC).isoformat()
                    )
                delay = self._initial
                while not self._stop.is_set():
                    connection.process_data_events(time_limit=0.2)
                    if not channel.consumer_tags:
                        raise _ConsumerCancelledError("the broker cancelled the consumer")
            except Exception as exc:  # any broker trouble: record, back off, reconnect
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                with self._lock:
                    if self._status["state"] == "consuming":
                        self._status["disconnects"] += 1
                    repeated = self._status["last_error"] == reason[:500]
                    self._status.update(
                        state="disconnected",
                        connected_since=None,
                        last_error=reason[:500],
                        last_error_at=datetime.now(UTC).isoformat(),
                    )
                # Say it once per new reason; a broker that stays away must not flood the log.
                (log.debug if repeated else log.warning)(
                    "program MIS AMQP consumer on %s: %s (reconnecting)", self.queue, reason[:200]
                )
            finally:
                if connection is not None and connection.is_open:
                    try:
                        connection.close()
                    except Exception:  # already broken; nothing more to release
                        log.debug("closing a broken AMQP connection failed", exc_info=True)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self._max)

    def _connect(self) -> pika.BlockingConnection:
        params = pika.URLParameters(self.url)
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.blocked_connection_timeout = 30
        params.heartbeat = 30
        return pika.BlockingConnection(params)

    def _on_message(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: BasicProperties,
        body: bytes,
    ) -> None:
        try:
            self._record(describe_message(self.queue, method, properties, body))
            with self._lock:
                self._status["messages"] += 1
        finally:
            channel.basic_ack(method.delivery_tag)


def disabled_status(reason: str) -> dict[str, Any]:
    return {"enabled": False, "state": "disabled", "reason": reason}
