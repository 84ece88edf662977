"""Delivery workers: one consumer per webhook / DCI subscription, each on its own queue.

Why one consumer per subscription, with prefetch 1: a subscriber's queue is delivered strictly
in order, so events about one person arrive in the order they happened, and a subscriber whose
endpoint is down or slow only holds up its own queue: the dispatch worker never waits for any
subscriber, and every other subscription has its own thread and connection. (The price: while
one event of a subscription is being retried, later events of that subscription wait too; that
is the simple way to keep per-subject order without tracking subjects.)

Each delivery is POSTed by the hub's one outbound sender (``hub.workers.outbound``: pooled
connections, timeouts, no redirects, retries with the ``RetryPolicy`` of
``extra.notifications``); every attempt is written to the delivery log. An endpoint that
answers 4xx (other than 408/425/429) will not get better by retrying and the message is
dead-lettered at once; network errors, timeouts and 5xx are retried ``attempts`` times, then the
message goes to ``sr.dead`` with the reason (replay it with ``srhub dead-letters replay`` once
the subscriber is fixed). An event already delivered to a subscription (a redelivery after a
crash) is not sent twice unless an operator re-drives it. Connecting, reconnecting and stopping
are the one worker loop's (``hub.workers.loop``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from sqlalchemy import func, select

from hub.broker import connect
from hub.broker.base import Broker, Consumer, DeadLetterReason, Delivery
from hub.broker.errors import BrokerError, ConnectionClosed
from hub.runtime import HubRuntime
from hub.settings import Settings
from hub.subscriptions import service
from hub.subscriptions.fanout import H_EVENT_ID, H_PERSONAL, H_REDRIVE, H_SEQUENCE
from hub.subscriptions.secret_rotation import signing_secrets
from hub.subscriptions.signing import signature_headers
from hub.subscriptions.tables import (
    CHANNEL_AMQP,
    CHANNEL_DCI,
    CHANNEL_WEBHOOK,
    DEAD_LETTERED,
    DELIVERED,
    DUPLICATE,
    FAILED,
    STATUS_ACTIVE,
    WITHHELD,
    DeliveryAttempt,
    Subscription,
)
from hub.workers.egress import EgressPolicy
from hub.workers.loop import ConsumerLoop
from hub.workers.outbound import Attempt, OutboundSender
from hub.workers.retry import RetryPolicy
from registry_core.outbox import EVENT_TYPE_PREFIX

log = logging.getLogger(__name__)

PUSH_CHANNELS = (CHANNEL_WEBHOOK, CHANNEL_DCI)
DEFAULT_RETRY = RetryPolicy(attempts=5, initial_delay=0.5, max_delay=30.0, jitter=0.25)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try one delivery, and how often to look for new subscriptions."""

    retry: RetryPolicy = field(default_factory=lambda: DEFAULT_RETRY)
    timeout: float = 5.0  # per request (read); connecting gets at most 3 s
    refresh: float = 1.0  # seconds between looks at the subscriptions table
    receive_timeout: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        """``settings.notifications``: ``attempts``, ``initial_delay``, ``max_delay``,
        ``jitter``, ``timeout``, ``refresh``, ``receive_timeout``."""
        config = settings.notifications
        retry = RetryPolicy(
            attempts=config.attempts,
            initial_delay=config.initial_delay,
            max_delay=config.max_delay,
            jitter=config.jitter,
        )
        return cls(
            retry=retry,
            timeout=config.timeout,
            refresh=config.refresh,
            receive_timeout=config.receive_timeout,
        )


