"""``registry/notify``: telling DCI subscribers about registry events, signed.

The dispatcher decides *when* (it reads outbox events and ``dci_subscriptions``); this module
decides *what* is sent and *where*: ``wants`` maps a subscription's ``reg_event_type`` to our
event types, ``build_notify`` builds the signed envelope (one ``notify_event`` per household,
``reg_records`` one SR Group object, as the spec's NotifyEventRequest has it), and
``send_notify`` re-checks that the target is still a registered callback URI of the subscriber
before POSTing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from hub.dci.config import SigningKey
from hub.dci.delivery import DeliveryResult, post_envelope
from hub.dci.senders import callback_url
from hub.workers.outbound import OutboundSender
from standards.dci import codes
from standards.dci.envelope import EnvelopeError, callback_header, new_id, timestamp
from standards.dci.signature import sign_envelope
from standards.dci.sr_record import group_record

# Subscription reg_event_type (last segment, e.g. of "spdci-common:RegistryEventType:X") ->
# the hub's event types that trigger a notification.
SUBSCRIBABLE_EVENTS: dict[str, frozenset[str]] = {
    "REGISTER": frozenset({"household.created"}),
    "UPDATE": frozenset(
        {
            "household.updated",
            "household.eligibility_changed",
            "person.verified",
            "person.verification_failed",
        }
    ),
    "NewHouseHoldMember": frozenset({"household.member_added", "person.born"}),
    "LINK": frozenset({"household.member_added", "person.born"}),
    "UNLINK": frozenset({"household.member_removed"}),
    "DELETE": frozenset({"person.died", "household.member_removed"}),
}
# Our event type -> the NotifyEventRequest reg_event_type (the spec admits only these two).
_NOTIFY_EVENT_TYPE = {
    "household.member_added": codes.EVENT_NEW_MEMBER,
    "person.born": codes.EVENT_NEW_MEMBER,
}


class SubscriptionLike(Protocol):
    code: str
    sender_id: str
    callback_uri: str
    reg_event_type: str


@dataclass(frozen=True)
class NotifyEvent:
    """One registry event about a household, with the household as it is now."""

    event_type: str  # e.g. "household.member_added"
    household: dict[str, Any]  # canonical household record
    reference_id: str | None = None  # e.g. the CloudEvent id; a new id when absent
    poverty_score: float | None = None
    poverty_score_type: str | None = None


def normalise_event_type(value: Any) -> str | None:
    """The subscribable event name in ``value`` (accepting namespaced forms), else None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    name = value.rsplit(":", 1)[-1]
    return name if name in SUBSCRIBABLE_EVENTS else None


def wants(subscription: SubscriptionLike, event_type: str) -> bool:
    name = normalise_event_type(subscription.reg_event_type)
    return name is not None and event_type in SUBSCRIBABLE_EVENTS[name]


def build_notify(
    subscription: SubscriptionLike,
    events: list[NotifyEvent],
    *,
    registry_id: str,
    signing_key: SigningKey,
) -> dict[str, Any]:
    """The signed ``notify`` envelope for ``events`` (at least one) of one subscription."""
    if not events:
        raise ValueError("a notify needs at least one event")
    items = [
        {
            "reference_id": event.reference_id or new_id(),
            "timestamp": timestamp(),
            "data": {
                "version": codes.PROTOCOL_VERSION,
                "reg_type": codes.REG_TYPE_SOCIAL,
                "reg_event_type": _NOTIFY_EVENT_TYPE.get(event.event_type, codes.EVENT_REGISTER),
                "reg_record_type": codes.RECORD_TYPE_GROUP,
                "reg_records": group_record(
                    event.household,
                    poverty_score=event.poverty_score,
                    poverty_score_type=event.poverty_score_type,
                ),
            },
        }
        for event in events
    ]
    header = callback_header(
        codes.NOTIFY,
        sender_id=registry_id,
        receiver_id=subscription.sender_id,
        status=codes.SUCC,
        total_count=len(items),
        completed_count=len(items),
    )
    header["meta"] = {"subscription_code": subscription.code}
    message = {"transaction_id": new_id(), "notify_event": items}
    signature = sign_envelope(
        header,
        message,
        signing_key.private_key,
        sender_id=registry_id,
        key_id=signing_key.key_id,
    )
    return {"signature": signature, "header": header, "message": message}


def send_notify(
    sessions: sessionmaker[Session],
    subscription: SubscriptionLike,
    events: list[NotifyEvent],
    *,
    registry_id: str,
    signing_key: SigningKey,
    timeout: float = 10.0,
    attempts: int = 3,
    sender: OutboundSender | None = None,
) -> DeliveryResult:
    """Sign and POST a notify; refuse (no request made) when the target is not registered.
    ``sender`` is a pooled sender to reuse (else one is made for the call)."""
    with sessions() as session:
        try:
            url = callback_url(session, subscription.sender_id, subscription.callback_uri, "notify")
        except EnvelopeError as error:
            return DeliveryResult(False, None, 0, f"{error.code}: {error.message}")
    body = build_notify(subscription, events, registry_id=registry_id, signing_key=signing_key)
    return post_envelope(url, body, timeout=timeout, attempts=attempts, sender=sender)
