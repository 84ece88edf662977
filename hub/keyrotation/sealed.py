"""Every column sealed with the identifier encryption key, and how to name its context.

A re-key opens each value with the context it was sealed under and seals it again under the
active key; a retire counts what each version still holds here. A new sealed column must be
added to this list, or retiring a key version would make its values unreadable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table

from hub.broker.embedded_storage import SEALED_MARK
from hub.broker.embedded_tables import BrokerMessage
from hub.intake.tables import (
    SEAL_ATTACHMENT,
    SEAL_RESULT,
    SEAL_XML,
    IntakeAttachment,
    IntakeSubmission,
)
from hub.monitoring.message_log import SEAL_CONTEXT, MessageLogEntry
from hub.openrosa.credentials import sealing_context
from hub.subscriptions.service import SECRET_CONTEXT
from hub.subscriptions.tables import Subscription
from hub.ui.tables import UiUser
from registry_core.models import MatchReview
from registry_core.resolution import REVIEW_CONTEXT


@dataclass(frozen=True)
class SealedColumn:
    """``column`` of ``table`` (primary key ``key``), sealed under ``context(row)`` (the row
    holds the key column and the sealed value)."""

    table: Table
    key: str
    column: str
    context: Callable[[Mapping[str, Any]], str]
    prefix: bytes = b""  # a marker before the ciphertext (rows without it are not sealed)

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"


def _t(model: Any) -> Table:
    return cast(Table, model.__table__)


def _fixed(label: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda _row: label


def sealed_columns(realm: str) -> list[SealedColumn]:
    """The sealed columns; ``realm`` is the OpenRosa realm (part of the Digest secrets'
    context)."""
    return [
        SealedColumn(_t(MatchReview), "id", "record_sealed", _fixed(REVIEW_CONTEXT)),
        SealedColumn(_t(MessageLogEntry), "id", "body_sealed", _fixed(SEAL_CONTEXT)),
        SealedColumn(_t(IntakeSubmission), "id", "xml_sealed", _fixed(SEAL_XML)),
        SealedColumn(_t(IntakeSubmission), "id", "result_sealed", _fixed(SEAL_RESULT)),
        SealedColumn(_t(IntakeAttachment), "id", "content_sealed", _fixed(SEAL_ATTACHMENT)),
        SealedColumn(_t(Subscription), "id", "secret_sealed", _fixed(SECRET_CONTEXT)),
        SealedColumn(_t(Subscription), "id", "previous_secret_sealed", _fixed(SECRET_CONTEXT)),
        SealedColumn(
            _t(UiUser),
            "username",
            "digest_ha1",
            lambda row: sealing_context(realm, row["username"]),
        ),
        SealedColumn(_t(BrokerMessage), "id", "body", _fixed("broker"), SEALED_MARK),
    ]
