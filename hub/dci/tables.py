"""Tables of the DCI server: who may call, where callbacks may go, what was asked, and which
message ids were already seen.

- ``dci_sender_keys``: the ed25519 public keys of senders; a sender with a key must sign.
- ``dci_unsigned_senders``: senders an operator explicitly let in without a signature
  (``srhub dci allow-unsigned``), who did it, why, and when it was revoked. Every other sender
  must sign; rows are kept after revocation as the record of the decision.
- ``dci_sender_uris``: the callback base URIs registered for a sender. Callbacks go only to
  these (deny by default): a request cannot point the registry at an arbitrary host.
- ``dci_transactions``: one row per async request (and per sync search), so txn/status can
  answer later. It keeps per-request statuses only, never the records sent (personal data
  stays in the registry tables, where access is controlled).
- ``dci_seen_messages``: (sender_id, message_id) pairs for replay protection. A message older
  than the accepted timestamp window is refused anyway, so rows older than that window are
  useless and are purged: retention is bounded by the window, not by traffic.
- ``dci_subscriptions``: event subscriptions made through ``registry/subscribe``; the
  dispatcher reads them to send ``registry/notify``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry_core.db import Base
from standards.timeutil import utcnow


class DciSenderKey(Base):
    __tablename__ = "dci_sender_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(200), index=True)
    key_id: Mapped[str] = mapped_column(String(99))
    public_key: Mapped[str] = mapped_column(Text)  # Base64 of the 32 raw ed25519 bytes
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("sender_id", "key_id", name="uq_dci_sender_keys_kid"),)


class DciUnsignedSender(Base):
    __tablename__ = "dci_unsigned_senders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(200), index=True)
    allowed_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    allowed_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column()


class DciSenderUri(Base):
    __tablename__ = "dci_sender_uris"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(200), index=True)
    base_uri: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("sender_id", "base_uri", name="uq_dci_sender_uris_pair"),)


class DciTransaction(Base):
    __tablename__ = "dci_transactions"

    correlation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(200))
    transaction_id: Mapped[str] = mapped_column(String(99))
    message_id: Mapped[str] = mapped_column(String(99))
    txn_type: Mapped[str] = mapped_column(String(16))  # search | subscribe | unsubscribe
    status: Mapped[str] = mapped_column(String(8))  # rcvd | pdng | succ | rjct
    # [{reference_id, timestamp, status, status_reason_code?, status_reason_message?}]
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    callback_uri: Mapped[str | None] = mapped_column(String(2000))
    callback_status: Mapped[str | None] = mapped_column(String(16))  # sent | failed | none
    callback_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_dci_transactions_sender_txn", "sender_id", "transaction_id"),
        Index("ix_dci_transactions_created", "created_at"),
    )


class DciSeenMessage(Base):
    __tablename__ = "dci_seen_messages"

    sender_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(99), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DciSubscription(Base):
    __tablename__ = "dci_subscriptions"

    code: Mapped[str] = mapped_column(String(99), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(200), index=True)
    callback_uri: Mapped[str] = mapped_column(String(2000))
    transaction_id: Mapped[str] = mapped_column(String(99))
    reference_id: Mapped[str] = mapped_column(String(99))
    reg_event_type: Mapped[str] = mapped_column(String(64))
    filter_type: Mapped[str | None] = mapped_column(String(16))
    filter: Mapped[Any] = mapped_column(JSON)
    filter_hash: Mapped[str] = mapped_column(String(64))
    notify_record_type: Mapped[str] = mapped_column(String(64))
    frequency: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="subscribe")  # | unsubscribe
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_dci_subscriptions_match", "sender_id", "reg_event_type", "filter_hash"),
    )
