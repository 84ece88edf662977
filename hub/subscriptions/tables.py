"""The two tables of the notification side: subscriptions and the delivery log.

A subscription belongs to one program (``program_code``); the program's credentials may only
see and change its own. The webhook secret is stored sealed with the hub's identifier cipher,
so a database dump does not let anyone forge the hub's signatures.

The delivery log keeps one row per attempt (who, what event, which attempt, outcome, how long)
and deliberately no payload: what was sent can be rebuilt from the outbox under the consent
that held at the time, and the log must not become a second copy of personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, new_uuid
from standards.timeutil import utcnow

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

CHANNEL_AMQP = "amqp"
CHANNEL_WEBHOOK = "webhook"
CHANNEL_DCI = "dci"
CHANNELS = (CHANNEL_AMQP, CHANNEL_WEBHOOK, CHANNEL_DCI)

STATUS_ACTIVE = "active"
STATUS_PAUSED = "paused"

# Delivery log outcomes.
DELIVERED = "delivered"  # the subscriber acknowledged (2xx) / queued on its AMQP queue
FAILED = "failed"  # this attempt failed; another follows
DEAD_LETTERED = "dead_lettered"  # attempts used up; the message went to sr.dead with the reason
QUEUED = "queued"  # handed to the subscriber's own AMQP queue (the broker confirmed it)
WITHHELD = "withheld"  # nothing sent: the channel cannot carry a consent-free payload
DUPLICATE = "duplicate"  # already delivered earlier; not sent again


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    program_code: Mapped[str] = mapped_column(String(64), index=True)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))
    secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # After a secret rotation: the secret before it, also signing deliveries until
    # ``previous_secret_until`` (docs/notifications.md, "Rotating a webhook secret").
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_until: Mapped[datetime | None] = mapped_column()
    purpose: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=STATUS_ACTIVE, index=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryAttempt(Base):
    __tablename__ = "subscription_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subscription_code: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_subscription_deliveries_sub", "subscription_code", "id"),
        Index("ix_subscription_deliveries_event", "subscription_code", "event_id"),
        Index("ix_subscription_deliveries_started", "started_at"),  # retention by age
    )