class SubscriptionSender(ConsumerLoop):
    """Consumes ``sr.deliver.<code>`` and pushes each message to the subscriber."""

    kind: ClassVar[str] = "deliver"
    error_pause = 1.0
    #: Delivery-log statuses that mean "this event has reached the subscriber".
    done_statuses: ClassVar[tuple[str, ...]] = (DELIVERED,)

    def __init__(
        self,
        code: str,
        settings: Settings,
        runtime: HubRuntime,
        policy: DeliveryPolicy,
        outbound: OutboundSender | None = None,
    ) -> None:
        self.code = code
        self.settings = settings
        self.runtime = runtime
        self.policy = policy
        self.outbound = outbound or OutboundSender(
            policy.retry, timeout=policy.timeout, egress=EgressPolicy.from_settings(settings)
        )
        super().__init__(
            f"{self.kind}-{code}", service.delivery_queue(code), self._broker, (), prefetch=1
        )

    # -- loop --------------------------------------------------------------------------------

    def _broker(self) -> Broker:
        options: dict[str, Any] = {"wait_for": 0}
        if not self.settings.uses_embedded_broker:
            options["connection_name"] = f"srhub-{self.kind}-{self.code}"
        return connect(self.settings, **options)

    def consume(self, consumer: Consumer) -> None:
        while not self.stop_event.is_set():
            delivery = consumer.receive(self.policy.receive_timeout)
            if delivery is not None:
                self._handle_safely(consumer, delivery)

    def finish(self) -> None:
        self.outbound.close()

    # -- one message -------------------------------------------------------------------------

    def _subscription(self) -> Subscription | None:
        with self.runtime.sessions() as session:
            found = session.scalar(select(Subscription).where(Subscription.code == self.code))
            if found is not None:
                session.expunge(found)
            return found

    def _already_delivered(self, event_id: str) -> bool:
        with self.runtime.sessions() as session:
            return bool(
                session.scalar(
                    select(func.count())
                    .select_from(DeliveryAttempt)
                    .where(
                        DeliveryAttempt.subscription_code == self.code,
                        DeliveryAttempt.event_id == event_id,
                        DeliveryAttempt.status.in_(self.done_statuses),
                    )
                )
            )

    def _attempts_so_far(self, event_id: str) -> int:
        with self.runtime.sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(DeliveryAttempt)
                    .where(
                        DeliveryAttempt.subscription_code == self.code,
                        DeliveryAttempt.event_id == event_id,
                    )
                )
                or 0
            )

    def _log(self, info: dict[str, Any], attempt: int, status: str, **values: Any) -> None:
        with self.runtime.sessions() as session, session.begin():
            session.add(
                DeliveryAttempt(
                    subscription_code=self.code,
                    event_id=info["event_id"],
                    sequence=info["sequence"],
                    event_type=info["event_type"],
                    attempt=attempt,
                    status=status,
                    personal=info["personal"],
                    **values,
                )
            )

    def _log_attempt(self, info: dict[str, Any], number: int, attempt: Attempt, ok: str) -> None:
        """One attempt in the delivery log (``ok`` is the status of a success)."""
        self._log(
            info,
            number,
            ok if attempt.ok else FAILED,
            http_status=attempt.status_code,
            error=attempt.error,
            started_at=attempt.started_at,
            duration_ms=attempt.duration_ms,
        )

    def _handle_safely(self, consumer: Consumer, delivery: Delivery) -> None:
        """A bug or a database outage while handling one message must not end the sender:
        the message goes back to its queue and is tried again after a pause."""
        try:
            self.handle(consumer, delivery)
        except (ConnectionClosed, BrokerError):
            raise
        except Exception as exc:
            self.status.record_error(exc)
            log.exception("delivery %s: handling a message failed; it stays queued", self.code)
            consumer.requeue(delivery)
            self.stop_event.wait(1.0)

    def _active_subscription(self, consumer: Consumer, delivery: Delivery) -> Subscription | None:
        """The subscription, when it is active; otherwise the delivery is settled here (acked
        when the subscription is gone, requeued and this sender stopped when it is paused)."""
        subscription = self._subscription()
        if subscription is None:  # deleted: its queue goes too; nothing to deliver to
            consumer.ack(delivery)
            return None
        if subscription.status != STATUS_ACTIVE:
            consumer.requeue(delivery)
            self.stop_event.set()  # paused: leave the queue alone until resumed
            return None
        return subscription

    def handle(self, consumer: Consumer, delivery: Delivery) -> None:
        subscription = self._active_subscription(consumer, delivery)
        if subscription is None:
            return
        event = self._event(delivery)
        info = self._info(delivery, event)
        if self._is_duplicate(consumer, delivery, info):
            return
        body = self._body(subscription, event, info)
        if body is None:
            self._log(info, 1, WITHHELD, error="no consent: DCI notify carries personal data")
            consumer.ack(delivery)
            return
        self._with_retries(
            consumer,
            delivery,
            info,
            lambda number: self._post(subscription, body, info, number),
        )

    @staticmethod
    def _event(delivery: Delivery) -> dict[str, Any]:
        try:
            event = json.loads(delivery.message.body)
        except ValueError:
            return {}
        return event if isinstance(event, dict) else {}

    @staticmethod
    def _info(delivery: Delivery, event: dict[str, Any]) -> dict[str, Any]:
        """What the delivery log records of one message."""
        headers = delivery.message.headers
        event_type = str(event.get("type", "")).removeprefix(EVENT_TYPE_PREFIX)
        return {
            "event_id": str(headers.get(H_EVENT_ID) or event.get("id") or "")[:64],
            "sequence": headers.get(H_SEQUENCE),
            "event_type": event_type[:128],
            "personal": bool(headers.get(H_PERSONAL)),
        }

    def _is_duplicate(self, consumer: Consumer, delivery: Delivery, info: dict[str, Any]) -> bool:
        """An event already handed over to this subscription (a redelivery after a crash) is
        logged as ``duplicate`` and acked, unless an operator re-drives it."""
        if delivery.message.headers.get(H_REDRIVE) or not self._already_delivered(info["event_id"]):
            return False
        self._log(info, self._attempts_so_far(info["event_id"]) + 1, DUPLICATE)
        consumer.ack(delivery)
        return True

    def _with_retries(
        self,
        consumer: Consumer,
        delivery: Delivery,
        info: dict[str, Any],
        send: Callable[[int], Attempt],
    ) -> None:
        """Call ``send(attempt number)`` with the policy's backoff until it succeeds or the
        attempts are used up (``OutboundSender.send``); then ack, or dead-letter to
        ``sr.dead`` with the reason (never drop)."""
        first = self._attempts_so_far(info["event_id"])
        result = self.outbound.send(send, stop_event=self.stop_event, first_number=first + 1)
        outcome = result.last
        if outcome.ok:
            consumer.ack(delivery)
            self.status.count("processed")
            return
        if outcome.retryable and self.stop_event.is_set():
            consumer.requeue(delivery)  # shutting down: try again after the restart
            return
        reason = (
            f"subscription {self.code}: {result.attempts} attempt(s) failed; last: {outcome.error}"
        )[:300]
        last_number = first + result.attempts
        self._log(info, last_number, DEAD_LETTERED, error=reason, http_status=outcome.status_code)
        consumer.dead_letter(
            delivery, DeadLetterReason.now("DeliveryFailed", reason, result.attempts)
        )
        self.status.count("dead_lettered")

    def _body(self, subscription: Subscription, event: dict[str, Any], info: dict[str, Any]) -> Any:
        if subscription.channel != CHANNEL_DCI:
            return None if not event else json.dumps(event, separators=(",", ":")).encode()
        if not info["personal"]:
            return None
        return _dci_body(self.settings, self.runtime, subscription, event, info["event_type"])

    def _post(
        self, subscription: Subscription, body: bytes, info: dict[str, Any], number: int
    ) -> Attempt:
        headers = {
            "Content-Type": "application/cloudevents+json"
            if subscription.channel == CHANNEL_WEBHOOK
            else "application/json",
            "X-SR-Subscription": self.code,
            "X-SR-Event-Id": info["event_id"],
            "X-SR-Attempt": str(number),
        }
        secrets_now = signing_secrets(self.runtime.cipher, subscription)
        if secrets_now:
            headers.update(signature_headers(secrets_now, body))
        attempt = self.outbound.post_once(subscription.target, body, headers)
        self._log_attempt(info, number, attempt, DELIVERED)
        if not attempt.ok:
            log.warning(
                "delivery %s to %s attempt %d failed: %s",
                self.code,
                urlsplit(subscription.target).netloc,
                number,
                attempt.error,
            )
        return attempt


