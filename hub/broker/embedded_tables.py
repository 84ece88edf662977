"""Tables of the embedded broker: durable queues, their topic bindings and their messages.

They live in the hub's own database so that the default setup needs no other service, and so
that a message published in the same transaction as the data it describes could one day share
that commit. Rows in ``sr_broker_messages`` are the queue contents: a row is *ready* when its
``visible_at`` has passed and *in flight* while a consumer's lease (``locked_by`` until
``visible_at``) holds it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base, UTCDateTime

# SQLite only gives an auto-incrementing rowid to an INTEGER PRIMARY KEY, while PostgreSQL needs
# a 64-bit key for a long-lived queue table: BigInteger that becomes INTEGER on SQLite.
_MessageKey = BigInteger().with_variant(Integer(), "sqlite")


class BrokerQueue(Base):
    """A declared queue and its poison-message policy."""

    __tablename__ = "sr_broker_queues"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    delivery_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    dead_letter: Mapped[bool] = mapped_column(Boolean, nullable=False)
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class BrokerBinding(Base):
    """One topic binding: messages published to ``exchange`` whose routing key matches
    ``pattern`` are copied into ``queue``."""

    __tablename__ = "sr_broker_bindings"

    queue: Mapped[str] = mapped_column(
        String(255), ForeignKey("sr_broker_queues.name", ondelete="CASCADE"), primary_key=True
    )
    exchange: Mapped[str] = mapped_column(String(255), primary_key=True)
    pattern: Mapped[str] = mapped_column(String(255), primary_key=True)

    __table_args__ = (Index("ix_sr_broker_bindings_exchange", "exchange"),)


class BrokerMessage(Base):
    """One message in one queue (a message routed to two queues is two rows)."""

    __tablename__ = "sr_broker_messages"

    # Publish order: the claim query takes the lowest ids first.
    id: Mapped[int] = mapped_column(_MessageKey, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(255), nullable=False)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False)
    exchange: Mapped[str] = mapped_column(String(255), nullable=False)
    routing_key: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    headers: Mapped[str] = mapped_column(Text, nullable=False)  # JSON object
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # Ready when visible_at <= now; a claim pushes it to now + visibility timeout (the lease).
    visible_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # Deliveries made so far (0 until the first claim).
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    first_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # The hot path: "lowest ids of queue q whose visible_at has passed".
        Index("ix_sr_broker_messages_queue_id", "queue", "id"),
        Index("ix_sr_broker_messages_queue_visible", "queue", "visible_at"),
        # Lease refresh and release by consumer.
        Index("ix_sr_broker_messages_locked_by", "locked_by"),
    )
