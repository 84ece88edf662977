"""Re-driving one subscription: publish its share of the outbox again, from a point on.

Used after a subscriber lost data or was fixed: every outbox event from ``--from-sequence`` or
``--since`` on that the subscription matches is built again (consent as of now) and queued to
that subscription only, marked as a re-drive so the delivery worker sends it even if it was
delivered before. Other subscriptions are not touched.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from hub.broker.base import EXCHANGE_EVENTS, Broker, Message
from hub.runtime import HubRuntime
from hub.subscriptions import service
from hub.subscriptions.fanout import Fanout
from registry_core.models import OutboxEvent
from registry_core.outbox import to_cloudevent


def redrive(
    runtime: HubRuntime,
    broker: Broker,
    code: str,
    *,
    from_sequence: int | None = None,
    since: datetime | None = None,
    batch: int = 500,
) -> tuple[int, int]:
    """Queue the matching events again; returns (events examined, deliveries queued)."""
    if (from_sequence is None) == (since is None):
        raise ValueError("give exactly one of from_sequence or since")
    fanout = Fanout(runtime.cipher, runtime.keys.identifier_hmac_key)
    examined = queued = 0
    with runtime.sessions() as session:
        subscription = service.get(session, code)
        session.expunge(subscription)
    service.declare_queue(broker, code)
    cursor = (from_sequence - 1) if from_sequence is not None else None
    if cursor is None:
        with runtime.sessions() as session:
            first = session.scalar(
                select(OutboxEvent.sequence)
                .where(OutboxEvent.time >= since)
                .order_by(OutboxEvent.sequence)
                .limit(1)
            )
        if first is None:
            return 0, 0
        cursor = first - 1
    while True:
        with runtime.sessions() as session:
            rows = list(
                session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.sequence > cursor)
                    .order_by(OutboxEvent.sequence)
                    .limit(batch)
                )
            )
            if not rows:
                break
            messages: list[Message] = []
            for row in rows:
                planned = fanout.plan(
                    session,
                    [subscription],
                    row.routing_key,
                    to_cloudevent(row),
                    row.sequence,
                    redrive=True,
                )
                messages.extend(p.message for p in planned)
            examined += len(rows)
            cursor = rows[-1].sequence
        if messages:
            broker.publish(EXCHANGE_EVENTS, messages)
            queued += len(messages)
    return examined, queued