def _dci_body(
    settings: Settings,
    runtime: HubRuntime,
    subscription: Subscription,
    event: dict[str, Any],
    event_type: str,
) -> bytes | None:
    """A signed DCI ``notify`` envelope about the event's household (None: no household)."""
    from hub.dci.config import load_signing_key
    from hub.dci.notify import NotifyEvent, build_notify

    raw_data = event.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    household_id = data.get("household_id")
    if not household_id:
        return None
    config = settings.dci
    household = runtime.registry.get_household(household_id)

    @dataclass
    class _Target:
        code: str
        sender_id: str
        callback_uri: str
        reg_event_type: str

    envelope = build_notify(
        _Target(subscription.code, subscription.program_code, subscription.target, ""),
        [NotifyEvent(event_type, household, reference_id=str(event.get("id")))],
        registry_id=config.registry_id,
        signing_key=load_signing_key(settings, config),
    )
    return json.dumps(envelope, separators=(",", ":")).encode()


class DeliveryWorkers:
    """Keeps one ``SubscriptionSender`` thread per active webhook / DCI subscription, and, when
    the hub runs on the embedded queue with ``SRHUB_DELIVERY_AMQP_URL`` set, one
    ``AmqpForwarder`` thread per active AMQP subscription."""

    def __init__(
        self,
        settings: Settings,
        runtime: HubRuntime,
        policy: DeliveryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.policy = policy or DeliveryPolicy.from_settings(settings)
        self.senders: dict[str, tuple[SubscriptionSender, threading.Thread]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> DeliveryWorkers:
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="srhub-deliver", daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.policy.refresh):
            try:
                self.refresh()
            except Exception as exc:  # a database hiccup must not end deliveries
                log.warning("delivery workers: could not read subscriptions (%s)", exc)

    def _sender_class(self, channel: str) -> type[SubscriptionSender]:
        if channel == CHANNEL_AMQP:
            from hub.subscriptions.forwarding import AmqpForwarder

            return AmqpForwarder
        return SubscriptionSender

    def refresh(self) -> None:
        """Start senders for new active subscriptions; stop those paused or deleted."""
        channels: tuple[str, ...] = PUSH_CHANNELS
        if self.settings.forwards_amqp_deliveries:
            channels = (*PUSH_CHANNELS, CHANNEL_AMQP)
        with self.runtime.sessions() as session:
            wanted = {
                s.code: self._sender_class(s.channel)
                for s in service.active(session)
                if s.channel in channels
            }
        with self._lock:
            for code in list(self.senders):
                sender, thread = self.senders[code]
                current = code in wanted and type(sender) is wanted[code]
                if not current or not thread.is_alive():
                    sender.stop()
                    if not current:
                        thread.join(0)
                    del self.senders[code]
            if self._stop.is_set():
                return
            for code in sorted(set(wanted) - set(self.senders)):
                sender = wanted[code](code, self.settings, self.runtime, self.policy)
                thread = threading.Thread(
                    target=sender.run, name=f"srhub-{sender.status.name}", daemon=True
                )
                self.senders[code] = (sender, thread)
                thread.start()

    def statuses(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {code: s.status.snapshot() for code, (s, _t) in self.senders.items()}

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            senders = list(self.senders.values())
            self.senders.clear()
        for sender, _thread in senders:
            sender.stop()
        for _sender, thread in senders:
            thread.join(timeout)


def start_delivery_workers(
    settings: Settings, runtime: HubRuntime, policy: DeliveryPolicy | None = None
) -> DeliveryWorkers:
    """Start the webhook / DCI delivery workers (and the AMQP forwarders of an embedded hub
    with ``SRHUB_DELIVERY_AMQP_URL``); call ``.stop()`` on the result to end them."""
    return DeliveryWorkers(settings, runtime, policy).start()
